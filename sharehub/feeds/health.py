"""Read the health front-end table incrementally, with retries, as delivered text.

Why here and not in the readers: the health feed is a database, not a file. It is read
with SQLAlchemy (PostgreSQL in production, a SQLite file locally) from the rows whose
``updated_at`` is newer than the watermark. A front-end database that does not answer is
retried a few times with backoff and then reported as :class:`SourceUnavailable`, so the
scheduler retries later and the watermark stays where it was.

Values are rendered to text (dates ISO, times local UTC+8 without zone, booleans
``true``/``false``) so the health feed lands in ``raw`` the same way the files do.
The read starts an overlap window behind the watermark (rows committed late); what an
earlier pull already landed is dropped again here (`without_landed`,
`without_known_unplaced`) before the pull validates and loads the rest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from schemas.contract import FeedContract
from schemas.feeds import parse
from sharehub.errors import DeliveryRejected, SourceUnavailable
from sharehub.feeds.ledger import LEDGER, QUARANTINE
from sharehub.feeds.manifest import CHINA
from sharehub.feeds.readers import ROW

log = logging.getLogger(__name__)

T = TypeVar("T")
_FETCH = 50_000


def render_value(value: Any) -> str | None:
    """A database value as text, the way it lands in ``raw.hw_ehr_person``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(CHINA).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def with_retries(action: Callable[[], T], *, feed: str, attempts: int, backoff: float) -> T:
    """Run ``action``; on a connection failure wait ``backoff * 2**n`` seconds and retry."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (sa.exc.OperationalError, sa.exc.InterfaceError, FileNotFoundError) as exc:
            if attempt == attempts:
                raise SourceUnavailable(
                    f"health front-end database ({feed}) unreachable after {attempts} attempts: "
                    f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}; check "
                    "SHAREHUB_HEALTH_URL and the network, then pull again (the watermark "
                    "is unchanged)",
                    feed=feed,
                    attempts=attempts,
                ) from exc
            delay = backoff * 2 ** (attempt - 1)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs", feed, attempt, attempts, exc, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _engine(url: str) -> sa.Engine:
    """An engine for the front-end URL; a missing SQLite file is unreachable, not created."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:") and not Path(
        str(database)
    ).exists():
        raise FileNotFoundError(f"SQLite database {database} does not exist")
    return sa.create_engine(url)


def read_since(
    url: str, contract: FeedContract, watermark: datetime | None, batch_hint: str
) -> pd.DataFrame:
    """Rows of the contract's table updated after ``watermark``, as text, ordered by time.

    The SQL filter narrows the read; the same filter is applied again after typing, so a
    SQLite table storing times in another text format can only over-select, never miss.
    """
    table = contract.file_name
    names = [c.physical for c in contract.columns]
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            present = {col["name"] for col in sa.inspect(conn).get_columns(table)} if sa.inspect(
                conn
            ).has_table(table) else None
            if present is None:
                raise DeliveryRejected(
                    f"table {table} not found in the health front-end database",
                    feed=contract.feed,
                    batch=batch_hint,
                )
            missing = [n for n in names if n not in present]
            if missing:
                raise DeliveryRejected(
                    f"table {table} lacks required column(s) {', '.join(missing)}",
                    feed=contract.feed,
                    batch=batch_hint,
                    column=missing[0],
                )
            column = contract.watermark_column or "updated_at"
            query = f"SELECT {', '.join(names)} FROM {table}"
            params: dict[str, Any] = {}
            if watermark is not None:
                query += f" WHERE {column} > :watermark"
                params["watermark"] = watermark.strftime("%Y-%m-%d %H:%M:%S.%f")
            query += f" ORDER BY {column}, {contract.key.physical}"
            result = conn.execution_options(stream_results=True).execute(sa.text(query), params)
            rows: list[list[str | None]] = []
            while chunk := result.fetchmany(_FETCH):
                rows.extend([render_value(v) for v in row] for row in chunk)
    finally:
        engine.dispose()
    frame = pd.DataFrame(rows, columns=[c.name for c in contract.columns], dtype="str")
    if watermark is not None and not frame.empty:
        stamp = parse(frame[column], contract.column(column))
        frame = frame[stamp.isna() | (stamp > pd.Timestamp(watermark))]
    frame.index = pd.RangeIndex(1, len(frame) + 1, name=ROW)
    return frame


