"""Score record pairs with a saved model and cluster them: the linkage run.

Each run is also planned and logged here: `plan` decides between this full linkage and
the incremental one of `linkage.incremental` (full when there is no previous linkage, the
model file or the threshold changed, or a full re-link is asked for), and `record_run`
logs it in ``linkage.link_runs`` with the batches and review decisions that caused it.

Prediction never trains: it loads the JSON written by `linkage.train`, so the links of a
run depend only on the records and on a reviewed, versioned model file. The pairs and the
clusters built from them are written together in one transaction, replacing the previous
run's tables, so linking the same input twice changes nothing.

``linkage.predictions`` keeps every scored pair at or above ``review_floor`` (not only
those above the threshold) with its match weight and, per comparison, the level reached
(``gamma_<comparison>``) and the weight it contributed (``mw_<comparison>``): that is the
evidence that explains a link, and the pool a reviewer draws near-misses from.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from linkage.cluster import Constraints, cluster_pairs, write_tables
from linkage.model import comparison_names, create_input_table, drop_input_table
from linkage.reclustered import forget_reclustered
from linkage.train import load_model
from sharehub.errors import LinkageError
from sharehub.settings import LINKAGE_BACKENDS
from sharehub.warehouse import table_exists

if TYPE_CHECKING:
    from linkage.spark_backend import SparkConfig

log = logging.getLogger(__name__)

REVIEW_FLOOR = 0.01


@dataclass(frozen=True)
class LinkResult:
    """What a linkage run wrote, for logs, reports and the batch ledger."""

    predictions_table: str
    clusters_table: str
    model_path: str
    threshold: float
    records: int
    scored_pairs: int
    linked_pairs: int
    clusters: int

    @property
    def predicted_pairs(self) -> int:
        """Pairs the model scored and kept (alias of ``scored_pairs`` for run summaries)."""
        return self.scored_pairs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoringJob:
    """What a scorer needs: the projected input on ``con``, the model, the lowest
    probability kept, and names for messages (``source``: the features table)."""

    con: duckdb.DuckDBPyConnection
    input_table: str
    model: dict[str, Any]
    model_path: Path
    floor: float
    source: str


def _prediction_columns(available: list[str], comparisons: list[str]) -> list[str]:
    wanted = [
        "unique_id_l",
        "unique_id_r",
        "source_dataset_l",
        "source_dataset_r",
        "match_weight",
        "match_probability",
        "match_key",
    ]
    for name in comparisons:
        wanted += [f"gamma_{name}", f"mw_{name}", f"mw_tf_adj_{name}"]
    return [c for c in wanted if c in available]


def link(
    con: duckdb.DuckDBPyConnection,
    features_table: str,
    *,
    model_path: Path,
    threshold: float,
    review_floor: float = REVIEW_FLOOR,
    predictions_table: str = "linkage.predictions",
    clusters_table: str = "linkage.clusters",
    constraints: Constraints | None = None,
    backend: str = "duckdb",
    spark: SparkConfig | None = None,
) -> LinkResult:
    """Predict with the model at ``model_path`` and cluster at ``threshold``.

    Writes ``predictions_table`` (pairs with match_probability >= min(review_floor,
    threshold)) and ``clusters_table`` (unique_id, cluster_id; every record, singletons
    included), honouring reviewers' ``constraints`` (`linkage.review`).

    ``backend`` says where pairs are scored: "duckdb" on ``con``, or "spark" with the
    ``spark`` config (`linkage.spark_backend`). Clustering and writing happen on ``con``
    either way, so both backends write the same tables.
    """
    if not 0.0 < threshold <= 1.0:
        raise LinkageError(f"threshold must be in (0, 1]; got {threshold}")
    if backend not in LINKAGE_BACKENDS:
        raise LinkageError(f"backend={backend!r}; expected one of {', '.join(LINKAGE_BACKENDS)}")
    model = load_model(Path(model_path))
    floor = min(review_floor, threshold)
    input_table = create_input_table(con, features_table)
    job = ScoringJob(con, input_table, model, Path(model_path), floor, features_table)
    scoring: AbstractContextManager[str]
    if backend == "spark":
        from linkage.spark_backend import SparkConfig, scored_on_spark

        scoring = scored_on_spark(job, spark or SparkConfig())
    else:
        scoring = _scored_on_duckdb(job)
    clusters_tmp = None
    try:
        with scoring as scored:
            available = [str(r[0]) for r in con.execute(f"DESCRIBE {scored}").fetchall()]
            columns = _prediction_columns(available, comparison_names(model))
            pairs_sql = (
                f"SELECT {', '.join(columns)} FROM {scored} ORDER BY unique_id_l, unique_id_r"
            )
            clusters_tmp = cluster_pairs(
                con, scored, input_table, threshold=threshold, constraints=constraints
            )
            forget_reclustered(con)  # every cluster may change: identify weighs them all
            write_tables(
                con,
                {
                    predictions_table: pairs_sql,
                    clusters_table: f"SELECT * FROM {clusters_tmp} ORDER BY unique_id",
                },
            )
        result = _summarise(con, str(model_path), threshold, predictions_table, clusters_table)
    finally:
        drop_input_table(con, input_table)
        if clusters_tmp:
            con.execute(f"DROP TABLE IF EXISTS {clusters_tmp}")
    log.info(
        "linked %d records of %s on %s: %d pairs scored, %d at >= %s, %d clusters",
        result.records,
        features_table,
        backend,
        result.scored_pairs,
        result.linked_pairs,
        threshold,
        result.clusters,
    )
    return result


@contextmanager
def _scored_on_duckdb(job: ScoringJob) -> Iterator[str]:
    """Score the job's input with Splink on its connection; yield the scored pairs' table."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=job.con)
    try:
        try:
            linker = Linker(db_api.register(job.input_table), job.model, log_level=None)
            scored = linker.inference.predict(
                threshold_match_probability=job.floor, warning_mode="never"
            )
        except Exception as exc:  # splink and duckdb raise many unrelated types
            raise LinkageError(
                f"prediction on {job.source} with {job.model_path} failed: {exc}"
            ) from exc
        yield scored.physical_name
    finally:
        db_api.delete_tables_created_by_splink_from_db()


