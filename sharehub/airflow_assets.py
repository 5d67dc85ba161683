"""Assets, pool and retry policy shared by the sharehub DAGs.

Lives in the package (not in dags/) so every DAG file imports the same definitions without
depending on the dags folder being on sys.path. Imports only the Airflow SDK: safe at parse time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset

FEEDS = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")
STAGED = {feed: Asset(name=f"staging_{feed}", uri=f"sharehub://warehouse/staging/{feed}") for feed in FEEDS}
MASTER_INDEX = Asset(name="master_person_index", uri="sharehub://warehouse/linkage/person_ids")
SHARED = Asset(name="shared_tables", uri="sharehub://warehouse/shared")

POOL = "sharehub_warehouse"  # one slot: DuckDB allows one writing process at a time
DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def on_failure(context: dict[str, Any]) -> None:
    """Log feed, batch and cause so an operator sees what failed without opening the code."""
    import logging

    ti = context.get("ti")
    params = context.get("params") or {}
    logging.getLogger("sharehub.dags").error(
        "task %s failed: feed=%s batch=%s cause=%s",
        getattr(ti, "task_id", "?"),
        params.get("feed"),
        params.get("batch_id"),
        context.get("exception"),
    )
