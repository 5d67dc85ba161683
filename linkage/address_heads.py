"""``linkage.address_heads``: how jionlp split each address head, kept across runs.

Why: jionlp's administrative split of an address head (the text before its first digit,
e.g. ``北京市朝阳区幸福里小区``) was most of a day-2 standardisation (about 4 s of 7 at 1M
persons, plus ~1.5 s importing jionlp), although a day's new addresses are mostly new
rooms of estates parsed before. The split is a pure function of the head for a given
jionlp version and our rules (`linkage.standardize.addresses.head_rules`), so it is
stored with them and reused while both are unchanged; a jionlp upgrade or a bump of
``HEAD_RULES`` makes every stored row stale and the heads are parsed afresh.
"""

from __future__ import annotations

import logging

import duckdb
import pandas as pd

from linkage.standardize.addresses import head_rules, remember_heads, take_new_heads
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

TABLE = "linkage.address_heads"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    head VARCHAR PRIMARY KEY,
    province VARCHAR,
    city VARCHAR,
    county VARCHAR,
    rest VARCHAR NOT NULL,
    rules VARCHAR NOT NULL
)"""


def load(con: duckdb.DuckDBPyConnection) -> int:
    """Make the stored parses made under the current rules known; return how many."""
    if not table_exists(con, TABLE):
        return 0
    rows = con.execute(
        f"SELECT head, province, city, county, rest FROM {TABLE} WHERE rules = ?", [head_rules()]
    ).fetchall()
    remember_heads({head: (province, city, county, rest) for head, province, city, county, rest in rows})
    return len(rows)


def store(con: duckdb.DuckDBPyConnection) -> int:
    """Store the heads this process parsed since the last call; drop stale rows first."""
    parsed = take_new_heads()
    rules = head_rules()
    con.execute(_DDL)
    con.execute(f"DELETE FROM {TABLE} WHERE rules <> ?", [rules])
    if not parsed:
        return 0
    frame = pd.DataFrame(
        [(head, *admin) for head, admin in parsed.items()],
        columns=["head", "province", "city", "county", "rest"],
    ).astype("object")
    con.register("_parsed_heads", frame)
    try:
        con.execute(
            f"INSERT INTO {TABLE} SELECT head, province, city, county, rest, ? FROM _parsed_heads "
            f"ANTI JOIN {TABLE} t USING (head)",
            [rules],
        )
    finally:
        con.unregister("_parsed_heads")
    log.info("%d address heads parsed and stored for later runs", len(parsed))
    return len(parsed)