def _summarise(
    con: duckdb.DuckDBPyConnection,
    model_path: str,
    threshold: float,
    predictions_table: str,
    clusters_table: str,
) -> LinkResult:
    pairs = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE match_probability >= ?) FROM {predictions_table}",
        [threshold],
    ).fetchall()[0]
    clusters = con.execute(
        f"SELECT count(*), count(DISTINCT cluster_id) FROM {clusters_table}"
    ).fetchall()[0]
    return LinkResult(
        predictions_table=predictions_table,
        clusters_table=clusters_table,
        model_path=model_path,
        threshold=threshold,
        records=int(clusters[0]),
        scored_pairs=int(pairs[0]),
        linked_pairs=int(pairs[1]),
        clusters=int(clusters[1]),
    )


LINK_RUNS = "linkage.link_runs"
LINKED_BATCHES = "linkage.linked_batches"
_RUNS_DDL = f"""
CREATE TABLE IF NOT EXISTS {LINK_RUNS} (
    run_id VARCHAR, mode VARCHAR, reason VARCHAR, linked_at TIMESTAMP, model_sha256 VARCHAR,
    threshold DOUBLE, decision_no BIGINT, records BIGINT, rescored BIGINT,
    reclustered BIGINT, scored_pairs BIGINT, causes VARCHAR
);
CREATE TABLE IF NOT EXISTS {LINKED_BATCHES} (feed VARCHAR, batch_id VARCHAR, run_id VARCHAR);
"""


@dataclass(frozen=True)
class LinkPlan:
    """How this run links, why, and what caused it (for the id change log)."""

    incremental: bool
    reason: str
    batch_ids: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        return "incremental" if self.incremental else "full"

    @property
    def causes(self) -> list[str]:
        """``feed/batch_id`` of the deliveries, ``review:<id>`` of the decisions."""
        return [*self.batch_ids, *(f"review:{r}" for r in self.decisions)]


