"""Read the health front-end table incrementally, with retries, as delivered text.

Why here and not in the readers: the health feed is a database, not a file. It is read
with SQLAlchemy (PostgreSQL in production, a SQLite file locally) from the rows whose
``updated_at`` is newer than the watermark. A front-end database that does not answer is
retried a few times with backoff and then reported as :class:`SourceUnavailable`, so the
scheduler retries later and the watermark stays where it was.

Values are rendered to text (dates ISO, times local UTC+8 without zone, booleans
``true``/``false``) so the health feed lands in ``raw`` the same way the files do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from schemas.contract import FeedContract
from schemas.feeds import parse
from sharehub.errors import DeliveryRejected, SourceUnavailable
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
