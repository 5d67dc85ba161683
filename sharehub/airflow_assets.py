"""Assets, pool and retry policy shared by the sharehub DAGs.

Lives in the package (not in dags/) so every DAG file imports the same definitions without
depending on the dags folder being on sys.path. Imports only the Airflow SDK: safe at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset

FEEDS = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")
STAGED = {feed: Asset(name=f"staging_{feed}", uri=f"sharehub://warehouse/staging/{feed}") for feed in FEEDS}
# Updated when clerks decided review items that no linkage has applied yet.
REVIEWED = Asset(name="review_decisions", uri="sharehub://warehouse/linkage/review_decisions")
MASTER_INDEX = Asset(name="master_person_index", uri="sharehub://warehouse/linkage/person_ids")
SHARED = Asset(name="shared_tables", uri="sharehub://warehouse/shared")

POOL = "sharehub_warehouse"  # one slot: DuckDB allows one writing process at a time
# Ingest tasks go first whenever they wait for the pool beside linkage or publish, so
# deliveries that land together are all staged before one linkage run takes them all
# (rather than one relink and one published version per feed). "absolute": the weight
# is this number, not summed over downstream tasks.
INGEST_PRIORITY = {"priority_weight": 10, "weight_rule": "absolute"}
DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def on_failure(context: Mapping[str, Any]) -> None:
    """Log feed, batch and cause so an operator sees what failed without opening the code.

    A hub error carries its feed and batch (a refused delivery names the batch even when
    the run pulled "everything pending"); otherwise the run's params say what was asked.
    """
    import logging

    ti = context.get("ti")
    params = context.get("params") or {}
    exc = context.get("exception")
    feed = getattr(exc, "feed", None) or params.get("feed")
    batch = getattr(exc, "batch", None) or params.get("batch_id")
    logging.getLogger("sharehub.dags").error(
        "task %s.%s failed (try %s): feed=%s batch=%s cause=%s: %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        getattr(ti, "try_number", "?"),
        feed or "-",
        batch or ("all pending" if feed else "-"),
        type(exc).__name__ if exc is not None else "unknown",
        exc,
    )


def dag_settings(extra_default_args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The scheduling every sharehub DAG shares: start date, no catch-up (a missed day is
    pulled by the next run, which loads everything pending), one run at a time, retries
    and the failure callback. ``extra_default_args`` adds to the task defaults."""
    return {
        "start_date": pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {**DEFAULT_ARGS, **(extra_default_args or {}), "on_failure_callback": on_failure},
    }
