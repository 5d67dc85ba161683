"""Build, check and swap in the shared tables as one numbered version.

Why build-then-swap inside one transaction: DuckDB transactions are atomic, so a failed
check rolls everything back and subscribers keep the previous version (invariant 4).
Why a content hash: publishing the same input twice must change nothing (invariant 2),
so a candidate identical to the published version does not become a new version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb

from sharehub.errors import PublishAborted
from sharehub.publish.golden import golden_person_sql

log = logging.getLogger(__name__)

_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS audit.publish_versions (
    version INTEGER PRIMARY KEY,
    published_at TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL,
    content_hash UBIGINT NOT NULL,
    persons BIGINT NOT NULL,
    records BIGINT NOT NULL
)
"""

# What each shared table is built from. person_xref: one row per staged person record.
_CANDIDATES = {
    "person_xref": """
        SELECT p.person_id, r.feed, r.source_key, r.record_id,
               m.match_probability, r.record_status, r.batch_id
        FROM linkage.person_ids p
        JOIN staging.person_records r ON r.record_id = p.record_id
        LEFT JOIN (
            SELECT record_id, max(match_probability) AS match_probability FROM (
                SELECT unique_id_l AS record_id, match_probability FROM linkage.cluster_edges
                UNION ALL
                SELECT unique_id_r, match_probability FROM linkage.cluster_edges
            ) GROUP BY record_id
        ) m ON m.record_id = r.record_id
    """,
    "person": golden_person_sql(),
    "person_id_changes": """
        SELECT old_person_id, new_person_id, kind, run_id, changed_at, records
        FROM linkage.person_id_changes
    """,
}

# Checks on each candidate: (description, SQL returning offending example rows).
_CHECKS = {
    "person_xref": [
        ("record_id is unique", "SELECT record_id, count(*) n FROM {t} GROUP BY 1 HAVING n > 1"),
        ("person_id is not null", "SELECT record_id FROM {t} WHERE person_id IS NULL"),
        (
            "match_probability lies in [0, 1]",
            "SELECT record_id, match_probability FROM {t} "
            "WHERE match_probability < 0 OR match_probability > 1",
        ),
        (
            "every staged person record is cross-referenced",
            "SELECT r.record_id FROM staging.person_records r "
            "ANTI JOIN {t} x ON x.record_id = r.record_id",
        ),
    ],
    "person": [
        ("person_id is unique", "SELECT person_id, count(*) n FROM {t} GROUP BY 1 HAVING n > 1"),
        (
            "every person has a cross-reference",
            "SELECT p.person_id FROM {t} p ANTI JOIN shared.person_xref__candidate x "
            "ON x.person_id = p.person_id",
        ),
    ],
    "person_id_changes": [],
}


@dataclass(frozen=True)
class PublishResult:
    """The version now published and whether this call created it."""

    version: int
    created: bool
    persons: int
    records: int


def _candidate(name: str) -> str:
    return f"shared.{name}__candidate"


def _content_hash(con: duckdb.DuckDBPyConnection) -> int:
    parts = []
    for name in _CANDIDATES:
        row = con.execute(
            f"SELECT coalesce(bit_xor(hash(t)), 0) FROM {_candidate(name)} t"
        ).fetchone()
        parts.append(int(row[0]) if row else 0)
    row = con.execute("SELECT hash(?::UBIGINT[])", [parts]).fetchone()
    return int(row[0]) if row else 0


def _check(con: duckdb.DuckDBPyConnection) -> None:
    failures = []
    for name, checks in _CHECKS.items():
        for description, sql in checks:
            examples = con.execute(sql.format(t=_candidate(name)) + " LIMIT 5").fetchall()
            if examples:
                failures.append(f"shared.{name}: {description} failed, e.g. {examples}")
    if failures:
        raise PublishAborted(
            "candidate version failed validation; the previous version stays published: "
            + "; ".join(failures),
            failures=failures,
        )


def publish(con: duckdb.DuckDBPyConnection, *, run_id: str, now: datetime | None = None) -> PublishResult:
    """Build candidates, validate them, and swap them in as a new version if they changed."""
    now = now or datetime.now()
    con.execute(_VERSIONS_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        for name, sql in _CANDIDATES.items():
            con.execute(f"CREATE OR REPLACE TABLE {_candidate(name)} AS {sql}")
        _check(con)
        digest = _content_hash(con)
        counts = con.execute(
            f"SELECT (SELECT count(*) FROM {_candidate('person')}), "
            f"(SELECT count(*) FROM {_candidate('person_xref')})"
        ).fetchone()
        persons, records = (int(counts[0]), int(counts[1])) if counts else (0, 0)
        last = con.execute(
            "SELECT version, content_hash FROM audit.publish_versions ORDER BY version DESC LIMIT 1"
        ).fetchone()
        if last is not None and int(last[1]) == digest:
            con.execute("ROLLBACK")
            log.info("candidate equals published version %s; nothing to publish", last[0])
            return PublishResult(int(last[0]), False, persons, records)
        version = (int(last[0]) if last else 0) + 1
        for name in _CANDIDATES:
            con.execute(f"CREATE OR REPLACE TABLE shared.{name} AS SELECT * FROM {_candidate(name)}")
            con.execute(f"DROP TABLE {_candidate(name)}")
        con.execute(
            "INSERT INTO audit.publish_versions VALUES (?, ?, ?, ?, ?, ?)",
            [version, now, run_id, digest, persons, records],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    log.info("published version %s: %s persons, %s records", version, persons, records)
    return PublishResult(version, True, persons, records)
