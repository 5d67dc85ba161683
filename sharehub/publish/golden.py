"""Golden records: one row per person, each value chosen by a written survivorship rule.

The rules (also in docs/metrics.md, "Golden records"):

- identity (name, resident ID, sex, birth date) comes from the most authoritative source
  that has a usable value: public security population, then health, then civil affairs,
  then housing owners; active records before ended ones; a valid ID before an invalid one;
  a real name before a newborn placeholder (张丽之子); then the most recent update;
- phone comes from the most recent record with a mobile number, civil affairs last because
  its phone is often a relative's;
- current address comes from public security population (the residence register), then
  the most recent record with an address.

Every chosen value names the record it came from (``*_source`` columns), so each shared
value traces back to its source record and batch.
"""

from __future__ import annotations

import hashlib
import logging

import duckdb

from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

AUTHORITY = {"ps_population": 1, "hw_ehr_person": 2, "ca_recipients": 3, "ps_housing": 4}

_AUTHORITY_CASE = (
    "CASE r.feed "
    + " ".join(f"WHEN '{feed}' THEN {rank}" for feed, rank in AUTHORITY.items())
    + " ELSE 9 END"
)

_IDENTITY_ORDER = (
    f"{_AUTHORITY_CASE}, (r.record_status <> 'active'), (NOT coalesce(f.id_valid, false)), "
    "coalesce(f.is_placeholder_name, false), r.updated_at DESC NULLS LAST, r.record_id"
)
_PHONE_ORDER = (
    "(f.phone_kind IS DISTINCT FROM 'mobile'), (r.feed = 'ca_recipients'), "
    "(r.record_status <> 'active'), r.updated_at DESC NULLS LAST, r.record_id"
)
_ADDRESS_ORDER = (
    "(r.feed <> 'ps_population'), (r.record_status <> 'active'), "
    "r.updated_at DESC NULLS LAST, r.record_id"
)


def _pick(value: str, order: str, alias: str, *, extra_filter: str = "") -> str:
    cond = f"{value} IS NOT NULL" + (f" AND {extra_filter}" if extra_filter else "")
    return (
        f"first({value} ORDER BY {order}) FILTER (WHERE {cond}) AS {alias},\n"
        f"        first(r.record_id ORDER BY {order}) FILTER (WHERE {cond}) AS {alias}_source"
    )


def golden_person_sql(person_ids: str = "linkage.person_ids") -> str:
    """SELECT producing one golden row per person_id."""
    return f"""
    SELECT
        p.person_id,
        {_pick("f.name_std", "coalesce(f.is_placeholder_name, false), " + _IDENTITY_ORDER, "name")},
        {_pick("f.id_norm", _IDENTITY_ORDER, "id_number", extra_filter="f.id_valid")},
        {_pick("f.sex", _IDENTITY_ORDER, "sex")},
        {_pick("f.birth_date", _IDENTITY_ORDER, "birth_date")},
        {_pick("f.phone_std", _PHONE_ORDER, "phone")},
        {_pick("r.address", _ADDRESS_ORDER, "address")},
        {_pick("r.house_code", _ADDRESS_ORDER, "house_code", extra_filter="r.feed = 'ps_population'")},
        CASE WHEN bool_or(r.record_status = 'active') THEN 'active'
             WHEN bool_or(r.record_status = 'deregistered') THEN 'deregistered'
             ELSE min(r.record_status) END AS status,
        count(*) AS source_records,
        list(DISTINCT r.feed ORDER BY r.feed) AS feeds
    FROM {person_ids} p
    JOIN staging.person_records r ON r.record_id = p.record_id
    JOIN linkage.person_features f ON f.unique_id = p.record_id
    GROUP BY p.person_id
    """


# Everything a golden row is computed from, per source record: the columns golden_person_sql
# reads. A person's fingerprint combines its records' (bit_xor is order-free, and record_id
# is among the columns, so two records never cancel out).
_INPUT_COLUMNS = (
    "p.person_id", "r.record_id", "r.feed", "r.record_status", "r.updated_at", "r.address",
    "r.house_code", "f.name_std", "f.is_placeholder_name", "f.id_norm", "f.id_valid", "f.sex",
    "f.birth_date", "f.phone_std", "f.phone_kind",
)  # fmt: skip
GOLDEN_INPUTS = "linkage.golden_inputs"


def golden_inputs_sql(person_ids: str = "linkage.person_ids") -> str:
    """SELECT person_id, inputs (fingerprint of every value its golden row is chosen from)."""
    return f"""
    SELECT p.person_id, bit_xor(hash({", ".join(_INPUT_COLUMNS)})) AS inputs, count(*) AS records
    FROM {person_ids} p
    JOIN staging.person_records r ON r.record_id = p.record_id
    JOIN linkage.person_features f ON f.unique_id = p.record_id
    GROUP BY p.person_id
    """


