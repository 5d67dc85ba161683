"""Build, validate and swap in the shared tables as one numbered version (write-audit-publish).

Why build-then-swap inside one transaction: DuckDB transactions are atomic, so a failed
validation rolls everything back and subscribers keep the previous version (invariant 4).
Once a version exists, a table is not rebuilt but changed in place in that transaction,
only at the keys whose rows differ (`sharehub.publish.delta`); the guarantee is the same.
Why a content hash: publishing the same input twice must change nothing (invariant 2),
so a candidate identical to the published version does not become a new version.

Adding a shared table is one entry in ``_CANDIDATES`` (name → SELECT) plus its contract
``contracts/shared_<name>.yaml``: the expectations, the row-count bound, the PostgreSQL
table and the department views all come from the contract.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from linkage.edges import PROBABILITY_DECIMALS
from linkage.houses import HOUSE_CANDIDATES
from linkage.unpublished import UNPUBLISHED, UNPUBLISHED_LINKS, reset_unpublished, unpublished
from sharehub.errors import PublishAborted
from sharehub.publish import expectations, gx_import
from sharehub.publish.contract import shared_contract
from sharehub.publish.delta import (
    Delta,
    apply_in_place,
    changed_rows,
    index_published,
    index_table,
    same_columns,
)
from sharehub.publish.golden import (
    build_golden,
    drop_golden_temps,
    golden_changes,
    golden_person_sql,
)
from sharehub.warehouse import one

log = logging.getLogger(__name__)

_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS audit.publish_versions (
    version INTEGER PRIMARY KEY,
    published_at TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL,
    content_hash UBIGINT NOT NULL,
    persons BIGINT NOT NULL,
    records BIGINT NOT NULL
);
ALTER TABLE audit.publish_versions ADD COLUMN IF NOT EXISTS suites_sha256 VARCHAR;
"""

# Civil-affairs benefits: the current version of every recipient record (one per person per
# benefit), inactive ones (left the rolls) included. LEFT JOIN: a record without a person id
# must fail the person_id expectation, not vanish.
_BENEFITS = """
    SELECT 'ca_recipients:' || c.recipient_no AS record_id, p.person_id, c.benefit_type,
           c.monthly_amount, c.status, c.registered_on, c.record_status, c.batch_id
    FROM staging.ca_recipients c
    LEFT JOIN linkage.person_ids p ON p.record_id = 'ca_recipients:' || c.recipient_no
    WHERE c.is_current
    ORDER BY record_id
"""

# Health key-population tags: the ;-separated field of every current, not deleted health
# record, one row per person and tag with the records that carry it.
_HEALTH_TAGS = """
    SELECT p.person_id, t.tag,
           list(DISTINCT t.record_id ORDER BY t.record_id) AS source_records,
           max(t.updated_at) AS updated_at
    FROM (
        SELECT 'hw_ehr_person:' || h.record_id AS record_id, h.updated_at,
               trim(unnest(string_split(replace(h.key_population, '；', ';'), ';'))) AS tag
        FROM staging.hw_ehr_person h
        WHERE h.is_current AND h.record_status = 'active' AND h.key_population IS NOT NULL
    ) t
    LEFT JOIN linkage.person_ids p ON p.record_id = t.record_id
    WHERE t.tag <> ''
    GROUP BY p.person_id, t.tag
    ORDER BY p.person_id, t.tag
"""



def person_xref_sql(records: str | None = None) -> str:
    """SELECT of ``shared.person_xref``: one row per staged record with a person; with
    ``records`` (a relation of record_id) only those records' rows."""
    def only(column: str) -> str:
        return f" WHERE {column} IN (SELECT record_id FROM {records})" if records else ""

    return f"""
        SELECT p.person_id, r.feed, r.source_key, r.record_id,
               round(m.match_probability, {PROBABILITY_DECIMALS}) AS match_probability,
               r.record_status, r.batch_id, e.ended_at AS valid_to
        FROM linkage.person_ids p
        JOIN staging.person_records r ON r.record_id = p.record_id
        -- ended records (注销, deleted, off the rolls) keep their person with an end date
        LEFT JOIN linkage.record_end_dates e ON e.record_id = r.record_id
        LEFT JOIN (
            SELECT record_id, max(match_probability) AS match_probability FROM (
                SELECT unique_id_l AS record_id, match_probability FROM linkage.cluster_edges{only("unique_id_l")}
                UNION ALL
                SELECT unique_id_r, match_probability FROM linkage.cluster_edges{only("unique_id_r")}
            ) GROUP BY record_id
        ) m ON m.record_id = r.record_id{only("p.record_id")}
    """


