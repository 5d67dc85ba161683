"""Linkage DAG: runs when any staged feed changes or clerks decided review items (the
review DAG's Asset); updates the master person index."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from sharehub.airflow_assets import DEFAULT_ARGS, MASTER_INDEX, POOL, REVIEWED, STAGED, on_failure


@dag(
    dag_id="sharehub_linkage",
    schedule=(STAGED["ps_population"] | STAGED["ps_housing"] | STAGED["ca_recipients"]
              | STAGED["hw_ehr_person"] | REVIEWED),
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": on_failure},
    tags=["sharehub", "linkage"],
    doc_md=__doc__,
)
def sharehub_linkage() -> None:
    @task(pool=POOL, outlets=[MASTER_INDEX])
    def link() -> dict[str, Any]:
        from sharehub import tasks

        return tasks.link()

    link()


sharehub_linkage()
