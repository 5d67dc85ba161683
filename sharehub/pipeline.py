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
    link_mode: str | None = None  # "incremental" or "full"
    link_backend: str | None = None  # where pairs were scored: "duckdb" or "spark"
    link_reason: str | None = None
    rescored_records: int = 0
    reclustered_records: int = 0
    review_open: int | None = None
    causes: list[str] = field(default_factory=list)
    version: int | None = None
    version_created: bool = False
    id_changes: Any = None
    houses: Any = None
    postgres: Any = None
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


def standardise(con: duckdb.DuckDBPyConnection, *, full: bool = True) -> int:
    """Bring ``linkage.person_features`` up to date with ``staging.person_records``.

    ``full`` re-standardises every record; otherwise only new or changed ones
    (`linkage.changes.standardise`). Returns the number of records standardised.
    """
    from linkage.changes import standardise as standardise_records

    return standardise_records(con, full=full).standardised


def link(
    con: duckdb.DuckDBPyConnection, settings: Settings, summary: RunSummary, *, full: bool = False
) -> None:
    """Train the model if none is saved, then link: incrementally when a previous linkage
    with the same model and threshold exists, in full otherwise or when ``full``.

    Reviewers' decisions are honoured either way. The plan (mode, reason, causes) is
    left on ``summary`` for the id change log and the run summary. With
    ``settings.linkage_backend`` "spark" pairs are scored on Spark, always in full;
    training and clustering stay here (docs/scaling.md).
    """
    from linkage import incremental, predict, review
    from linkage.constraints import decision_edges_sql
    from linkage.edges import write_cluster_edges
    from linkage.spark_backend import SparkConfig
    from linkage.train import train_model

    backend = settings.linkage_backend
    plan = predict.plan(
        con, model_path=settings.model_path, threshold=settings.match_threshold, full=full,
        backend=backend,
    )  # fmt: skip
    if not settings.model_path.exists():
        # The model is data: trained once, saved as JSON, loaded for every prediction.
        train_model(con, "linkage.person_features", seed=settings.seed, model_path=settings.model_path)
        summary.trained = True
    constraints = review.constraints(con)
    result: Any
    if plan.incremental:
        result = incremental.link_incremental(
            con, model_path=settings.model_path, threshold=settings.match_threshold,
            review_floor=predict.REVIEW_FLOOR, review_threshold=settings.review_threshold,
            constraints=constraints,
        )  # fmt: skip
        counts = (result.records, result.rescored, result.reclustered, result.scored_pairs)
    else:
        result = predict.link(
            con, "linkage.person_features", model_path=settings.model_path,
            threshold=settings.match_threshold, constraints=constraints, backend=backend,
            spark=SparkConfig.from_settings(settings) if backend == "spark" else None,
        )  # fmt: skip
        counts = (result.records, result.records, result.records, result.scored_pairs)
    predict.record_run(
        con, plan, run_id=summary.run_id, now=datetime.now(), model_path=settings.model_path,
        threshold=settings.match_threshold, counts=counts,
    )  # fmt: skip
    summary.link_mode, summary.link_reason, summary.causes = plan.mode, plan.reason, plan.causes
    summary.link_backend = backend
    summary.rescored_records, summary.reclustered_records = counts[1], counts[2]
    summary.predicted_pairs = int(getattr(result, "predicted_pairs", 0) or 0)
    write_cluster_edges(con, decision_edges_sql(constraints), settings.match_threshold)


def identify(
    con: duckdb.DuckDBPyConnection, settings: Settings, summary: RunSummary, now: datetime
) -> None:
    """Carry person ids forward, note when ended records ended, rebuild the review queue;
    then start the set of re-clustered records afresh (`linkage.reclustered.RECLUSTERED`)."""
    from linkage.index import assign_person_ids, build_record_end_dates
    from linkage.reclustered import reset_reclustered
    from linkage.review import build_queue

    summary.id_changes = assign_person_ids(
        con, run_id=summary.run_id, now=now, batch_ids=summary.causes
    )
    build_record_end_dates(con)
    summary.review_open = build_queue(
        con, run_id=summary.run_id, threshold=settings.match_threshold,
        review_threshold=settings.review_threshold,
    )
    # ids and queue now match the clusters: the next linkage notes what it re-clusters
    reset_reclustered(con)


