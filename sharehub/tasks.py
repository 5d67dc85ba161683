"""Entry points for orchestrators: each opens the warehouse, calls one stage, closes.

Airflow task bodies call exactly one of these, so the DAG files only wire schedules,
assets, pools and retries. Each builds its ``Settings`` from the environment at run time
(never at DAG parse time) and returns a small JSON-able dict for XCom and the logs.

Nothing here imports Airflow: whether "nothing new" becomes a skipped task (and so no
Asset event) is the DAG's decision; these functions only say what happened.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sharehub.errors import DeliveryRejected, NotFound
from sharehub.settings import Settings

log = logging.getLogger(__name__)

FEEDS = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")
HEALTH_FEED = "hw_ehr_person"


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def pending(feed: str, batch_id: str | None = None, settings: Settings | None = None) -> list[str]:
    """Batch ids a pull of ``feed`` would load now; empty means there is nothing to pull.

    Why before the pull: a daily run with nothing new must end without touching staging,
    so the Asset that triggers linkage is not updated. With ``batch_id`` (a re-run of one
    file delivery) the answer is that batch if it is not loaded yet; a missing folder is
    an error, since an operator asking for it expects it to exist.

    The health table is read only if its ``updated_at`` moved past the watermark. When it
    did not, the successful look at the source is still recorded (``checked_at``), as the
    pull would have: freshness is measured on it, and a quiet day at the clinics must not
    make the feed look late. That is the one write here (so the caller holds the
    warehouse pool); the look itself is read-only (:mod:`sharehub.feeds.pending`).
    """
    from sharehub.feeds.pending import pending_batches

    settings = settings or Settings.from_env()
    if feed == HEALTH_FEED:
        if batch_id:
            log.warning("%s: batch_id=%s ignored; the health table is pulled by watermark",
                        feed, batch_id)
        waiting = pending_batches(settings, feed)
        if not waiting:
            _mark_checked(settings, feed)
    elif batch_id:
        folder = Path(settings.landing) / feed / batch_id
        if not folder.is_dir():
            raise NotFound(
                f"no delivery folder {folder}; check the batch_id (folders under "
                f"{folder.parent} are the batches delivered)",
                feed=feed, batch=batch_id,
            )
        waiting = [b for b in pending_batches(settings, feed) if b == batch_id]
        if not waiting:
            log.info("%s/%s is already loaded: nothing to re-run (a loaded batch is never "
                     "replaced; deliver a correction as a new batch_id)", feed, batch_id)
    else:
        waiting = pending_batches(settings, feed)
    log.info("feed=%s pending=%s", feed, ", ".join(waiting) or "nothing new")
    return waiting


def decisions_waiting(settings: Settings | None = None) -> list[str]:
    """Review ids decided since the last linkage; empty means linkage has nothing to apply.

    Why: a clerk's decision (`sharehub review decide`) changes the master index only when
    linkage runs, and on a day without deliveries no feed Asset would start it. Read-only;
    no warehouse yet means nothing was decided.
    """
    from linkage.predict import unlinked_decisions
    from sharehub.warehouse import connect

    settings = settings or Settings.from_env()
    if not Path(settings.warehouse).exists():
        return []
    con = connect(settings, read_only=True)
    try:
        waiting = unlinked_decisions(con)
    finally:
        con.close()
    log.info("review decisions not yet linked: %s", ", ".join(waiting) or "none")
    return waiting


def _mark_checked(settings: Settings, feed: str) -> None:
    """Record a successful look at a watermarked source that held nothing new."""
    from sharehub.feeds import ledger
    from sharehub.feeds.manifest import CHINA
    from sharehub.warehouse import connect

    if not Path(settings.warehouse).exists():
        return
    con = connect(settings)
    try:
        ledger.ensure_ledger(con)
        ledger.mark_checked(con, feed, datetime.now(CHINA).replace(tzinfo=None))
    finally:
        con.close()


def ingest(feed: str, batch_id: str | None = None, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Pull one feed: every pending delivery, or only ``batch_id`` when given (a re-run)."""
    from sharehub import feeds
    from sharehub.warehouse import connect

    settings = settings or Settings.from_env()
    con = connect(settings)
    try:
        if feed == "hw_ehr_person":
            results = [r for r in [feeds.pull_health(con, settings)] if r is not None]
        elif batch_id:
            results = [feeds.pull_batch(con, settings, feed, settings.landing / feed / batch_id)]
        else:
            results = feeds.pull_pending(con, settings, feeds=[feed])
    finally:
        con.close()
    for result in results:
        log.info("feed=%s batch=%s status=%s", result.feed, result.batch_id, result.status)
    return [_plain(r) for r in results]