def _model_sha256(model_path: Path) -> str | None:
    path = Path(model_path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def last_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest row of ``linkage.link_runs``, or None before the first linkage."""
    if not table_exists(con, LINK_RUNS):
        return None
    cursor = con.execute(f"SELECT * FROM {LINK_RUNS} ORDER BY linked_at DESC, run_id DESC LIMIT 1")
    names = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    return dict(zip(names, rows[0], strict=True)) if rows else None


def unlinked_decisions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Review ids decided after the last linkage: decisions it has not applied yet."""
    from linkage.review import decisions_after

    last = last_run(con)
    return decisions_after(con, int(last["decision_no"] or 0) if last else 0)


def plan(
    con: duckdb.DuckDBPyConnection,
    *,
    model_path: Path,
    threshold: float,
    full: bool = False,
    backend: str = "duckdb",
) -> LinkPlan:
    """Incremental when a trained model and a previous linkage with the same model file
    and threshold exist; full otherwise (and whenever ``full`` is asked for, and always
    on the Spark backend: incremental scoring, `linkage.incremental`, is DuckDB-only)."""
    from linkage.changes import FEATURE_HASHES, fingerprints_usable

    con.execute(_RUNS_DDL)
    last = last_run(con)
    batches = tuple(
        f"{feed}/{batch}" for feed, batch in con.execute(
            f"SELECT feed, batch_id FROM raw.batches WHERE status = 'loaded' "
            f"AND (feed, batch_id) NOT IN (SELECT (feed, batch_id) FROM {LINKED_BATCHES}) "
            "ORDER BY loaded_at, feed, batch_id"
        ).fetchall()
    ) if table_exists(con, "raw.batches") else ()  # fmt: skip
    decisions = tuple(unlinked_decisions(con))
    needed = ("linkage.predictions", "linkage.clusters", "linkage.person_ids", FEATURE_HASHES)
    if full:
        reason, incremental = "full re-link requested", False
    elif backend == "spark":
        reason, incremental = "the Spark backend scores all pairs each run", False
    elif not Path(model_path).is_file():
        reason, incremental = "no trained model yet", False
    elif last is None or not all(table_exists(con, t) for t in needed):
        reason, incremental = "no previous linkage to build on", False
    elif not fingerprints_usable(con, FEATURE_HASHES, "feature_hash"):
        reason, incremental = "the feature fingerprints are of an older kind", False
    elif last["model_sha256"] != _model_sha256(model_path):
        reason, incremental = "the model file changed since the last linkage", False
    elif float(last["threshold"]) != threshold:
        reason, incremental = f"the threshold changed from {last['threshold']}", False
    else:
        reason, incremental = "features changed since the last linkage are linked", True
    return LinkPlan(incremental, reason, batches, decisions)


def record_run(
    con: duckdb.DuckDBPyConnection,
    link_plan: LinkPlan,
    *,
    run_id: str,
    now: datetime,
    model_path: Path,
    threshold: float,
    counts: tuple[int, int, int, int],
) -> None:
    """Log the linkage (records, rescored, reclustered, scored pairs) and mark its batches
    linked, after writing the fingerprints its next increment starts from."""
    from linkage.changes import tf_columns, write_fingerprints
    from linkage.review import last_decision_no

    con.execute(_RUNS_DDL)
    # an increment's changes (left by `linkage.incremental`) update them; a full run rewrites
    tf_cols = tf_columns(load_model(model_path))
    write_fingerprints(con, tf_cols, incremental=link_plan.incremental)
    con.execute(
        f"INSERT INTO {LINK_RUNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, link_plan.mode, link_plan.reason, now, _model_sha256(model_path), threshold,
         last_decision_no(con), *counts, ",".join(link_plan.causes) or None],
    )  # fmt: skip
    for cause in link_plan.batch_ids:
        feed, batch = cause.split("/", 1)
        con.execute(f"INSERT INTO {LINKED_BATCHES} VALUES (?, ?, ?)", [feed, batch, run_id])