def index_houses(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> Any:
    """Match dwellings to every feed's addresses, then link persons to houses.

    Runs after ids are assigned: matching needs only standardised addresses, residence
    needs the person ids.
    """
    from linkage.houses import build_house_index
    from linkage.residence import build_residence

    result = build_house_index(con, reuse=not full)
    build_residence(con, reuse=not full)
    return result


def run(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    relink: bool = False,
    full_relink: bool = False,
    callback: StageCallback = _log_callback,
    now: datetime | None = None,
) -> RunSummary:
    """Run every stage once. Linkage is skipped when nothing new arrived and no review
    decision awaits, unless ``relink``/``full_relink`` (the same: re-standardise and
    re-link everything from scratch); otherwise it is incremental when it can be.

    Re-running on the same deliveries changes nothing: pulls are no-ops, linkage is
    deterministic for a saved model, ids are carried forward and an identical candidate
    does not become a new published version.
    """
    from linkage.predict import unlinked_decisions
    from sharehub.feeds import build_person_records

    now = now or datetime.now()
    summary = RunSummary(run_id=new_run_id(now))
    with _stage(summary, "pull + validate", callback):
        summary.batches = pull(con, settings)
    loaded = [b for b in summary.batches if getattr(b, "status", None) == "loaded"]
    has_index = table_exists(con, "shared.person_xref")
    full = relink or full_relink
    pending = unlinked_decisions(con)
    if not loaded and not pending and has_index and not full:
        callback("done", "nothing new arrived; linkage and publication skipped")
        if settings.publish_url:
            with _stage(summary, "publish", callback):
                summary.postgres = _catch_up_postgres(con, settings)
        _fill_from_published(con, summary)
        return summary
    summary.relinked = True
    with _stage(summary, "stage", callback):
        summary.records = build_person_records(con, full=full)
    with _stage(summary, "standardise", callback):
        standardise(con, full=full)
    with _stage(summary, "link", callback):
        link(con, settings, summary, full=full)
    callback("done", f"linkage {summary.link_mode}: {summary.link_reason}; "
                     f"{summary.rescored_records:,} records scored, "
                     f"{summary.reclustered_records:,} re-clustered")
    with _stage(summary, "identify", callback):
        identify(con, settings, summary, now)
    with _stage(summary, "houses", callback):
        summary.houses = index_houses(con, full=full)
    with _stage(summary, "publish", callback):
        outcome = publish_version(con, settings, run_id=summary.run_id, now=now)
        summary.version, summary.version_created = outcome.version, outcome.created
        summary.postgres = outcome.postgres
    _fill_from_published(con, summary)
    return summary


@dataclass(frozen=True)
class PublishOutcome:
    """What the publish stage did: the version, and whether auditors/subscribers got news."""

    version: int
    created: bool
    metrics_recorded: bool
    postgres: Any = None


def publish_version(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, now: datetime | None = None
) -> PublishOutcome:
    """Publish the shared tables, record the metrics, copy the version to PostgreSQL.

    One function for the CLI and the publish DAG, so both heal the same way: metrics are
    recorded when the published version has none (a run that failed between the swap and
    the metrics), and the PostgreSQL copy is idempotent, so calling it for the version
    already served catches up after a failed copy without changing anything otherwise.
    """
    from sharehub import metrics
    from sharehub.publish import publish

    result = publish(con, run_id=run_id, now=now)
    missing = not table_exists(con, "audit.sharing_metrics") or not one(
        con, "SELECT count(*) FROM audit.sharing_metrics WHERE version = ?", [result.version]
    )[0]
    if result.created or missing:
        metrics.record(con, result.version, now=now)
    postgres = None
    if settings.publish_url:
        from sharehub.publish import publish_to_postgres

        postgres = publish_to_postgres(con, settings, result.version)
    return PublishOutcome(result.version, result.created, result.created or missing, postgres)


def _catch_up_postgres(con: duckdb.DuckDBPyConnection, settings: Settings) -> Any:
    """Copy the newest published version to PostgreSQL when nothing new arrived.

    Why on a quiet run too: a copy that failed after the warehouse published (network,
    PostgreSQL down) must not wait for the next delivery. The copy is idempotent, so when
    the subscribers already read that version it changes nothing.
    """
    from sharehub.publish import publish_to_postgres

    if not table_exists(con, "audit.publish_versions"):
        return None
    version = one(con, "SELECT max(version) FROM audit.publish_versions")[0]
    return None if version is None else publish_to_postgres(con, settings, int(version))


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
