"""Publish DAG: runs when the master person index changes; publishes shared tables."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from sharehub.airflow_assets import DEFAULT_ARGS, MASTER_INDEX, POOL, SHARED, on_failure


@dag(
    dag_id="sharehub_publish",
    schedule=[MASTER_INDEX],
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": on_failure},
    tags=["sharehub", "publish"],
)
def sharehub_publish() -> None:
    @task(pool=POOL, outlets=[SHARED])
    def publish() -> dict:  # type: ignore[type-arg]
        from sharehub import tasks

        return tasks.publish()

    publish()


sharehub_publish()