def rules_sha256() -> str:
    """The survivorship rules as code: golden rows kept from an earlier version are only
    valid under the same rules."""
    return hashlib.sha256((golden_person_sql() + golden_inputs_sql()).encode("utf-8")).hexdigest()


def _stored_inputs_usable(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, GOLDEN_INPUTS) and bool(con.execute(
        f"SELECT count(*) = 0 FROM {GOLDEN_INPUTS} WHERE rules_sha256 IS DISTINCT FROM ?",
        [rules_sha256()],
    ).fetchall()[0][0])  # fmt: skip


def _changed_persons(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``_golden_todo``: persons whose fingerprint changed, appeared or vanished."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _golden_todo AS
            SELECT coalesce(n.person_id, o.person_id) AS person_id
            FROM _golden_inputs n FULL JOIN {GOLDEN_INPUTS} o ON o.person_id = n.person_id
            WHERE n.inputs IS DISTINCT FROM o.inputs OR n.records IS DISTINCT FROM o.records"""
    )


def golden_changes(con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(temp table of recomputed golden rows, SELECT of the persons they cover), or None
    when the stored fingerprints cannot say what changed (none stored, other rules).

    For a person table changed in place (`sharehub.publish.delta`): persons covered but
    absent from the rows have vanished; persons not covered keep their published row,
    which the same rules computed from the same values. Valid only while the published
    person table is exactly the version the fingerprints were stored with (the caller's
    baseline check).
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _golden_inputs AS {golden_inputs_sql()}")
    if not _stored_inputs_usable(con):
        return None
    _changed_persons(con)
    changed = "(SELECT * FROM linkage.person_ids SEMI JOIN _golden_todo USING (person_id))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _golden_rows AS {golden_person_sql(changed)}")
    computed = int(con.execute("SELECT count(*) FROM _golden_todo").fetchall()[0][0])
    log.info("golden rows: %d persons recomputed, the rest kept as published", computed)
    return "_golden_rows", "SELECT person_id FROM _golden_todo"


def build_golden(con: duckdb.DuckDBPyConnection, target: str, published: str | None) -> int:
    """Create ``target`` with one golden row per person; return how many were computed.

    Why not always recompute: choosing 14 values by survivorship order for a million
    persons took 5–8 s a day, and a day changes the records of a few percent of them.
    With ``published`` (the shared person table, exactly the last published version) and
    the fingerprints stored with it (`GOLDEN_INPUTS`, same rules), only persons whose
    fingerprint changed, appeared or vanished are computed; the rest are that version's
    rows, which the same rules computed from the same values. The new fingerprints go to
    the temp table ``_golden_inputs``; `keep_golden_inputs` stores them with the version.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _golden_inputs AS {golden_inputs_sql()}")
    if published is None or not _stored_inputs_usable(con):
        con.execute(f"CREATE OR REPLACE TABLE {target} AS {golden_person_sql()}")
        return int(con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0])
    _changed_persons(con)
    changed = "(SELECT * FROM linkage.person_ids SEMI JOIN _golden_todo USING (person_id))"
    con.execute(
        f"""CREATE OR REPLACE TABLE {target} AS
            SELECT * FROM {published} ANTI JOIN _golden_todo USING (person_id)
            UNION ALL BY NAME
            {golden_person_sql(changed)}"""
    )
    computed = int(con.execute("SELECT count(*) FROM _golden_todo").fetchall()[0][0])
    con.execute("DROP TABLE _golden_todo")
    log.info("golden rows: %d persons recomputed, the rest kept from %s", computed, published)
    return computed


def keep_golden_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """Store the fingerprints of the version being published (call in its transaction).

    A version whose person table was not built by `build_golden` (published empty because
    its sources did not exist yet) leaves no fingerprints: the next build is complete.
    """
    built = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_golden_inputs'"
    ).fetchall()[0][0]
    if not built:
        con.execute(f"DROP TABLE IF EXISTS {GOLDEN_INPUTS}")
        return
    in_place = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_golden_rows'"
    ).fetchall()[0][0]
    if in_place:
        # The stored fingerprints are those of the published version (same rules): only
        # the changed persons' differ.
        con.execute(f"DELETE FROM {GOLDEN_INPUTS} WHERE person_id IN (SELECT person_id FROM _golden_todo)")
        con.execute(
            f"INSERT INTO {GOLDEN_INPUTS} SELECT *, ?::VARCHAR FROM _golden_inputs "
            "SEMI JOIN _golden_todo USING (person_id)",
            [rules_sha256()],
        )
    else:
        con.execute(
            f"CREATE OR REPLACE TABLE {GOLDEN_INPUTS} AS SELECT *, ?::VARCHAR AS rules_sha256 "
            "FROM _golden_inputs",
            [rules_sha256()],
        )
    for temp in ("_golden_inputs", "_golden_todo", "_golden_rows"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
