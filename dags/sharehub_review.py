"""Review DAG: hourly, announces clerks' review decisions so linkage applies them.

A decision (`sharehub review decide`) changes the master index only when linkage runs,
and linkage runs on the feeds' Assets; on a day without deliveries nothing would start
it. ``decisions_waiting`` short-circuits when every decision is already linked, so a
quiet hour ends skipped and without an Asset event.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from sharehub.airflow_assets import POOL, REVIEWED, dag_settings


@dag(
    dag_id="sharehub_review",
    schedule="@hourly",
    **dag_settings(),
    tags=["sharehub", "review"],
    doc_md=__doc__,
)
def sharehub_review() -> None:
    @task.short_circuit(pool=POOL)
    def decisions_waiting() -> list[str]:
        from sharehub import tasks

        return tasks.decisions_waiting()

    @task(pool=POOL, outlets=[REVIEWED])
    def announce(waiting: Any = None) -> int:
        return len(waiting or [])

    announce(decisions_waiting())


sharehub_review()