# What each shared table is built from.
_CANDIDATES: dict[str, str] = {
    "person_xref": person_xref_sql(),
    "person": golden_person_sql(),
    "person_id_changes": """
        SELECT old_person_id, new_person_id, kind, run_id, changed_at, records, batch_ids
        FROM linkage.person_id_changes
    """,
    "benefits": _BENEFITS,
    "health_tags": _HEALTH_TAGS,
    # house, residence (linkage/houses.py). Its HOUSE_CHECKS are all expressed by
    # contracts/shared_house.yaml and shared_residence.yaml and run as expectations.
    **HOUSE_CANDIDATES,
}


def _link_targets() -> dict[str, tuple[str, ...]]:
    """Shared tables other shared tables point to (the contracts' relationships) and the
    columns pointed to: changed in place, a table keeps these columns of its deleted rows
    for validating the rows pointing to them (`expectations.batch_sql`)."""
    targets: dict[str, dict[str, None]] = {}
    for name in _CANDIDATES:
        for link in expectations.own_links(shared_contract(name)):
            if link.target.shared:
                targets.setdefault(link.target.table, {}).update(dict.fromkeys(link.target.columns))
    return {name: tuple(columns) for name, columns in targets.items()}


@dataclass(frozen=True)
class PublishResult:
    """The version now published and whether this call created it."""

    version: int
    created: bool
    persons: int
    records: int
    published_at: datetime | None = None


def _candidate(name: str) -> str:
    return f"shared.{name}__candidate"


def sources(sql: str) -> set[str]:
    """Schema-qualified tables a candidate SELECT reads (DuckDB's parser; aliases dropped)."""
    found = duckdb.get_table_names(sql, qualified=True)
    return {re.split(r"\s+AS\s+", name, flags=re.IGNORECASE)[0].strip() for name in found if "." in name}


def _build(con: duckdb.DuckDBPyConnection, name: str, sql: str, existing: set[str]) -> None:
    """Create the whole candidate ``shared.<name>__candidate``."""
    contract = shared_contract(name)
    missing = _missing_sources(sql, existing)
    if not missing and name == "person":
        build_golden(con, _candidate(name))
        return
    if not missing:
        con.execute(f"CREATE OR REPLACE TABLE {_candidate(name)} AS {sql}")
        return
    if contract.when_source_missing != "empty":
        raise PublishAborted(
            f"shared.{name} cannot be built: {', '.join(missing)} do(es) not exist; run the "
            "stages that write them (sharehub run) before publishing",
            missing=missing,
        )
    log.warning("shared.%s published empty: %s do(es) not exist yet", name, ", ".join(missing))
    columns = ", ".join(f"{expectations.quote(c.name)} {c.duckdb_type}" for c in contract.columns)
    con.execute(f"CREATE OR REPLACE TABLE {_candidate(name)} ({columns})")


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every ``schema.table`` (or view) there is, read once per publication: asking per
    table cost ~30 catalogue queries of ~12 ms each. Tables the publication creates are
    never looked up here."""
    rows = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    return {str(r[0]) for r in rows}


def _missing_sources(sql: str, existing: set[str]) -> list[str]:
    return sorted(t for t in sources(sql) if t not in existing)


def unordered(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` without its top-level ORDER BY, by DuckDB's own parser; unchanged when it
    has none, has a LIMIT or OFFSET, or is not one plain SELECT.

    Why: rows changed in place go to the end of the published table whatever order they
    come in (docs/decisions/0004), and sorting two million residence rows only to find the
    few thousand that differ cost about a second a day.
    """
    parsed = json.loads(str(one(con, "SELECT json_serialize_sql(?)", [sql])[0]))
    if parsed.get("error") or len(parsed.get("statements", [])) != 1:
        return sql
    node = parsed["statements"][0]["node"]
    if node.get("type") != "SELECT_NODE" or [m.get("type") for m in node.get("modifiers", [])] != ["ORDER_MODIFIER"]:
        return sql
    node["modifiers"] = []
    return str(one(con, "SELECT json_deserialize_sql(?)", [json.dumps(parsed)])[0])


def _new_rows(
    con: duckdb.DuckDBPyConnection, name: str, sql: str, existing: set[str]
) -> tuple[str, str | None] | None:
    """(relation of the table's new rows, scope) for changing ``shared.<name>`` in place,
    or None when it has to be built whole (see `_stage`).

    A SELECT reading one table becomes a temp view (reading the table again costs less
    than copying two million rows); others are computed once into a temp table.
    """
    if not shared_contract(name).key or _missing_sources(sql, existing):
        return None
    if name == "person":
        return golden_changes(con)
    if name == "person_xref" and unpublished(con):
        # only the records whose row may differ (`linkage.unpublished`); scoped by them
        con.execute(f"CREATE OR REPLACE TEMP TABLE _xref_scope AS SELECT record_id FROM {UNPUBLISHED} "
                    f"UNION SELECT record_id FROM {UNPUBLISHED_LINKS}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _new_rows_{name} AS {person_xref_sql('_xref_scope')}")
        return f"_new_rows_{name}", "SELECT record_id FROM _xref_scope"
    rows, kind = f"_new_rows_{name}", "VIEW" if len(sources(sql)) == 1 else "TABLE"
    con.execute(f"CREATE OR REPLACE TEMP {kind} {rows} AS {unordered(con, sql)}")
    return rows, None


