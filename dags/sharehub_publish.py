"""Publish DAG: runs when the master person index changes; publishes shared tables.

The shared-tables Asset is updated only when something new reached subscribers or
auditors (a new version, or metrics recorded for one), so the report runs only then.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from sharehub.airflow_assets import MASTER_INDEX, POOL, SHARED, dag_settings


@dag(
    dag_id="sharehub_publish",
    schedule=[MASTER_INDEX],
    **dag_settings(),
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
