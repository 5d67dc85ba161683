"""The batch ledger (``raw.batches``), the health watermark and the hub's row accounting.

Why a ledger: it is what makes pulling idempotent (a batch already loaded with the same
checksum is skipped, with a different checksum refused) and what lets an auditor check
invariant 1 of DESIGN.md: for every loaded delivery, rows landed = rows staged + rows
quarantined. :func:`check_ledger` recomputes those figures from ``raw``, ``staging`` and
``quarantine`` and fails loudly when the ledger and the tables disagree.

One row per (feed, batch_id, checksum) outcome: at most one ``loaded`` row per batch, and
a ``rejected`` row per distinct refused content (a refused re-delivery of a loaded batch
must not overwrite the loaded row).
"""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb

from sharehub.errors import ContractViolation

log = logging.getLogger(__name__)

LEDGER = "raw.batches"
WATERMARKS = "raw.watermarks"
QUARANTINE = "quarantine.rows"

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS raw",
    "CREATE SCHEMA IF NOT EXISTS quarantine",
    "CREATE SCHEMA IF NOT EXISTS staging",
    f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
        feed VARCHAR NOT NULL, batch_id VARCHAR NOT NULL, extract_type VARCHAR,
        checksum VARCHAR NOT NULL, rows_declared BIGINT, rows_landed BIGINT,
        rows_staged BIGINT, rows_quarantined BIGINT, status VARCHAR NOT NULL,
        reason VARCHAR, received_at TIMESTAMP, loaded_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {WATERMARKS} (
        feed VARCHAR NOT NULL, watermark TIMESTAMP NOT NULL, batch_id VARCHAR,
        advanced_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {QUARANTINE} (
        feed VARCHAR NOT NULL, batch_id VARCHAR NOT NULL, row_number BIGINT NOT NULL,
        source_key VARCHAR, column_name VARCHAR, check_name VARCHAR, failure_value VARCHAR,
        reason VARCHAR, failures JSON, row_json JSON, quarantined_at TIMESTAMP)""",
    # Added after the first warehouses were written; ADD COLUMN keeps those readable.
    # extracted_at: the source time the delivery is as of (manifest extracted_at; for
    # health the new watermark), which the freshness SLA is measured on. notes: what a
    # loaded delivery did that a person should know (ignored extra columns).
    f"ALTER TABLE {LEDGER} ADD COLUMN IF NOT EXISTS extracted_at TIMESTAMP",
    f"ALTER TABLE {LEDGER} ADD COLUMN IF NOT EXISTS notes VARCHAR",
    # checked_at: the last time the source was read successfully, new rows or not.
    f"ALTER TABLE {WATERMARKS} ADD COLUMN IF NOT EXISTS checked_at TIMESTAMP",
)
_LEDGER_COLUMNS = (
    "feed, batch_id, extract_type, checksum, rows_declared, rows_landed, rows_staged, "
    "rows_quarantined, status, reason, received_at, loaded_at, extracted_at, notes"
)


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger, watermark and quarantine tables when missing."""
    for statement in _DDL:
        con.execute(statement)


def loaded_checksum(con: duckdb.DuckDBPyConnection, feed: str, batch_id: str) -> str | None:
    """Checksum of the loaded version of a batch, or None when it was never loaded."""
    row = con.execute(
        f"SELECT checksum FROM {LEDGER} WHERE feed = ? AND batch_id = ? AND status = 'loaded'",
        [feed, batch_id],
    ).fetchone()
    return None if row is None else str(row[0])


def loaded_batches(con: duckdb.DuckDBPyConnection, feed: str) -> set[str]:
    """Batch ids of a feed that are loaded (everything else in landing is pending)."""
    rows = con.execute(
        f"SELECT batch_id FROM {LEDGER} WHERE feed = ? AND status = 'loaded'", [feed]
    ).fetchall()
    return {str(r[0]) for r in rows}


def record_loaded(
    con: duckdb.DuckDBPyConnection,
    *,
    feed: str,
    batch_id: str,
    extract_type: str,
    checksum: str,
    rows_declared: int,
    rows_landed: int,
    rows_staged: int,
    rows_quarantined: int,
    received_at: datetime,
    loaded_at: datetime,
    extracted_at: datetime | None = None,
    notes: str | None = None,
) -> None:
    """Write the ledger row of a loaded batch (inside the delivery's transaction)."""
    con.execute(
        f"INSERT INTO {LEDGER} ({_LEDGER_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'loaded', NULL, ?, ?, ?, ?)",
        [feed, batch_id, extract_type, checksum, rows_declared, rows_landed, rows_staged,
         rows_quarantined, received_at, loaded_at, extracted_at, notes],
    )


def record_rejected(
    con: duckdb.DuckDBPyConnection,
    *,
    feed: str,
    batch_id: str,
    extract_type: str | None,
    checksum: str | None,
    rows_declared: int | None,
    reason: str,
    received_at: datetime,
) -> None:
    """Record (or refresh) the rejection of one delivered content of a batch."""
    key = [feed, batch_id, checksum or ""]
    con.begin()
    try:
        con.execute(
            f"DELETE FROM {LEDGER} WHERE feed = ? AND batch_id = ? AND checksum = ? "
            "AND status = 'rejected'",
            key,
        )
        con.execute(
            f"INSERT INTO {LEDGER} ({_LEDGER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, 'rejected', ?, ?, NULL, NULL, NULL)",
            [*key[:2], extract_type, key[2], rows_declared, reason, received_at],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def get_watermark(con: duckdb.DuckDBPyConnection, feed: str) -> datetime | None:
    """The feed's incremental watermark: the newest source update time loaded so far."""
    row = con.execute(f"SELECT max(watermark) FROM {WATERMARKS} WHERE feed = ?", [feed]).fetchone()
    return None if row is None or row[0] is None else row[0]


def set_watermark(
    con: duckdb.DuckDBPyConnection, feed: str, watermark: datetime, batch_id: str, now: datetime
) -> None:
    """Advance the watermark (inside the delivery's transaction, so only on success)."""
    con.execute(f"DELETE FROM {WATERMARKS} WHERE feed = ?", [feed])
    con.execute(
        f"INSERT INTO {WATERMARKS} (feed, watermark, batch_id, advanced_at, checked_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [feed, watermark, batch_id, now, now],
    )


def mark_checked(con: duckdb.DuckDBPyConnection, feed: str, now: datetime) -> None:
    """Record that the source was read successfully and held nothing new.

    Why: freshness is measured on when the hub last saw the source whole; a quiet day at
    the clinics must not make the health feed look stale. The watermark itself stays.
    """
    con.execute(f"UPDATE {WATERMARKS} SET checked_at = ? WHERE feed = ?", [now, feed])


def check_ledger(
    con: duckdb.DuckDBPyConnection, feed: str | None = None, batch_id: str | None = None
) -> None:
    """Recount every loaded batch and fail loudly when rows were lost or double counted.

    For each loaded batch: rows_landed = rows_staged + rows_quarantined, raw holds exactly
    rows_landed rows and quarantine exactly rows_quarantined.
    """
    where, params = "WHERE b.status = 'loaded'", []
    if feed is not None:
        where += " AND b.feed = ?"
        params.append(feed)
    if batch_id is not None:
        where += " AND b.batch_id = ?"
        params.append(batch_id)
    # Only feeds with a loaded batch: a feed that was only ever rejected may have no raw table.
    feeds = [r[0] for r in con.execute(f"SELECT DISTINCT feed FROM {LEDGER} b {where}", params).fetchall()]
    problems = []
    for name in feeds:
        rows = con.execute(
            f"""SELECT b.batch_id, b.rows_landed, b.rows_staged, b.rows_quarantined,
                       (SELECT count(*) FROM raw.{name} r WHERE r.batch_id = b.batch_id),
                       (SELECT count(*) FROM {QUARANTINE} q
                         WHERE q.feed = b.feed AND q.batch_id = b.batch_id)
                FROM {LEDGER} b {where} AND b.feed = ?""",
            [*params, name],
        ).fetchall()
        for batch, landed, staged, quarantined, in_raw, in_quarantine in rows:
            if landed != staged + quarantined or in_raw != landed or in_quarantine != quarantined:
                problems.append(
                    f"{name}/{batch}: landed={landed} staged={staged} quarantined={quarantined} "
                    f"raw rows={in_raw} quarantine rows={in_quarantine}"
                )
    if problems:
        raise ContractViolation(
            "row accounting broken (rows landed must equal staged + quarantined, and raw and "
            "quarantine must hold them): " + "; ".join(problems),
            feed=feed,
            batch=batch_id,
        )