def _drop_temp(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Drop a temp table or view (DuckDB wants to be told which)."""
    views = one(con, "SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal AND view_name = ?",
                [relation])[0]
    con.execute(f"DROP {'VIEW' if views else 'TABLE'} IF EXISTS {relation}")


def _stage(
    con: duckdb.DuckDBPyConnection,
    name: str,
    sql: str,
    baseline: expectations.Relation | None,
    existing: set[str],
) -> tuple[str, str | None] | None:
    """Prepare one table of the version: return (new rows, scope) to apply to the published
    table in place, or None after building ``shared.<name>__candidate`` whole.

    In place needs a baseline (the published tables are exactly the last version and
    passed the same suites), a key in the contract and the same columns as published;
    a first version, changed suites or changed columns build the whole table.
    """
    staged = _new_rows(con, name, sql, existing) if baseline is not None else None
    if staged is not None and same_columns(con, staged[0], _published(name)):
        return staged
    if staged is not None and name != "person":
        _drop_temp(con, staged[0])
        con.execute(f"CREATE OR REPLACE TABLE {_candidate(name)} AS {sql}")
        return None
    if staged is not None:  # golden rows of another shape: recompute them all
        con.execute(f"DROP TABLE {staged[0]}")
        baseline = None
    _build(con, name, sql, existing)
    return None


def _previous_rows(con: duckdb.DuckDBPyConnection, existing: set[str]) -> dict[str, int | None]:
    return {
        name: int(one(con, f"SELECT count(*) FROM shared.{name}")[0])
        if f"shared.{name}" in existing else None
        for name in _CANDIDATES
    }


def _joined_feeds(con: duckdb.DuckDBPyConnection, candidate: str, existing: set[str]) -> list[str]:
    """Feeds with records in the candidate ``person_xref`` but none in the published one."""
    if "shared.person_xref" not in existing:
        return []
    rows = con.execute(
        f"SELECT DISTINCT feed FROM {candidate} "
        "EXCEPT SELECT DISTINCT feed FROM shared.person_xref ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows if r[0] is not None]


def _table_hash(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    """A table's content hash: ``bit_xor`` of its rows' hashes (order-free; changing a
    row moves it by the old and the new row's hash, `sharehub.publish.delta`)."""
    return int(one(con, f"SELECT coalesce(bit_xor(hash(t)), 0) FROM {relation} t")[0])


def _digest(con: duckdb.DuckDBPyConnection, parts: list[int]) -> int:
    """The version's content hash from its tables' (in `_CANDIDATES` order)."""
    return int(one(con, "SELECT hash(?::UBIGINT[])", [parts])[0])


def _published(name: str) -> str:
    return f"shared.{name}"


def suites_fingerprint() -> str:
    """What a version was built and checked by: the reduced contracts, the rules deriving
    expectations from them (`expectations.SUITE_RULES`) and the SELECTs building each
    table (the survivorship rules among them). A version validated under other suites is
    no baseline for checking only what changed, and rows kept from a version built by
    other SELECTs (golden rows of unchanged persons, `golden.golden_changes`) would not
    be what today's SELECTs give."""
    text = repr([expectations.SUITE_RULES, *(shared_contract(n) for n in _CANDIDATES), *_CANDIDATES.values()])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _baseline(
    con: duckdb.DuckDBPyConnection, last: tuple[Any, ...] | None, existing: set[str]
) -> dict[str, int] | None:
    """The published tables' content hashes, if the tables are exactly the last version
    (content hash) and it passed the current suites (fingerprint): they are then the
    baseline that validation and changing in place start from."""
    if last is None or last[3] != suites_fingerprint():
        return None
    if not all(_published(name) in existing for name in _CANDIDATES):
        return None
    # A keyed table is hashed while indexing it for changing it in place (one pass).
    targets = _link_targets()
    hashes = {
        name: index_published(con, name, key, targets.get(name, ())) if (key := shared_contract(name).key)
        else _table_hash(con, _published(name))
        for name in _CANDIDATES
    }
    if _digest(con, list(hashes.values())) != int(last[1]):
        log.warning("shared tables differ from published version %s; validating in full", last[0])
        _drop_indexes(con)
        return None
    return hashes


def _drop_indexes(con: duckdb.DuckDBPyConnection) -> None:
    for name in _CANDIDATES:
        con.execute(f"DROP TABLE IF EXISTS {index_table(name)}")


def publish(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    now: datetime | None = None,
    full_validation: bool = False,
) -> PublishResult:
    """Build candidates, validate them against their contracts, swap them in if they changed.

    Validation covers every row the first time and whenever the suites changed; otherwise
    only the rows that differ from the published version, which passed the same suites
    (`expectations.batch_sql`), unless ``full_validation``. In that second case the
    published tables are changed in place, key by key (`sharehub.publish.delta`), instead
    of being replaced by whole new candidates; ``full_validation`` builds them whole.

    A candidate that fails any expectation raises :class:`PublishAborted` whose
    ``details["failures"]`` lists every failure (table, expectation, column, examples);
    the transaction is rolled back, so the shared tables and ``audit.publish_versions``
    are exactly as before.
    """
    now = now or datetime.now()
    gx_import.start()  # the ~3 s import overlaps the SQL below (`sharehub.publish.gx_import`)
    con.execute(_VERSIONS_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        existing = _relations(con)
        previous = _previous_rows(con, existing)
        versions = con.execute(
            "SELECT version, content_hash, published_at, suites_sha256 "
            "FROM audit.publish_versions ORDER BY version DESC LIMIT 1"
        ).fetchall()
        last = versions[0] if versions else None
        published_hashes = None if full_validation else _baseline(con, last, existing)
        baseline = _published if published_hashes is not None else None
        drop_golden_temps(con)
        staged = {name: _stage(con, name, sql, baseline, existing) for name, sql in _CANDIDATES.items()}
        xref = staged["person_xref"]
        joined = _joined_feeds(con, xref[0] if xref else _candidate("person_xref"), existing)
        # Only now, every new row being computed: change the published tables in place.
        targets = _link_targets()
        deltas: dict[str, Delta] = {
            name: apply_in_place(con, name, rows, shared_contract(name).key, scope,
                                 keep=targets.get(name, ()), indexed=True)
            for name, (rows, scope) in ((n, s) for n, s in staged.items() if s is not None)
        }
        _drop_indexes(con)  # those of tables built whole

        def relation(name: str) -> str:
            return _published(name) if name in deltas else _candidate(name)

        if joined:
            # A feed's first records (a department's first delivery, or deliveries of a
            # first load arriving on different days) grow every table legitimately.
            log.warning("feed(s) %s publish for the first time: row counts are not bounded "
                        "against the previous version", ", ".join(joined))
            previous = dict.fromkeys(previous)
        changed = {
            name: expectations.Changes(changed_rows(d, shared_contract(name).key), d.written, d.old)
            for name, d in deltas.items()
        }
        expectations.check(con, _CANDIDATES, relation, previous, baseline, changed)
        for temp in (t for d in deltas.values() for t in (d.keys, d.old) if t is not None):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
        for name in deltas:
            if name != "person":
                _drop_temp(con, f"_new_rows_{name}")
        con.execute("DROP TABLE IF EXISTS _xref_scope")
        digest = _digest(con, [
            published_hashes[name] ^ deltas[name].deleted_hash ^ deltas[name].inserted_hash
            if published_hashes and name in deltas else _table_hash(con, relation(name))
            for name in _CANDIDATES
        ])
        persons, records = one(
            con,
            f"SELECT (SELECT count(*) FROM {relation('person')}), "
            f"(SELECT count(*) FROM {relation('person_xref')})",
        )
        if last is not None and int(last[1]) == digest:
            con.execute("ROLLBACK")
            log.info("candidate equals published version %s; nothing to publish", last[0])
            return PublishResult(int(last[0]), False, persons, records, last[2])
        version = (int(last[0]) if last else 0) + 1
        drop_golden_temps(con)
        # the published tables now match their sources: changes are noted afresh
        reset_unpublished(con)
        con.execute("DROP TABLE IF EXISTS linkage.golden_inputs")  # fingerprints before 2026-11-28
        for name in (n for n in _CANDIDATES if n not in deltas):
            # Renamed, not copied: the department views bind shared.<name> by name when
            # queried, and a copy of two million rows cost seconds per table.
            con.execute(f"DROP TABLE IF EXISTS shared.{name}")
            con.execute(f"ALTER TABLE {_candidate(name)} RENAME TO {name}")
        con.execute(
            "INSERT INTO audit.publish_versions (version, published_at, run_id, content_hash, "
            "persons, records, suites_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [version, now, run_id, digest, persons, records, suites_fingerprint()],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    log.info("published version %s: %s persons, %s records", version, persons, records)
    return PublishResult(version, True, persons, records, now)
