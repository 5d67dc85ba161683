"""Is anything new waiting for a feed? A cheap, read-only look before a pull.

Why a separate check: an orchestrator that pulls on a schedule must not announce a
change when nothing arrived, or every daily run would relink and republish the district.
This module answers "what would a pull load?" without loading anything: it reads the
batch ledger read-only and lists the landing folders (file feeds), or compares the health
source's newest ``updated_at`` with the stored watermark (the health table).

It is an early exit, not the authority: the pull still decides what it loads, skips and
rejects. Where the check cannot tell (an unreadable ``updated_at``, a missing source
table), it says "pending" and lets the pull report what it finds, so the check can only
cost a needless pull, never hide a delivery.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sharehub.settings import Settings

log = logging.getLogger(__name__)

HEALTH_FEED = "hw_ehr_person"


def pending_batches(settings: Settings, feed: str) -> list[str]:
    """Batch ids a pull of ``feed`` would load now, oldest first; empty when nothing is new.

    File feeds: the delivery folders under ``<landing>/<feed>/`` that the ledger does not
    list as loaded (a refused delivery stays pending until it is fixed or withdrawn).
    The health table: one id, the newest ``updated_at`` after the watermark in the pull's
    batch-id form (``YYYYMMDDTHHMMSSffffff``), or ``initial`` / ``since-…`` when the
    newest value cannot be read or the table is missing (the pull then says why).
    """
    from schemas.contract import FEEDS

    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}; expected one of {', '.join(FEEDS)}")
    if feed == HEALTH_FEED:
        return _health_pending(settings, _watermark(settings, feed))
    root = Path(settings.landing) / feed
    if not root.is_dir():
        return []
    loaded = _loaded_batches(settings, feed)
    return sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in loaded
    )


def _ledger_rows(settings: Settings, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    """Rows of a ledger query on a read-only connection; none when the ledger does not exist.

    Read-only because the check runs beside the writers' queue: it must never create the
    warehouse or its tables. (A DuckDB file open for writing by another process still
    refuses it: callers that run concurrently with writers take the warehouse pool.)
    """
    from sharehub.feeds.ledger import LEDGER, WATERMARKS
    from sharehub.warehouse import connect, table_exists

    if not Path(settings.warehouse).exists():
        return []
    con = connect(settings, read_only=True)
    try:
        if not all(table_exists(con, t) for t in (LEDGER, WATERMARKS)):
            return []
        return [tuple(r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()


def _loaded_batches(settings: Settings, feed: str) -> set[str]:
    from sharehub.feeds.ledger import LEDGER

    rows = _ledger_rows(
        settings, f"SELECT batch_id FROM {LEDGER} WHERE feed = ? AND status = 'loaded'", [feed]
    )
    return {str(r[0]) for r in rows}


def _watermark(settings: Settings, feed: str) -> datetime | None:
    from sharehub.feeds.ledger import WATERMARKS

    rows = _ledger_rows(settings, f"SELECT max(watermark) FROM {WATERMARKS} WHERE feed = ?", [feed])
    value = rows[0][0] if rows else None
    return value if isinstance(value, datetime) else None


def _health_pending(settings: Settings, watermark: datetime | None) -> list[str]:
    """Compare the source's newest ``updated_at`` after the watermark with the watermark.

    The SQL filter is the one the pull uses, so both see the same rows; the newest value
    is then typed by the contract, as the pull types it.
    """
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from schemas.contract import feed_contract
    from schemas.feeds import parse
    from sharehub.feeds.health import render_value, with_retries

    contract = feed_contract(HEALTH_FEED)
    column = contract.watermark_column or "updated_at"
    url = settings.resolved_health_url
    hint = f"since-{watermark:%Y%m%dT%H%M%S%f}" if watermark else "initial"

    def newest() -> tuple[bool, object]:
        parsed = make_url(url)
        database = parsed.database
        if (parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
                and not Path(str(database)).exists()):  # a missing file is unreachable, not empty
            raise FileNotFoundError(f"SQLite database {database} does not exist")
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(contract.file_name):
                    return False, None
                query = f"SELECT max({column}) FROM {contract.file_name}"
                params: dict[str, str] = {}
                if watermark is not None:
                    query += f" WHERE {column} > :watermark"
                    params["watermark"] = watermark.strftime("%Y-%m-%d %H:%M:%S.%f")
                return True, conn.execute(sa.text(query), params).scalar()
        finally:
            engine.dispose()

    has_table, value = with_retries(newest, feed=HEALTH_FEED, attempts=2, backoff=1.0)
    if not has_table:
        log.warning("%s: table %s not found in the health source; a pull will say why",
                    HEALTH_FEED, contract.file_name)
        return [hint]
    if value is None:
        log.info("%s: nothing updated since %s", HEALTH_FEED, watermark)
        return []
    text = str(render_value(value))  # as the pull renders it (aware times → local UTC+8)
    stamp = parse(pd.Series([text], dtype="str"), contract.column(column)).iloc[0]
    if pd.isna(stamp):
        log.warning("%s: newest %s %r cannot be read; a pull will sort it out",
                    HEALTH_FEED, column, text)
        return [hint]
    stamp = pd.Timestamp(stamp).to_pydatetime()
    if watermark is not None and stamp <= watermark:
        return []
    return [f"{stamp:%Y%m%dT%H%M%S%f}"]
