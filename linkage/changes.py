"""What changed since the last run: fingerprints of records, and standardising only those.

Each record keeps two fingerprints: of the staged values standardisation reads
(``linkage.standardised_inputs``, written by :func:`standardise`) and of the features the
model compares (``linkage.feature_hashes``, written at the end of each linkage by
:func:`write_fingerprints`, with the values of the term-frequency columns). The next run
compares against them: standardisation redoes only new or changed records, and
`linkage.incremental` scores only records whose features changed. Both tables are then
updated in the rows of those records only, which leaves them as a full rewrite would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from linkage import address_heads
from linkage.model import REQUIRED_COLUMNS
from linkage.standardize.addresses import AddressResult
from linkage.unpublished import forget_unpublished, note_unpublished
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

FEATURES = "linkage.person_features"
FEATURE_HASHES = "linkage.feature_hashes"
STANDARDISED = "linkage.standardised_inputs"
# Left by an incremental linkage (`linkage.incremental`) for `write_fingerprints`: the
# fingerprint rows that changed (feature_hash NULL: the record is gone).
FINGERPRINT_CHANGES = "_fingerprint_changes"
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

    full = full or not _standardised_in_step(con)
    try:
        if full:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _todo AS SELECT record_id FROM staging.person_records"
            )
        else:
            _input_changes(con)
        records = con.execute(
            "SELECT * FROM staging.person_records SEMI JOIN _todo USING (record_id) "
            "ORDER BY record_id"
        ).df()
        address_heads.load(con)  # jionlp's splits of address heads from earlier runs
        features = standardize_records(records, None if full else _known_addresses(con, records))
        con.register("_features", features)
        try:
            removed = _write_standardised(con, full)
        finally:
            con.unregister("_features")
    finally:
        for table in ("_todo", "_input_changes"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    total = int(con.execute(f"SELECT count(*) FROM {FEATURES}").fetchall()[0][0])
    log.info("standardised %d of %d records (%s), %d removed", len(features), total,
             "full" if full else "incremental", removed)
    return StandardiseResult(total, len(features), removed, full)


def _inputs_sql() -> str:
    """Each staged record's fingerprint of the values standardisation reads."""
    return (
        f"SELECT record_id, {fingerprint_sql(INPUT_COLUMNS)} AS input_hash "
        "FROM staging.person_records"
    )


def _standardised_in_step(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``linkage.standardised_inputs`` can say what changed: it holds fingerprints
    of the current kind and one row per record of ``linkage.person_features``.

    Why the row counts: the increment deletes from the features only the records whose
    fingerprint changed or went (`_input_changes`), which is right while both tables
    hold the same records — `standardise` writes them together. Counting costs nothing
    (table metadata); a table written some other way is standardised afresh.
    """
    if not (fingerprints_usable(con, STANDARDISED, "input_hash") and table_exists(con, FEATURES)):
        return False
    counts = con.execute(
        f"SELECT (SELECT count(*) FROM {STANDARDISED}), (SELECT count(*) FROM {FEATURES})"
    ).fetchall()[0]
    return bool(counts[0] == counts[1])


def _input_changes(con: duckdb.DuckDBPyConnection) -> None:
    """Temp tables ``_input_changes`` (record_id, input_hash: NULL for a record gone from
    staging) of records whose staged values are new, changed or gone, and ``_todo`` (the
    new or changed ones, to standardise), in one pass over staging and the stored
    fingerprints; only these few rows are kept, not every record's fingerprint."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _input_changes AS
            SELECT coalesce(i.record_id, s.record_id) AS record_id, i.input_hash
            FROM ({_inputs_sql()}) i FULL JOIN {STANDARDISED} s ON s.record_id = i.record_id
            WHERE i.input_hash IS DISTINCT FROM s.input_hash"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _todo AS "
        "SELECT record_id FROM _input_changes WHERE input_hash IS NOT NULL"
    )


