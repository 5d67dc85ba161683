"""What changed since the last run: fingerprints of records, and standardising only those.

Each record keeps two fingerprints: of the staged values standardisation reads
(``linkage.standardised_inputs``, written by :func:`standardise`) and of the features the
model compares (``linkage.feature_hashes``, written at the end of each linkage by
:func:`write_fingerprints`, with the values of the term-frequency columns). The next run
compares against them: standardisation redoes only new or changed records, and
`linkage.incremental` scores only records whose features changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from linkage import address_heads
from linkage.model import REQUIRED_COLUMNS
from linkage.standardize.addresses import AddressResult
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

FEATURES = "linkage.person_features"
FEATURE_HASHES = "linkage.feature_hashes"
STANDARDISED = "linkage.standardised_inputs"
# What standardisation reads from staging.person_records (linkage.standardize.records).
INPUT_COLUMNS = (
    "record_id", "feed", "name", "id_number", "id_type", "sex_raw", "birth_raw", "phone",
    "address", "hukou_address", "record_status",
)  # fmt: skip
# What the model compares; record_status only steers clustering, so it is kept apart.
MODEL_COLUMNS = tuple(c for c in REQUIRED_COLUMNS if c != "record_status")


def fingerprint_sql(columns: tuple[str, ...], alias: str = "") -> str:
    """SQL for a 64-bit fingerprint (UBIGINT) of ``columns`` (NULLs included, so NULL ≠ '').

    Why DuckDB's ``hash`` and not md5: md5 of the struct cast to text cost ~8 s per pass
    over two million records, ``hash`` under one. A fingerprint is only ever compared with
    the same record's previous one, so a change goes unseen with probability 2^-64 per
    changed record. Should a DuckDB upgrade change ``hash``, every record looks changed
    once: re-standardised and re-scored, slower but not wrong.
    """
    prefix = f"{alias}." if alias else ""
    packed = ", ".join(f"{c} := {prefix}{c}" for c in columns)
    return f"hash(struct_pack({packed}))"


def fingerprints_usable(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Whether ``table`` holds fingerprints of the current kind (a warehouse written
    before they became UBIGINT holds md5 text, which cannot be compared: start afresh)."""
    if not table_exists(con, table):
        return False
    schema, name = table.split(".", 1)
    rows = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        [schema, name, column],
    ).fetchall()
    return bool(rows) and rows[0][0] == "UBIGINT"


@dataclass(frozen=True)
class StandardiseResult:
    """What one standardisation did: how many records it (re)standardised, of how many."""

    records: int
    standardised: int
    removed: int
    full: bool


def standardise(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> StandardiseResult:
    """Bring ``linkage.person_features`` up to date with ``staging.person_records``.

    Standardisation is per record (each value is standardised on its own), so only new
    or changed records need it; ``full`` (or a warehouse without fingerprints) redoes all.
    """
    from linkage.standardize import standardize_records

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _inputs AS SELECT record_id, "
        f"{fingerprint_sql(INPUT_COLUMNS)} AS input_hash FROM staging.person_records"
    )
    full = full or not (fingerprints_usable(con, STANDARDISED, "input_hash")
                        and table_exists(con, FEATURES))
    todo_sql = "SELECT record_id FROM _inputs"
    if not full:
        todo_sql = (
            f"SELECT i.record_id FROM _inputs i LEFT JOIN {STANDARDISED} s USING (record_id) "
            "WHERE s.input_hash IS DISTINCT FROM i.input_hash"
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _todo AS {todo_sql}")
    records = con.execute(
        "SELECT * FROM staging.person_records SEMI JOIN _todo USING (record_id) ORDER BY record_id"
    ).df()
    address_heads.load(con)
    features = standardize_records(records, None if full else _known_addresses(con))
    con.register("_features", features)
    con.begin()
    try:
        address_heads.store(con)
        if full:
            con.execute(f"CREATE OR REPLACE TABLE {FEATURES} AS SELECT * FROM _features")
            removed = 0
        else:
            removed = int(con.execute(
                f"SELECT count(*) FROM {FEATURES} ANTI JOIN _inputs i ON i.record_id = unique_id"
            ).fetchall()[0][0])  # fmt: skip
            con.execute(
                f"DELETE FROM {FEATURES} WHERE unique_id IN (SELECT unique_id FROM _features) "
                "OR unique_id NOT IN (SELECT record_id FROM _inputs)"
            )
            con.execute(f"INSERT INTO {FEATURES} BY NAME SELECT * FROM _features")
        con.execute(f"CREATE OR REPLACE TABLE {STANDARDISED} AS SELECT * FROM _inputs")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_features")
        con.execute("DROP TABLE IF EXISTS _inputs")
        con.execute("DROP TABLE IF EXISTS _todo")
    total = int(con.execute(f"SELECT count(*) FROM {FEATURES}").fetchall()[0][0])
    log.info("standardised %d of %d records (%s), %d removed", len(features), total,
             "full" if full else "incremental", removed)
    return StandardiseResult(total, len(features), removed, full)


def _known_addresses(con: duckdb.DuckDBPyConnection) -> dict[str, AddressResult]:
    """How unchanged records' addresses were standardised, for the address strings of the
    records about to be standardised (temp table ``_todo``; the others' features are
    current). Like every incremental step this trusts that the standardiser did not
    change since; ``--full-relink`` after upgrading it parses everything again."""
    rows = con.execute(
        f"""WITH todo AS (
                SELECT r.address AS a, r.hukou_address AS h
                FROM staging.person_records r SEMI JOIN _todo USING (record_id)
            ), wanted AS (SELECT a FROM todo UNION SELECT h FROM todo)
            SELECT r.address, any_value(f.addr_std), any_value(f.addr_estate),
                   any_value(f.addr_building), any_value(f.addr_unit), any_value(f.addr_room),
                   any_value(f.addr_key)
            FROM staging.person_records r
            ANTI JOIN _todo t ON t.record_id = r.record_id
            JOIN {FEATURES} f ON f.unique_id = r.record_id
            WHERE r.address IN (SELECT a FROM wanted)
            GROUP BY r.address"""
    ).fetchall()
    return {
        str(a): AddressResult(std, estate=estate, building=building, unit=unit, room=room, key=key)
        for a, std, estate, building, unit, room, key in rows
    }


def value_sql(column: str) -> str:
    """A column as the model projection reads it (`linkage.model.create_input_table`)."""
    return f"NULLIF(trim(CAST({column} AS VARCHAR)), '')"


def write_fingerprints(con: duckdb.DuckDBPyConnection, tf_columns: Sequence[str] = ()) -> None:
    """Remember the features the current predictions and clusters were built from, and
    the values of the term-frequency columns (whose counts the next increment compares)."""
    values = "".join(f", {value_sql(c)} AS {c}" for c in tf_columns)
    con.execute(
        f"CREATE OR REPLACE TABLE {FEATURE_HASHES} AS SELECT unique_id AS record_id, "
        f"{fingerprint_sql(MODEL_COLUMNS)} AS feature_hash, record_status{values} FROM {FEATURES}"
    )


def tf_columns(model: dict[str, object]) -> list[str]:
    """The columns a saved model adjusts by term frequency (name_std, phone_std)."""
    columns = {
        str(level["tf_adjustment_column"])
        for comparison in model.get("comparisons", [])  # type: ignore[attr-defined]
        for level in comparison.get("comparison_levels", [])
        if level.get("tf_adjustment_column")
    }
    return sorted(columns)
