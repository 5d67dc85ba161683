"""One ingest DAG per feed: daily, pulls pending deliveries, updates the feed's Asset."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from sharehub.airflow_assets import DEFAULT_ARGS, FEEDS, POOL, STAGED, on_failure


def make_ingest_dag(feed: str) -> object:
    @dag(
        dag_id=f"sharehub_ingest_{feed}",
        schedule="@daily",
        start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        default_args={**DEFAULT_ARGS, "on_failure_callback": on_failure},
        params={
            "feed": Param(feed, type="string", const=feed),
            "batch_id": Param(None, type=["null", "string"],
                              description="Re-run only this batch (file feeds); empty = all pending"),
        },
        tags=["sharehub", "ingest"],
    )
    def ingest_dag() -> None:
        @task(pool=POOL, outlets=[STAGED[feed]])
        def pull(params: dict | None = None) -> list:  # type: ignore[type-arg]
            from sharehub import tasks

            return tasks.ingest(feed, batch_id=(params or {}).get("batch_id"))

        pull()

    return ingest_dag()


for _feed in FEEDS:
    globals()[f"sharehub_ingest_{_feed}"] = make_ingest_dag(_feed)
