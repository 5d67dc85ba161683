"""Report DAG: runs after each publication; writes the auditors' metrics of the new version.

For now the report is the metrics summary as JSON (``reports/metrics-v<version>.json``
beside the warehouse). It only reads the warehouse, but DuckDB refuses a reader while
another process writes, so it queues in the warehouse pool like the writers.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from sharehub.airflow_assets import POOL, SHARED, dag_settings


@dag(
    dag_id="sharehub_report",
    schedule=[SHARED],
    **dag_settings(),
    tags=["sharehub", "report"],
    doc_md=__doc__,
)
def sharehub_report() -> None:
    @task(pool=POOL)
    def report() -> dict[str, Any]:
        from sharehub import tasks

        return tasks.report()

    report()


sharehub_report()
