"""Land a validated delivery in ``raw`` and ``quarantine`` and apply it to ``staging``.

``staging.<feed>`` keeps every version of every source record (type-2 history): each
version has ``valid_from``/``valid_to``, ``is_current`` marks the newest version of a
record, ``batch_id``/``row_number`` point to the delivered row, ``change_type`` says what
the version did (insert, update, reactivate, delete, inactivate) and ``record_status``
what the record is (active, deregistered, deleted, inactive). A record that ends (注销,
``is_deleted``, gone from a civil-affairs full extract) is never deleted: its newest
version carries the end status, with ``valid_from = valid_to =`` the end time, so linkage
still sees it. Re-delivering unchanged values creates no version (``row_hash``), which is
what keeps weekly full extracts and repeated pulls idempotent.

Every function here runs inside the caller's transaction (one per delivery).
"""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb
import pandas as pd

from schemas.contract import FeedContract
from sharehub.errors import ContractViolation
from sharehub.feeds.ledger import QUARANTINE
from sharehub.feeds.validate import QUARANTINE_COLUMNS

log = logging.getLogger(__name__)

META_COLUMNS = {
    "record_status": "VARCHAR",
    "valid_from": "TIMESTAMP",
    "valid_to": "TIMESTAMP",
    "is_current": "BOOLEAN",
    "batch_id": "VARCHAR",
    "row_number": "BIGINT",
    "change_type": "VARCHAR",
    "row_hash": "VARCHAR",
}


def ensure_feed_tables(con: duckdb.DuckDBPyConnection, contract: FeedContract) -> None:
    """Create ``raw.<feed>`` (all text) and ``staging.<feed>`` (typed, with history)."""
    raw_cols = ", ".join(f"{c.name} VARCHAR" for c in contract.columns)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.{contract.feed} "
        f"(batch_id VARCHAR NOT NULL, row_number BIGINT NOT NULL, {raw_cols})"
    )
    typed = [f"{c.name} {c.duckdb_type}" for c in contract.columns]
    meta = [f"{name} {kind}" for name, kind in META_COLUMNS.items()]
    con.execute(f"CREATE TABLE IF NOT EXISTS staging.{contract.feed} ({', '.join(typed + meta)})")


def land(
    con: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    batch_id: str,
    delivered: pd.DataFrame,
    quarantine: pd.DataFrame,
    now: datetime,
) -> None:
    """Write every delivered row to raw (as text) and the failing ones to quarantine."""
    cols = ", ".join(c.name for c in contract.columns)
    con.execute(f"DELETE FROM raw.{contract.feed} WHERE batch_id = ?", [batch_id])
    con.execute(f"DELETE FROM {QUARANTINE} WHERE feed = ? AND batch_id = ?", [contract.feed, batch_id])
    frame = delivered.reset_index()
    con.register("_delivered", frame)
    try:
        con.execute(
            f"INSERT INTO raw.{contract.feed} (batch_id, row_number, {cols}) "
            f"SELECT ?, row_number, {cols} FROM _delivered ORDER BY row_number",
            [batch_id],
        )
    finally:
        con.unregister("_delivered")
    if not quarantine.empty:
        con.register("_quarantine", quarantine.assign(batch_id=batch_id))
        try:
            q = ", ".join(QUARANTINE_COLUMNS)
            con.execute(f"INSERT INTO {QUARANTINE} ({q}, quarantined_at) SELECT {q}, ? FROM _quarantine", [now])
        finally:
            con.unregister("_quarantine")


def _end_status(contract: FeedContract) -> str:
    """SQL for the status a delivered row gives its record: active unless it ends it."""
    if contract.change_column and contract.end_value:
        return f"CASE WHEN {contract.change_column} = '{contract.end_value}' THEN 'deregistered' ELSE 'active' END"
    if contract.deleted_column:
        return f"CASE WHEN {contract.deleted_column} THEN 'deleted' ELSE 'active' END"
    return "'active'"


def _hashed_columns(contract: FeedContract) -> list[str]:
    """Columns whose change makes a new version: values, not bookkeeping (变动类型, times)."""
    skip = {contract.change_column, contract.deleted_column, contract.watermark_column, "updated_at"}
    return [c.name for c in contract.columns if c.name not in skip]


