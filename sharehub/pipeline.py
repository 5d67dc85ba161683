"""The whole flow in one call: pull → stage → standardise → link → identify → publish.

The CLI's ``sharehub run`` and the Airflow DAGs call the same stage functions; this module
only sequences them, times them and reports progress through a callback so the caller
decides how progress is shown (rich in the CLI, logs under Airflow).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from sharehub.settings import Settings
from sharehub.warehouse import one, table_exists

log = logging.getLogger(__name__)

StageCallback = Callable[[str, str], None]
"""Called as ``callback(event, text)`` with event ``start`` or ``done``."""


@dataclass
class RunSummary:
    """What one run did, for the CLI summary, the DAG logs and the tests."""

    run_id: str
    batches: list[Any] = field(default_factory=list)
    records: int = 0
    persons: int = 0
    predicted_pairs: int = 0
    trained: bool = False
    relinked: bool = False
    version: int | None = None
    version_created: bool = False
    id_changes: Any = None
    houses: Any = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def new_run_id(now: datetime | None = None) -> str:
    """A run id people can read and sort: ``run-YYYYmmddTHHMMSS``."""
    return (now or datetime.now()).strftime("run-%Y%m%dT%H%M%S")


def _log_callback(event: str, text: str) -> None:
    log.info("%s: %s", event, text)


@contextmanager
def _stage(summary: RunSummary, name: str, callback: StageCallback) -> Iterator[None]:
    callback("start", name)
    started = time.perf_counter()
    yield
    summary.seconds[name] = round(time.perf_counter() - started, 2)
    callback("done", f"{name} ({summary.seconds[name]:.1f} s)")


def pull(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Any]:
    """Pull every pending file delivery and the health increment; return the batch results."""
    from sharehub.feeds import pull_health, pull_pending

    results = list(pull_pending(con, settings))
    health = pull_health(con, settings)
    if health is not None:
        results.append(health)
    return results


def standardise(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild ``linkage.person_features`` from ``staging.person_records``."""
    from linkage.standardize import standardize_records

    records = con.execute("SELECT * FROM staging.person_records ORDER BY record_id").df()
    features = standardize_records(records)
    con.register("_features", features)
    con.execute("CREATE OR REPLACE TABLE linkage.person_features AS SELECT * FROM _features")
    con.unregister("_features")
    return len(features)


def link(con: duckdb.DuckDBPyConnection, settings: Settings, summary: RunSummary) -> None:
    """Train the model if none is saved, then predict and cluster at the threshold."""
    from linkage.predict import link as predict_and_cluster
    from linkage.train import train_model

    if not settings.model_path.exists():
        # The model is data: trained once, saved as JSON, loaded for every prediction.
        train_model(con, "linkage.person_features", seed=settings.seed, model_path=settings.model_path)
        summary.trained = True
    result = predict_and_cluster(
        con,
        "linkage.person_features",
        model_path=settings.model_path,
        threshold=settings.match_threshold,
    )
    summary.predicted_pairs = int(getattr(result, "predicted_pairs", 0) or 0)
    con.execute(
        """
        CREATE OR REPLACE TABLE linkage.cluster_edges AS
        SELECT p.unique_id_l, p.unique_id_r, p.match_weight, p.match_probability
        FROM linkage.predictions p
        JOIN linkage.clusters a ON a.unique_id = p.unique_id_l
        JOIN linkage.clusters b ON b.unique_id = p.unique_id_r
        WHERE a.cluster_id = b.cluster_id AND p.match_probability >= ?
        """,
        [settings.match_threshold],
    )


def index_houses(con: duckdb.DuckDBPyConnection) -> Any:
    """Match dwellings to every feed's addresses, then link persons to houses.

    Runs after ids are assigned: matching needs only standardised addresses, residence
    needs the person ids.
    """
    from linkage.houses import build_house_index
    from linkage.residence import build_residence

    result = build_house_index(con)
    build_residence(con)
    return result


def run(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    relink: bool = False,
    callback: StageCallback = _log_callback,
    now: datetime | None = None,
) -> RunSummary:
    """Run every stage once. Linkage is skipped when nothing new arrived, unless ``relink``.

    Re-running on the same deliveries changes nothing: pulls are no-ops, linkage is
    deterministic for a saved model, ids are carried forward and an identical candidate
    does not become a new published version.
    """
    from linkage.index import assign_person_ids
    from sharehub import metrics
    from sharehub.feeds import build_person_records
    from sharehub.publish import publish

    now = now or datetime.now()
    summary = RunSummary(run_id=new_run_id(now))
    with _stage(summary, "pull + validate", callback):
        summary.batches = pull(con, settings)
    loaded = [b for b in summary.batches if getattr(b, "status", None) == "loaded"]
    has_index = table_exists(con, "shared.person_xref")
    if not loaded and has_index and not relink:
        callback("done", "nothing new arrived; linkage and publication skipped")
        _fill_from_published(con, summary)
        return summary
    summary.relinked = True
    with _stage(summary, "stage", callback):
        summary.records = build_person_records(con)
    with _stage(summary, "standardise", callback):
        standardise(con)
    with _stage(summary, "link", callback):
        link(con, settings, summary)
    with _stage(summary, "identify", callback):
        summary.id_changes = assign_person_ids(con, run_id=summary.run_id, now=now)
    with _stage(summary, "houses", callback):
        summary.houses = index_houses(con)
    with _stage(summary, "publish", callback):
        result = publish(con, run_id=summary.run_id, now=now)
        summary.version, summary.version_created = result.version, result.created
        if result.created:
            metrics.record(con, result.version, now=now)
    _fill_from_published(con, summary)
    return summary


def _fill_from_published(con: duckdb.DuckDBPyConnection, summary: RunSummary) -> None:
    rows = con.execute(
        "SELECT metric, value FROM audit.sharing_metrics WHERE scope = 'all' AND version = "
        "(SELECT max(version) FROM audit.sharing_metrics)"
    ).fetchall()
    summary.metrics = {name: value for name, value in rows}
    summary.records = int(summary.metrics.get("records_in") or summary.records)
    summary.persons = int(summary.metrics.get("persons_out") or 0)
    if summary.version is None:
        summary.version = one(con, "SELECT max(version) FROM audit.publish_versions")[0]
