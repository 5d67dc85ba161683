"""Entry points for orchestrators: each opens the warehouse, calls one stage, closes.

Airflow task bodies call exactly one of these, so the DAG files only wire schedules,
assets, pools and retries. Each builds its ``Settings`` from the environment at run time
(never at DAG parse time) and returns a small JSON-able dict for XCom and the logs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from typing import Any

from sharehub.settings import Settings

log = logging.getLogger(__name__)

FEEDS = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")


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


def link(settings: Settings | None = None) -> dict[str, Any]:
    """Stage person records, standardise, link and assign stable person ids."""
    from linkage.index import assign_person_ids
    from sharehub import pipeline
    from sharehub.feeds import build_person_records
    from sharehub.warehouse import connect

    settings = settings or Settings.from_env()
    con = connect(settings)
    try:
        summary = pipeline.RunSummary(run_id=pipeline.new_run_id())
        summary.records = build_person_records(con)
        pipeline.standardise(con)
        pipeline.link(con, settings, summary)
        summary.id_changes = assign_person_ids(con, run_id=summary.run_id)
        summary.houses = pipeline.index_houses(con)
    finally:
        con.close()
    return _plain({"run_id": summary.run_id, "records": summary.records,
                   "pairs": summary.predicted_pairs, "ids": summary.id_changes})


def publish(settings: Settings | None = None) -> dict[str, Any]:
    """Publish the shared tables as a new version (if changed) and record the metrics."""
    from sharehub import metrics, pipeline
    from sharehub.publish import publish as publish_tables
    from sharehub.warehouse import connect

    settings = settings or Settings.from_env()
    con = connect(settings)
    try:
        result = publish_tables(con, run_id=pipeline.new_run_id())
        if result.created:
            metrics.record(con, result.version)
    finally:
        con.close()
    return _plain(result)
