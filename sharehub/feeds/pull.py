"""Pull deliveries into the warehouse: verify, land, validate, quarantine, stage, account.

The public entry points (called by the CLI and the Airflow DAGs) are :func:`pull_pending`,
:func:`pull_batch` and :func:`pull_health`. Each delivery is written in one DuckDB
transaction: raw rows, quarantined rows, staging versions, the ledger row and (for
health) the watermark commit together or not at all. A rejected delivery leaves only its
ledger row, written after the rollback, with the reason.

Batches of a feed are applied in batch_id order, and a rejected batch stops its feed's
queue: a later delta applied on top of a missing one would stage a wrong current state.
Fix or withdraw the rejected delivery, then pull again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from schemas.contract import FEEDS, FeedContract, feed_contract
from schemas.feeds import parse
from sharehub.errors import DeliveryRejected, SharehubError
from sharehub.feeds import health, ledger, staging
from sharehub.feeds.manifest import CHINA, Manifest, read_manifest
from sharehub.feeds.readers import IGNORED, read_file
from sharehub.feeds.validate import Validated, validate
from sharehub.settings import Settings

log = logging.getLogger(__name__)

FILE_FEEDS = tuple(f for f in FEEDS if feed_contract(f).file_format != "sql")
HEALTH_FEED = "hw_ehr_person"

Status = Literal["loaded", "skipped", "rejected"]


@dataclass(frozen=True)
class BatchResult:
    """What pulling one delivery did; ``error`` keeps the structured rejection."""

    feed: str
    batch_id: str
    status: Status
    rows_declared: int | None = None
    rows_landed: int = 0
    rows_staged: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    changes: dict[str, int] = field(default_factory=dict, compare=False)
    error: SharehubError | None = field(default=None, compare=False, repr=False)


def _now() -> datetime:
    return datetime.now(CHINA).replace(tzinfo=None)


def _load(
    con: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    batch_id: str,
    extract_type: str,
    checksum: str,
    rows_declared: int,
    delivered: pd.DataFrame,
    checked: Validated,
    event_time: datetime,
    received_at: datetime,
    watermark: datetime | None = None,
    extracted_at: datetime | None = None,
    notes: str | None = None,
) -> BatchResult:
    """Write one validated delivery in a single transaction and check its accounting."""
    feed = contract.feed
    con.begin()
    try:
        now = _now()
        staging.land(con, contract, batch_id, delivered, checked.quarantine, now)
        changes = staging.apply(con, contract, batch_id, checked.typed, event_time)
        if contract.full_extract_replaces and extract_type == "full":
            changes["inactivate"] = staging.retire_missing(con, contract, batch_id, delivered, event_time)
        ledger.record_loaded(
            con, feed=feed, batch_id=batch_id, extract_type=extract_type, checksum=checksum,
            rows_declared=rows_declared, rows_landed=len(delivered),
            rows_staged=checked.rows_staged, rows_quarantined=checked.rows_quarantined,
            received_at=received_at, loaded_at=now, extracted_at=extracted_at, notes=notes,
        )
        if watermark is not None:
            ledger.set_watermark(con, feed, watermark, batch_id, now)
        elif contract.watermark_column:
            ledger.mark_checked(con, feed, now)
        ledger.check_ledger(con, feed, batch_id)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info(
        "%s/%s loaded: %d rows, %d staged, %d quarantined, changes %s",
        feed, batch_id, len(delivered), checked.rows_staged, checked.rows_quarantined, changes,
    )
    return BatchResult(
        feed=feed, batch_id=batch_id, status="loaded", rows_declared=rows_declared,
        rows_landed=len(delivered), rows_staged=checked.rows_staged,
        rows_quarantined=checked.rows_quarantined, reason=notes, changes=changes,
    )


def _notes(delivered: pd.DataFrame) -> str | None:
    """What a person should know about a loaded delivery (extra columns the contract ignores)."""
    ignored = delivered.attrs.get(IGNORED) or []
    if not ignored:
        return None
    return (
        f"ignored column(s) not in the contract: {', '.join(ignored)} (the contract's "
        "extraColumns is 'ignore'; the delivered file keeps them)"
    )


def _rejected(
    con: duckdb.DuckDBPyConnection,
    exc: DeliveryRejected,
    feed: str,
    batch_id: str,
    manifest: Manifest | None,
    received_at: datetime,
) -> BatchResult:
    log.error("%s/%s rejected: %s", feed, batch_id, exc)
    ledger.record_rejected(
        con, feed=feed, batch_id=batch_id,
        extract_type=manifest.extract_type if manifest else None,
        checksum=manifest.checksum if manifest else None,
        rows_declared=manifest.rows_declared if manifest else None,
        reason=str(exc), received_at=received_at,
    )
    return BatchResult(
        feed=feed, batch_id=batch_id, status="rejected",
        rows_declared=manifest.rows_declared if manifest else None, reason=str(exc), error=exc,
    )


def pull_batch(
    con: duckdb.DuckDBPyConnection, settings: Settings, feed: str, batch_dir: Path
) -> BatchResult:
    """Pull one file delivery ``<landing>/<feed>/<batch_id>/``.

    Returns ``skipped`` when the batch is already loaded with the same checksum and
    ``rejected`` (with the structured error in ``error``) when the delivery is refused.
    """
    contract = feed_contract(feed)
    if contract.file_format == "sql":
        raise ValueError(f"{feed} is not a file feed; use pull_health")
    batch_dir = Path(batch_dir)
    batch_id = batch_dir.name
    received_at = _now()
    ledger.ensure_ledger(con)
    staging.ensure_feed_tables(con, contract)
    manifest: Manifest | None = None
    try:
        manifest = read_manifest(batch_dir, feed)
        prior = ledger.loaded_checksum(con, feed, batch_id)
        if prior == manifest.checksum:
            log.info("%s/%s already loaded with the same checksum: skipped", feed, batch_id)
            return BatchResult(feed=feed, batch_id=batch_id, status="skipped",
                               rows_declared=manifest.rows_declared)
        if prior is not None:
            raise DeliveryRejected(
                f"batch already loaded with checksum {prior[:12]}…, this delivery has "
                f"{manifest.checksum[:12]}…; a loaded batch is never replaced: deliver the "
                "correction as a new batch_id",
                feed=feed, batch=batch_id,
            )
        if manifest.extract_type not in contract.extract_types:
            raise DeliveryRejected(
                f"extract_type {manifest.extract_type!r} is not one this feed delivers "
                f"({', '.join(contract.extract_types)})",
                feed=feed, batch=batch_id,
            )
        if len(manifest.files) != 1:
            raise DeliveryRejected(
                f"manifest lists {len(manifest.files)} files; a {feed} delivery is one file",
                feed=feed, batch=batch_id,
            )
        file = manifest.files[0]
        delivered = read_file(file.path, contract, batch_id)
        manifest.check_rows(file, len(delivered))
        if len(delivered) < contract.min_rows:
            raise DeliveryRejected(
                f"{file.name} has {len(delivered)} data rows; the contract requires at least "
                f"{contract.min_rows}",
                feed=feed, batch=batch_id,
            )
        checked = validate(delivered, contract, batch_id)
        return _load(
            con, contract, batch_id, manifest.extract_type, manifest.checksum,
            manifest.rows_declared, delivered, checked,
            event_time=manifest.extracted_at or received_at, received_at=received_at,
            extracted_at=manifest.extracted_at, notes=_notes(delivered),
        )
    except DeliveryRejected as exc:
        return _rejected(con, exc, feed, batch_id, manifest, received_at)


def pending_batches(con: duckdb.DuckDBPyConnection, settings: Settings, feed: str) -> list[Path]:
    """Delivery folders of a feed not yet loaded, in batch_id order."""
    root = Path(settings.landing) / feed
    if not root.is_dir():
        return []
    loaded = ledger.loaded_batches(con, feed)
    pending = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in loaded),
        key=lambda p: p.name,
    )
    late = [p.name for p in pending if loaded and p.name < max(loaded)]
    if late:
        log.warning("%s: batch(es) %s arrived after a later batch was loaded; applying them now",
                    feed, ", ".join(late))
    return pending


def pull_pending(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, feeds: Sequence[str] | None = None
) -> list[BatchResult]:
    """Pull every pending file delivery of the given feeds (default: the three file feeds).

    The health feed is a database, not a folder of deliveries: it is pulled here only when
    named in ``feeds``; otherwise call :func:`pull_health`. A rejected batch stops its feed.
    """
    wanted = list(FILE_FEEDS if feeds is None else feeds)
    unknown = [f for f in wanted if f not in FEEDS]
    if unknown:
        raise ValueError(f"unknown feed(s) {', '.join(unknown)}; expected some of {', '.join(FEEDS)}")
    ledger.ensure_ledger(con)
    results: list[BatchResult] = []
    for feed in (f for f in wanted if f in FILE_FEEDS):
        for batch_dir in pending_batches(con, settings, feed):
            result = pull_batch(con, settings, feed, batch_dir)
            results.append(result)
            if result.status == "rejected":
                log.error("%s: stopping at rejected batch %s; later batches wait", feed, result.batch_id)
                break
    if HEALTH_FEED in wanted:
        health_result = pull_health(con, settings)
        if health_result is not None:
            results.append(health_result)
    return results


def pull_health(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    attempts: int = 3,
    backoff: float = 2.0,
) -> BatchResult | None:
    """Pull the health records updated since the watermark; None when nothing is new.

    The batch id is the new watermark (``YYYYMMDDTHHMMSSffffff``); the watermark advances
    in the same transaction as the load. An unreachable database is retried ``attempts``
    times (waits ``backoff``, ``2*backoff`` …) and then raises ``SourceUnavailable``.

    The read starts ``settings.health_overlap_seconds`` before the watermark: a front-end
    transaction that commits after a pull, with an ``updated_at`` older than what that
    pull saw, would otherwise never be read. Rows of the overlap already landed unchanged
    are skipped (`health.without_landed`); a pull holding only late rows is named
    ``<its newest updated_at>-late-<checksum prefix>`` and leaves the watermark alone.

    A row whose ``updated_at`` cannot be read cannot be placed before or after the
    watermark, so every pull sees it again; it is quarantined once, and skipped while it
    is unchanged. A pull that holds only such rows does not advance the watermark and is
    named ``<watermark>-<checksum prefix>``.
    """
    contract = feed_contract(HEALTH_FEED)
    ledger.ensure_ledger(con)
    staging.ensure_feed_tables(con, contract)
    since = ledger.get_watermark(con, HEALTH_FEED)
    read_from = since - timedelta(seconds=settings.health_overlap_seconds) if since else None
    received_at = _now()
    hint = f"since-{since:%Y%m%dT%H%M%S%f}" if since else "initial"
    try:
        delivered = health.with_retries(
            lambda: health.read_since(settings.resolved_health_url, contract, read_from, hint),
            feed=HEALTH_FEED, attempts=attempts, backoff=backoff,
        )
        delivered = health.without_landed(con, contract, delivered, since, hint)
    except DeliveryRejected as exc:
        return _rejected(con, exc, HEALTH_FEED, hint, None, received_at)
    delivered = health.without_known_unplaced(con, contract, delivered)
    if delivered.empty:
        log.info("%s: nothing updated since %s", HEALTH_FEED, since)
        ledger.mark_checked(con, HEALTH_FEED, received_at)
        return None
    checked = validate(delivered, contract, hint)
    # Quarantined rows count too: they are landed and accounted, and a corrected row
    # comes back with a newer updated_at.
    newest = parse(delivered["updated_at"], contract.column("updated_at")).max()
    checksum = hashlib.sha256(
        delivered.to_csv(index=True, lineterminator="\n").encode("utf-8")
    ).hexdigest()
    watermark: datetime | None = None
    if newest is not None and not pd.isna(newest) and since is not None and newest <= since:
        # only rows committed late, behind the watermark: loaded, the watermark stays
        batch_id = f"{pd.Timestamp(newest).to_pydatetime():%Y%m%dT%H%M%S%f}-late-{checksum[:8]}"
    elif newest is not None and not pd.isna(newest):
        watermark = pd.Timestamp(newest).to_pydatetime()
        batch_id = f"{watermark:%Y%m%dT%H%M%S%f}"
    else:
        batch_id = f"{since:%Y%m%dT%H%M%S%f}-{checksum[:8]}" if since else f"initial-{checksum[:8]}"
    prior = ledger.loaded_checksum(con, HEALTH_FEED, batch_id)
    if prior == checksum:
        return BatchResult(feed=HEALTH_FEED, batch_id=batch_id, status="skipped",
                           rows_declared=len(delivered))
    if prior is not None:
        conflict = DeliveryRejected(
            "health rows changed without a newer updated_at: the front-end must advance "
            "updated_at on every change",
            feed=HEALTH_FEED, batch=batch_id,
        )
        return _rejected(con, conflict, HEALTH_FEED, batch_id, None, received_at)
    return _load(
        con, contract, batch_id, "incremental", checksum, len(delivered), delivered, checked,
        event_time=received_at, received_at=received_at, watermark=watermark,
        extracted_at=watermark or since,
    )
