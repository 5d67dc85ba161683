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

import logging

import duckdb

from linkage.unpublished import UNPUBLISHED, unpublished

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


def golden_changes(con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(temp table of recomputed golden rows, SELECT of the persons they cover), or None
    when what changed since the last version is not known (`linkage.unpublished`).

    The persons recomputed (temp table ``_golden_todo``) are those holding, now or in the
    published version, a record whose values, features or person changed since
    (`linkage.unpublished.UNPUBLISHED`); every other person has the records it had, with
    the values they had, so its published row is what the same rules give again. For a
    person table changed in place (`sharehub.publish.delta`): persons covered but absent
    from the rows have vanished. Valid only while ``shared.person_xref`` and
    ``shared.person`` are exactly the last version (the caller's baseline check, which
    also covers the rules: `sharehub.publish.tables.suites_fingerprint`).
    """
    if not unpublished(con):
        return None
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _golden_todo AS
            SELECT person_id FROM linkage.person_ids SEMI JOIN {UNPUBLISHED} USING (record_id)
            UNION
            SELECT person_id FROM shared.person_xref SEMI JOIN {UNPUBLISHED} USING (record_id)
            WHERE person_id IS NOT NULL"""
    )
    changed = "(SELECT * FROM linkage.person_ids SEMI JOIN _golden_todo USING (person_id))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _golden_rows AS {golden_person_sql(changed)}")
    computed = int(con.execute("SELECT count(*) FROM _golden_todo").fetchall()[0][0])
    log.info("golden rows: %d persons recomputed, the rest kept as published", computed)
    return "_golden_rows", "SELECT person_id FROM _golden_todo"


def build_golden(con: duckdb.DuckDBPyConnection, target: str) -> int:
    """Create ``target`` with every person's golden row; return how many.

    For a first version, after a full linkage or whenever what changed is not known;
    otherwise `golden_changes` computes only the persons whose records changed.
    """
    con.execute(f"CREATE OR REPLACE TABLE {target} AS {golden_person_sql()}")
    return int(con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0])


def drop_golden_temps(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables `golden_changes` leaves for the publishing transaction."""
    for temp in ("_golden_todo", "_golden_rows"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
