"""Linkage DAG: runs when any staged feed changes or clerks decided review items (the
review DAG's Asset); updates the master person index."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from sharehub.airflow_assets import MASTER_INDEX, POOL, REVIEWED, STAGED, dag_settings


@dag(
    dag_id="sharehub_linkage",
    schedule=(STAGED["ps_population"] | STAGED["ps_housing"] | STAGED["ca_recipients"]
              | STAGED["hw_ehr_person"] | REVIEWED),
    **dag_settings(),
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
