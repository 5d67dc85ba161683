"""One ingest DAG per feed: daily, waits for a new delivery, pulls it, updates the feed's Asset.

``wait_for_delivery`` short-circuits the run when nothing new is pending (no new delivery
folder; for the health table, no ``updated_at`` past the watermark), so a quiet day ends
with skipped tasks and no Asset event: linkage only runs when a staged table changed.
``pull`` skips itself when nothing loaded, for the same reason. Both read or write the
warehouse, so both take the one-slot pool (DuckDB refuses a reader while another process
writes); they outrank linkage for the slot, so deliveries that land together are staged
before one linkage run takes them all. Re-run one delivery by triggering with
``{"batch_id": "<folder name>"}``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sharehub.airflow_assets import FEEDS, INGEST_PRIORITY, POOL, STAGED, dag_settings


def make_ingest_dag(feed: str) -> object:
    @dag(
        dag_id=f"sharehub_ingest_{feed}",
        schedule="@daily",
        **dag_settings(INGEST_PRIORITY),
        params={
            "feed": Param(feed, type="string", const=feed),
            "batch_id": Param(None, type=["null", "string"],
                              description="Re-run only this delivery folder (file feeds); "
                                          "empty = every pending delivery"),
        },
        tags=["sharehub", "ingest"],
        doc_md=__doc__,
    )
    def ingest_dag() -> None:
        @task.short_circuit(pool=POOL)
        def wait_for_delivery(params: dict[str, Any] | None = None) -> list[str]:
            from sharehub import tasks
            from sharehub.errors import NotFound

            try:
                return tasks.pending(feed, batch_id=(params or {}).get("batch_id"))
            except NotFound as exc:  # a mistyped batch_id: retrying cannot help
                raise AirflowFailException(str(exc)) from exc

        @task(pool=POOL, outlets=[STAGED[feed]])
        def pull(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            from sharehub import tasks

            results = tasks.ingest(feed, batch_id=(params or {}).get("batch_id"))
            if not tasks.loaded(results):  # raises when a refused delivery is the reason
                raise AirflowSkipException(f"{feed}: nothing loaded; the staged table is unchanged")
            return results

        wait_for_delivery() >> pull()

    return ingest_dag()


for _feed in FEEDS:
    globals()[f"sharehub_ingest_{_feed}"] = make_ingest_dag(_feed)