def loaded(results: list[dict[str, Any]]) -> list[str]:
    """Batch ids that :func:`ingest` loaded; raises when nothing loaded because of a refusal.

    Why raise: a refused delivery is an operator's problem (fix or withdraw it), and a
    pull that loaded nothing else must show up as a failed run, with feed, batch and
    reason, not as a quiet "nothing new". When other batches loaded, they stand (their
    Asset event is due) and the refusal is logged; the next run meets it again.
    """
    done = [str(r["batch_id"]) for r in results if r.get("status") == "loaded"]
    refused = [r for r in results if r.get("status") == "rejected"]
    for r in refused:
        log.error("feed=%s batch=%s rejected: %s", r.get("feed"), r.get("batch_id"), r.get("reason"))
    if refused and not done:
        first = refused[0]
        raise DeliveryRejected(
            f"nothing loaded: {len(refused)} delivery(ies) refused; first reason: "
            f"{first.get('reason')}; fix or withdraw the delivery, then re-run",
            feed=first.get("feed"), batch=first.get("batch_id"),
        )
    return done


def link(settings: Settings | None = None) -> dict[str, Any]:
    """Stage person records, standardise, link and assign stable person ids.

    Incremental (only what changed since the last linkage) when a trained model and a
    previous linkage exist, in full otherwise; reviewers' decisions are honoured.
    """
    from datetime import datetime

    from sharehub import pipeline
    from sharehub.feeds import build_person_records
    from sharehub.warehouse import connect

    settings = settings or Settings.from_env()
    con = connect(settings)
    try:
        now = datetime.now()
        summary = pipeline.RunSummary(run_id=pipeline.new_run_id(now))
        summary.records = build_person_records(con)
        pipeline.standardise(con, full=False)
        pipeline.link(con, settings, summary)
        pipeline.identify(con, settings, summary, now)
        summary.houses = pipeline.index_houses(con)
    finally:
        con.close()
    return _plain({"run_id": summary.run_id, "records": summary.records,
                   "mode": summary.link_mode, "pairs": summary.predicted_pairs,
                   "ids": summary.id_changes, "review_open": summary.review_open})


def publish(settings: Settings | None = None) -> dict[str, Any]:
    """Publish the shared tables as a new version (if changed), record the metrics, and copy
    the version to PostgreSQL when a publish URL is set (``pipeline.publish_version``).

    ``changed`` says whether subscribers or auditors have something new.
    """
    from sharehub import pipeline
    from sharehub.warehouse import connect

    settings = settings or Settings.from_env()
    con = connect(settings)
    try:
        outcome = pipeline.publish_version(con, settings, run_id=pipeline.new_run_id())
    finally:
        con.close()
    return {"version": outcome.version, "created": outcome.created,
            "metrics_recorded": outcome.metrics_recorded,
            "changed": outcome.created or outcome.metrics_recorded,
            "postgres": _plain(outcome.postgres)}


def report(settings: Settings | None = None, out_dir: Path | None = None) -> dict[str, Any]:
    """Write the auditors' metrics of the latest published version to a JSON file.

    The file is ``<out_dir>/metrics-v<version>.json``, by default in ``reports/`` beside
    the warehouse file. Why a file per version: auditors keep what was true of each
    version, and rewriting the same version gives the same bytes (idempotent; no
    generation time inside). Written to a temporary name and renamed, so a reader never
    sees half a report.
    """
    from sharehub.warehouse import connect, table_exists

    settings = settings or Settings.from_env()
    con = connect(settings, read_only=True)
    try:
        if not table_exists(con, "audit.publish_versions"):
            raise NotFound(f"nothing published yet in {settings.warehouse}; publish first")
        latest = con.execute(
            "SELECT version, published_at, run_id, persons, records FROM audit.publish_versions "
            "ORDER BY version DESC LIMIT 1"
        ).fetchall()
        if not latest:
            raise NotFound(f"nothing published yet in {settings.warehouse}; publish first")
        version, published_at, run_id, persons, records = latest[0]
        rows = con.execute(
            "SELECT metric, scope, numerator, denominator, value, computed_at "
            "FROM audit.sharing_metrics WHERE version = ? ORDER BY metric, scope",
            [version],
        ).fetchall() if table_exists(con, "audit.sharing_metrics") else []
    finally:
        con.close()
    if not rows:
        raise NotFound(
            f"no metrics recorded for published version {version}; run the publish DAG "
            "(or `sharehub run`) again: it records missing metrics"
        )
    body = {
        "version": version, "published_at": _iso(published_at), "run_id": run_id,
        "persons": persons, "records": records,
        "metrics": [
            {"metric": m, "scope": s, "numerator": n, "denominator": d, "value": v,
             "computed_at": _iso(t)}
            for m, s, n, d, v, t in rows
        ],
    }
    folder = Path(out_dir) if out_dir is not None else Path(settings.warehouse).parent / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"metrics-v{version}.json"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    log.info("metrics of version %s written to %s", version, path)
    return {"version": version, "path": str(path), "metrics": len(rows)}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value
