"""Freshness: is each feed as recent as its contract's latency SLA promises?

Why here: the contracts declare a latency SLA (``slaProperties: latency``) and a promise
nobody checks is no promise. A feed is *stale* when the newest source time the hub holds
it up to is older than that SLA, or when nothing of it was ever loaded, so an operator
sees a department that stopped delivering before subscribers do.

"Holds it up to" (``as_of``) depends on how the feed is pulled:

- file feeds: the ``extracted_at`` of the newest loaded delivery (from its manifest; the
  time the hub received it when the manifest gave none);
- the health table: the last time the hub read the source successfully, new rows or not
  (``raw.watermarks.checked_at``), since a quiet day at the clinics is not a late feed.

Read-only: it only queries, so ``sharehub batches`` can call it on a read-only
connection, and it copes with a warehouse written before these columns existed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from schemas.contract import FEEDS, feed_contract
from sharehub.feeds.ledger import LEDGER, WATERMARKS
from sharehub.feeds.manifest import CHINA

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Freshness:
    """How recent one feed is against its contract's latency SLA."""

    feed: str
    owner: str
    sla: timedelta | None  # the contract's latency; None when it declares none
    last_batch: str | None  # newest loaded batch
    as_of: datetime | None  # source time the hub holds the feed up to (local UTC+8)
    age: timedelta | None  # now - as_of
    stale: bool

    def describe(self) -> str:
        """One line for people, e.g. for ``sharehub batches``."""
        sla = f"SLA {_span(self.sla)}" if self.sla is not None else "no SLA"
        if self.as_of is None or self.age is None:
            return f"{self.feed}: nothing loaded yet ({sla}): STALE"
        state = "STALE" if self.stale else "fresh"
        return (
            f"{self.feed}: as of {self.as_of:%Y-%m-%d %H:%M} (batch {self.last_batch}), "
            f"{_span(self.age)} old, {sla}: {state}"
        )


def _span(delta: timedelta) -> str:
    """A duration in the unit a person would say (days above two days, else hours)."""
    hours = delta.total_seconds() / 3600
    if abs(hours) >= 48:
        return f"{hours / 24:.1f} d"
    return f"{hours:.1f} h"


def _columns(con: duckdb.DuckDBPyConnection, qualified: str) -> set[str]:
    schema, _, table = qualified.partition(".")
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return {str(r[0]) for r in rows}


def _local(now: datetime) -> datetime:
    """The ledger stores naive local time (UTC+8); compare like with like."""
    return now.astimezone(CHINA).replace(tzinfo=None) if now.tzinfo is not None else now


def freshness(con: duckdb.DuckDBPyConnection, now: datetime) -> list[Freshness]:
    """One :class:`Freshness` per feed, in the hub's feed order.

    ``now`` is naive local time (UTC+8, as the ledger stores times) or timezone-aware.
    """
    now = _local(now)
    ledger_cols = _columns(con, LEDGER)
    watermark_cols = _columns(con, WATERMARKS)
    extracted = "extracted_at" if "extracted_at" in ledger_cols else "NULL"
    checked = "checked_at" if "checked_at" in watermark_cols else "NULL"
    results = []
    for feed in FEEDS:
        contract = feed_contract(feed)
        last_batch, delivered_as_of, pulled = None, None, None
        if ledger_cols:
            last_batch, delivered_as_of, pulled = con.execute(
                f"SELECT max(batch_id), max(coalesce({extracted}, received_at)), max(received_at) "
                f"FROM {LEDGER} WHERE feed = ? AND status = 'loaded'",
                [feed],
            ).fetchall()[0]
        as_of: datetime | None = delivered_as_of
        if contract.watermark_column is not None:
            seen = None
            if watermark_cols:
                seen = con.execute(
                    f"SELECT max({checked}) FROM {WATERMARKS} WHERE feed = ?", [feed]
                ).fetchall()[0][0]
            stamps = [t for t in (pulled, seen) if t is not None]
            as_of = max(stamps) if stamps else None
        age = now - as_of if as_of is not None else None
        sla = contract.latency
        stale = as_of is None or (sla is not None and age is not None and age > sla)
        if stale:
            log.info("feed %s is stale: as of %s, SLA %s", feed, as_of, sla)
        results.append(
            Freshness(
                feed=feed, owner=contract.owner, sla=sla,
                last_batch=None if last_batch is None else str(last_batch),
                as_of=as_of, age=age, stale=stale,
            )
        )
    return results