def _write_standardised(con: duckdb.DuckDBPyConnection, full: bool) -> int:
    """Write the features of ``_features`` and the staged values' fingerprints in one
    transaction; return how many records were removed.

    The increment rewrites only the rows of ``_input_changes``: every other record's
    staged values have the fingerprint stored for it, so its features and fingerprint
    rows are the ones a full rewrite would produce again.
    """
    con.begin()
    try:
        address_heads.store(con)
        if full:
            con.execute(f"CREATE OR REPLACE TABLE {FEATURES} AS SELECT * FROM _features")
            con.execute(f"CREATE OR REPLACE TABLE {STANDARDISED} AS {_inputs_sql()}")
            forget_unpublished(con)
            removed = 0
        else:
            removed = int(con.execute(
                "SELECT count(*) FROM _input_changes WHERE input_hash IS NULL"
            ).fetchall()[0][0])  # fmt: skip
            for table, key in ((FEATURES, "unique_id"), (STANDARDISED, "record_id")):
                con.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT record_id FROM _input_changes)"
                )
            con.execute(f"INSERT INTO {FEATURES} BY NAME SELECT * FROM _features")
            note_unpublished(con, "SELECT record_id FROM _input_changes")
            con.execute(
                f"INSERT INTO {STANDARDISED} BY NAME SELECT record_id, input_hash "
                "FROM _input_changes WHERE input_hash IS NOT NULL"
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return removed


def _known_addresses(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame
) -> dict[str, AddressResult]:
    """How unchanged records' addresses were standardised, for the address strings of
    ``records`` (those about to be standardised, temp table ``_todo``; the others'
    features are current). Like every incremental step this trusts that the
    standardiser did not change since; ``--full-relink`` after upgrading it parses
    everything again.

    The strings come from ``records``, already read, rather than from staging again.
    """
    strings = pd.concat([records["address"], records["hukou_address"]]).dropna().unique()
    if not len(strings):
        return {}
    con.register("_wanted", pd.DataFrame({"a": [str(a) for a in strings]}))
    try:
        rows = con.execute(
            f"""SELECT r.address, any_value(f.addr_std), any_value(f.addr_estate),
                       any_value(f.addr_building), any_value(f.addr_unit),
                       any_value(f.addr_room), any_value(f.addr_key)
                FROM staging.person_records r
                ANTI JOIN _todo t ON t.record_id = r.record_id
                JOIN {FEATURES} f ON f.unique_id = r.record_id
                WHERE r.address IN (SELECT a FROM _wanted)
                GROUP BY r.address"""
        ).fetchall()
    finally:
        con.unregister("_wanted")
    return {
        str(a): AddressResult(std, estate=estate, building=building, unit=unit, room=room, key=key)
        for a, std, estate, building, unit, room, key in rows
    }


def value_sql(column: str) -> str:
    """A column as the model projection reads it (`linkage.model.create_input_table`)."""
    return f"NULLIF(trim(CAST({column} AS VARCHAR)), '')"


def write_fingerprints(
    con: duckdb.DuckDBPyConnection, tf_columns: Sequence[str] = (), *, incremental: bool = False
) -> None:
    """Remember the features the current predictions and clusters were built from, and
    the values of the term-frequency columns (whose counts the next increment compares).

    ``incremental``: apply the rows an incremental linkage found changed
    (`FINGERPRINT_CHANGES`) instead of rewriting all, when they are there and have the
    columns a full rewrite would give; every other record's features are those its
    stored row was computed from, so the table ends equal to a full rewrite.
    """
    values = "".join(f", {value_sql(c)} AS {c}" for c in tf_columns)
    select = (
        f"SELECT unique_id AS record_id, {fingerprint_sql(MODEL_COLUMNS)} AS feature_hash, "
        f"record_status{values} FROM {FEATURES}"
    )
    try:
        if incremental and _changes_apply(con, select):
            _apply_fingerprint_changes(con)
        else:
            con.execute(f"CREATE OR REPLACE TABLE {FEATURE_HASHES} AS {select}")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {FINGERPRINT_CHANGES}")


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _changes_apply(con: duckdb.DuckDBPyConnection, select: str) -> bool:
    """Whether the stored fingerprints and the changes left by the linkage both have the
    columns (and types) of a full rewrite — a model with other term-frequency columns
    or a warehouse of an older kind is rewritten in full."""
    if not table_exists(con, FEATURE_HASHES) or not _temp_table_exists(con, FINGERPRINT_CHANGES):
        return False
    wanted = _columns(con, select)
    have = dict(_columns(con, FINGERPRINT_CHANGES))
    return _columns(con, FEATURE_HASHES) == wanted and all(have.get(n) == t for n, t in wanted)


def _temp_table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]
    ).fetchall())  # fmt: skip


def _apply_fingerprint_changes(con: duckdb.DuckDBPyConnection) -> None:
    """Replace the stored rows of changed records and drop those of removed ones, in one
    transaction."""
    names = ", ".join(n for n, _ in _columns(con, FEATURE_HASHES))
    con.begin()
    try:
        con.execute(
            f"DELETE FROM {FEATURE_HASHES} "
            f"WHERE record_id IN (SELECT record_id FROM {FINGERPRINT_CHANGES})"
        )
        con.execute(
            f"INSERT INTO {FEATURE_HASHES} ({names}) SELECT {names} "
            f"FROM {FINGERPRINT_CHANGES} WHERE feature_hash IS NOT NULL"
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def tf_columns(model: dict[str, object]) -> list[str]:
    """The columns a saved model adjusts by term frequency (name_std, phone_std)."""
    columns = {
        str(level["tf_adjustment_column"])
        for comparison in model.get("comparisons", [])  # type: ignore[attr-defined]
        for level in comparison.get("comparison_levels", [])
        if level.get("tf_adjustment_column")
    }
    return sorted(columns)