def apply(
    con: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    batch_id: str,
    typed: pd.DataFrame,
    event_time: datetime,
) -> dict[str, int]:
    """Apply the passing rows of one delivery to ``staging.<feed>``; count changes by kind.

    Each row upserts its record (close the current version, open a new one) unless its
    values are unchanged; a row that ends its record opens a terminal version. The version
    time is the row's ``updated_at`` where the feed has one, else ``event_time`` (the
    extract time of the delivery); a row older than the version it replaces starts at
    that version's start, so history never runs backwards (``updated_at`` keeps the
    source time).
    """
    feed, key = contract.feed, contract.key.name
    names = [c.name for c in contract.columns]
    casts = ", ".join(f"CAST({n} AS {contract.column(n).duckdb_type}) AS {n}" for n in names)
    hashed = ", ".join(f"{n} := {n}" for n in _hashed_columns(contract))
    when = "updated_at" if "updated_at" in names else "CAST(? AS TIMESTAMP)"
    params: list[object] = [] if "updated_at" in names else [event_time]
    con.register("_typed", typed.reset_index())
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _incoming AS
                SELECT *, md5(CAST(struct_pack({hashed}) AS VARCHAR)) AS row_hash,
                       {_end_status(contract)} AS new_status
                FROM (SELECT {casts}, row_number, {when} AS event_time FROM _typed)""",
            params,
        )
    finally:
        con.unregister("_typed")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _plan AS
            SELECT i.* REPLACE (greatest(i.event_time, c.valid_from) AS event_time),
                   CASE WHEN c.{key} IS NULL THEN
                             CASE WHEN i.new_status = 'active' THEN 'insert' ELSE 'delete' END
                        WHEN c.row_hash = i.row_hash AND c.record_status = i.new_status
                             THEN 'unchanged'
                        WHEN i.new_status <> 'active' THEN 'delete'
                        WHEN c.record_status <> 'active' THEN 'reactivate'
                        ELSE 'update' END AS change_type
            FROM _incoming i LEFT JOIN staging.{feed} c ON c.{key} = i.{key} AND c.is_current"""
    )
    con.execute(
        f"""UPDATE staging.{feed} SET is_current = false,
                   valid_to = coalesce(staging.{feed}.valid_to, _plan.event_time)
            FROM _plan
            WHERE staging.{feed}.{key} = _plan.{key} AND staging.{feed}.is_current
              AND _plan.change_type <> 'unchanged'"""
    )
    cols = ", ".join(names)
    con.execute(
        f"""INSERT INTO staging.{feed} ({cols}, record_status, valid_from, valid_to, is_current,
                                       batch_id, row_number, change_type, row_hash)
            SELECT {cols}, new_status, event_time,
                   CASE WHEN new_status <> 'active' THEN event_time END, true,
                   ?, row_number, change_type, row_hash
            FROM _plan WHERE change_type <> 'unchanged'""",
        [batch_id],
    )
    counts = dict(con.execute("SELECT change_type, count(*) FROM _plan GROUP BY ALL").fetchall())
    con.execute("DROP TABLE _incoming")
    con.execute("DROP TABLE _plan")
    _check_one_current(con, contract, batch_id)
    return {str(k): int(v) for k, v in counts.items()}


def _check_one_current(con: duckdb.DuckDBPyConnection, contract: FeedContract, batch_id: str) -> None:
    """Fail the delivery if any record ends up with other than one current version."""
    key = contract.key.name
    broken = con.execute(
        f"SELECT {key}, count(*) FILTER (WHERE is_current) FROM staging.{contract.feed} "
        f"GROUP BY {key} HAVING count(*) FILTER (WHERE is_current) <> 1 LIMIT 3"
    ).fetchall()
    if broken:
        raise ContractViolation(
            f"staging.{contract.feed} would hold records with other than one current version "
            f"({', '.join(f'{k}: {n}' for k, n in broken)}); the delivery is rolled back",
            feed=contract.feed,
            batch=batch_id,
        )


def retire_missing(
    con: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    batch_id: str,
    delivered: pd.DataFrame,
    event_time: datetime,
) -> int:
    """After a replacing full extract, make active records it no longer holds inactive.

    Keys delivered in the extract but quarantined count as present: a row the department
    sent with a bad value has not left the rolls.
    """
    feed, key = contract.feed, contract.key.name
    keys = pd.DataFrame({key: delivered[key].dropna().str.strip().unique()}, dtype="str")
    con.register("_present", keys)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _gone AS
                SELECT * FROM staging.{feed}
                WHERE is_current AND record_status = 'active'
                  AND {key} NOT IN (SELECT {key} FROM _present)"""
        )
    finally:
        con.unregister("_present")
    gone = int(con.execute("SELECT count(*) FROM _gone").fetchone()[0])  # type: ignore[index]
    if gone:
        cols = ", ".join(c.name for c in contract.columns)
        con.execute(
            f"""UPDATE staging.{feed} SET is_current = false, valid_to = ?
                WHERE is_current AND {key} IN (SELECT {key} FROM _gone)""",
            [event_time],
        )
        con.execute(
            f"""INSERT INTO staging.{feed} ({cols}, record_status, valid_from, valid_to,
                                           is_current, batch_id, row_number, change_type, row_hash)
                SELECT {cols}, 'inactive', ?, ?, true, ?, NULL, 'inactivate', row_hash FROM _gone""",
            [event_time, event_time, batch_id],
        )
        log.info("%s/%s: %d records left the rolls (inactive)", feed, batch_id, gone)
    con.execute("DROP TABLE _gone")
    return gone