def without_landed(
    con: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    delivered: pd.DataFrame,
    since: datetime | None,
    hint: str,
) -> pd.DataFrame:
    """Drop the rows of the overlap window (``updated_at`` at or before ``since``) that an
    earlier pull already landed with the same values.

    What stays of the overlap was committed after that pull: a late row. A row landed
    before with the same key and ``updated_at`` but other values is a change the
    front-end did not date, which is rejected as in any other pull.
    """
    column = contract.watermark_column or "updated_at"
    if since is None or delivered.empty:
        return delivered
    stamps = parse(delivered[column], contract.column(column))
    overlap = delivered[stamps.notna() & (stamps <= pd.Timestamp(since))]
    if overlap.empty:
        return delivered
    key = contract.key.name
    names = [c.name for c in contract.columns]
    landed = con.execute(
        f"SELECT {', '.join(names)} FROM raw.{contract.feed} r "
        f"SEMI JOIN {LEDGER} b ON b.feed = ? AND b.batch_id = r.batch_id "
        "AND b.status = 'loaded' WHERE list_contains(?, r." + key + ")",
        [contract.feed, [str(k) for k in overlap[key].dropna().unique()]],
    ).fetchall()
    seen = {tuple(row) for row in landed}
    dated = {(row[names.index(key)], row[names.index(column)]) for row in landed}
    drop = []
    for row_number in overlap.index.tolist():
        row = overlap.loc[row_number]
        values = tuple(None if pd.isna(v) else v for v in row[names])
        if values in seen:
            drop.append(row_number)
        elif (row[key], row[column]) in dated:
            raise DeliveryRejected(
                f"health record {row[key]} changed without a newer {column} "
                f"({row[column]}): the front-end must advance {column} on every change",
                feed=contract.feed, batch=hint, row=int(row_number), column=column,
            )
    kept = delivered.drop(index=drop)
    if drop:
        log.info("%s: %d row(s) of the %s overlap already landed: skipped; %d late row(s) kept",
                 contract.feed, len(drop), column, len(overlap) - len(drop))
    kept.index = pd.RangeIndex(1, len(kept) + 1, name=ROW)
    return kept


def without_known_unplaced(
    con: duckdb.DuckDBPyConnection, contract: FeedContract, delivered: pd.DataFrame
) -> pd.DataFrame:
    """Drop rows with an unreadable watermark value that are already quarantined unchanged.

    Why: such a row is over-selected by every incremental read (it cannot be compared with
    the watermark); without this it would be quarantined again on every pull, and a pull
    holding nothing else would look like a change without a newer ``updated_at``.
    """
    column = contract.watermark_column or "updated_at"
    if delivered.empty:
        return delivered
    unplaced = delivered[parse(delivered[column], contract.column(column)).isna()]
    if unplaced.empty:
        return delivered
    key = contract.key.name
    physical = {c.name: c.physical for c in contract.columns}
    known = con.execute(
        f"SELECT source_key, CAST(row_json AS VARCHAR) FROM {QUARANTINE} "
        "WHERE feed = ? AND list_contains(?, source_key)",
        [contract.feed, [str(k) for k in unplaced[key].dropna().unique()]],
    ).fetchall()
    seen = {(k, json.dumps(json.loads(v), sort_keys=True, ensure_ascii=False)) for k, v in known}
    drop = []
    for row_number, row in unplaced.iterrows():
        values = {physical[str(n)]: (None if pd.isna(v) else v) for n, v in row.items()}
        if (row[key], json.dumps(values, sort_keys=True, ensure_ascii=False)) in seen:
            drop.append(row_number)
    if not drop:
        return delivered
    log.info("%s: %d row(s) with an unreadable %s already quarantined unchanged: skipped",
             contract.feed, len(drop), column)
    kept = delivered.drop(index=drop)
    kept.index = pd.RangeIndex(1, len(kept) + 1, name=ROW)
    return kept
