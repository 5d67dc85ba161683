"""``linkage.residence``: which person lives in or owns which dwelling.

Why a separate step from the house index: matching a record to a dwelling depends only on
the record (its 房屋编码 or address), while the person behind the record is known only after
clustering (``linkage.person_ids``). Keeping the two apart lets the house index be built
and inspected before linkage, and lets residence be rebuilt alone whenever person ids
move (a merge or split) without re-matching a single address.

One row per (source record, role): a resident link for every record that
``linkage.house_matches`` placed in a dwelling, and an owner link for every dwelling whose
产权人 is a person record (``ps_housing:<房屋编码>``). A person with three records at one
flat has three rows, each naming the record that says so, so every link can be explained.
``valid`` is false when the record has ended (注销, deleted, off the rolls) or the dwelling
has been deregistered: the link is history, not the present.
"""

from __future__ import annotations

import logging

import duckdb

from linkage.houses import HOUSES, MATCHES, OWNER_FEED
from sharehub.delta import Delta, apply_delta, same_shape, written
from sharehub.errors import ContractViolation
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

RESIDENCE = "linkage.residence"

_LINKS = f"""
SELECT m.record_id, m.house_id, m.feed, m.link_source, 'resident' AS role,
       coalesce(m.record_status = 'active' AND h.status = 'active', false) AS valid
FROM {MATCHES} m JOIN {HOUSES} h ON h.house_id = m.house_id
UNION ALL
SELECT h.owner_record_id, h.house_id, '{OWNER_FEED}', 'owner', 'owner',
       coalesce(h.status = 'active', false)
FROM {HOUSES} h WHERE h.owner_record_id IS NOT NULL"""

# Every link with its person id, looked up once: ``known`` is false for a record that has
# none, so the orphans are counted from the same rows instead of by a second join.
_LINKS_WITH_IDS = f"""
CREATE OR REPLACE TEMP TABLE _links AS
SELECT l.*, p.person_id, p.record_id IS NOT NULL AS known
FROM ({_LINKS}) l LEFT JOIN linkage.person_ids p ON p.record_id = l.record_id"""

_RESIDENCE_SELECT = """
SELECT person_id, house_id, record_id, feed, link_source, role, valid
FROM _links WHERE known"""
_ORDER = "house_id, role, record_id"
_ORPHANS = "SELECT count(*) FILTER (WHERE NOT known) FROM _links"


def _write_residence(con: duckdb.DuckDBPyConnection, *, reuse: bool) -> Delta | None:
    """Bring ``linkage.residence`` up to date from ``_links``; None when rebuilt.

    Why a delta: a day moves a few percent of the links (new records, changed matches,
    persons merged or split), and rewriting only their (record, role) rows skips sorting
    and writing the rest. The table holds the rows a rebuild would give, changed rows last.
    """
    if reuse and same_shape(con, RESIDENCE, _RESIDENCE_SELECT):
        return apply_delta(con, RESIDENCE, _RESIDENCE_SELECT, ("record_id", "role"), order=_ORDER)
    con.execute(f"CREATE OR REPLACE TABLE {RESIDENCE} AS {_RESIDENCE_SELECT} ORDER BY {_ORDER}")
    return None


def build_residence(con: duckdb.DuckDBPyConnection, *, reuse: bool = True) -> int:
    """(Re)build ``linkage.residence`` from the house index and person ids; return its rows.

    Needs ``linkage.houses`` and ``linkage.house_matches`` (:func:`build_house_index`) and
    ``linkage.person_ids``. A link whose record has no person id is dropped and counted in
    the log: it means the ids are older than the records, and the next identify step fixes
    it. Written in one transaction. With ``reuse`` and a table of a previous build only
    the links that differ are rewritten; the first build and ``reuse=False`` write it
    sorted by dwelling, role and record. Either way the same input gives the same rows.
    """
    for table, step in (
        (HOUSES, "build_house_index"),
        (MATCHES, "build_house_index"),
        ("linkage.person_ids", "the identify step (linkage.index)"),
    ):
        if not table_exists(con, table):
            raise ContractViolation(f"{table} does not exist; run {step} before build_residence")
    con.begin()
    try:
        con.execute(_LINKS_WITH_IDS)
        delta = _write_residence(con, reuse=reuse)
        rows, residents, owners = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE role = 'resident'),
                       count(*) FILTER (WHERE role = 'owner') FROM {RESIDENCE}"""
        ).fetchall()[0]
        orphans = con.execute(_ORPHANS).fetchall()[0][0]
        con.execute("DROP TABLE _links")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if orphans:
        log.warning(
            "%d house links dropped: their records have no person id in linkage.person_ids "
            "(ids older than the records?)",
            orphans,
        )
    log.info("built %s: %d links (%d resident, %d owner)", RESIDENCE, rows, residents, owners)
    log.info("%s %s", RESIDENCE, written(delta))
    return int(rows)
