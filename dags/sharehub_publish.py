"""Publish DAG: runs when the master person index changes; publishes shared tables.

The shared-tables Asset is updated only when something new reached subscribers or
auditors (a new version, or metrics recorded for one), so the report runs only then.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from sharehub.airflow_assets import DEFAULT_ARGS, MASTER_INDEX, POOL, SHARED, on_failure


@dag(
    dag_id="sharehub_publish",
    schedule=[MASTER_INDEX],
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": on_failure},
    tags=["sharehub", "publish"],
    doc_md=__doc__,
)
def sharehub_publish() -> None:
    @task(pool=POOL, outlets=[SHARED])
    def publish() -> dict[str, Any]:
        from sharehub import tasks

        result = tasks.publish()
        if not result["changed"]:
            raise AirflowSkipException(f"version {result['version']} unchanged: nothing to announce")
        return result

    publish()


sharehub_publish()
