"""Score record pairs with a saved model and cluster them: the linkage run.

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

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from linkage.cluster import cluster_pairs, write_tables
from linkage.model import comparison_names, create_input_table, drop_input_table
from linkage.train import load_model
from sharehub.errors import LinkageError

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
) -> LinkResult:
    """Predict with the model at ``model_path`` and cluster at ``threshold``.

    Writes ``predictions_table`` (pairs with match_probability >= min(review_floor,
    threshold)) and ``clusters_table`` (unique_id, cluster_id; every record, singletons
    included).
    """
    from splink import DuckDBAPI, Linker

    if not 0.0 < threshold <= 1.0:
        raise LinkageError(f"threshold must be in (0, 1]; got {threshold}")
    model = load_model(Path(model_path))
    floor = min(review_floor, threshold)
    input_table = create_input_table(con, features_table)
    db_api = DuckDBAPI(connection=con)
    clusters_tmp = None
    try:
        try:
            linker = Linker(db_api.register(input_table), model, log_level=None)
            scored = linker.inference.predict(
                threshold_match_probability=floor, warning_mode="never"
            )
        except Exception as exc:  # splink and duckdb raise many unrelated types
            raise LinkageError(
                f"prediction on {features_table} with {model_path} failed: {exc}"
            ) from exc
        available = [str(r[0]) for r in con.execute(f"DESCRIBE {scored.physical_name}").fetchall()]
        columns = _prediction_columns(available, comparison_names(model))
        pairs_sql = (
            f"SELECT {', '.join(columns)} FROM {scored.physical_name} "
            "ORDER BY unique_id_l, unique_id_r"
        )
        clusters_tmp = cluster_pairs(con, scored.physical_name, input_table, threshold=threshold)
        write_tables(
            con,
            {
                predictions_table: pairs_sql,
                clusters_table: f"SELECT * FROM {clusters_tmp} ORDER BY unique_id",
            },
        )
        result = _summarise(con, str(model_path), threshold, predictions_table, clusters_table)
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_input_table(con, input_table)
        if clusters_tmp:
            con.execute(f"DROP TABLE IF EXISTS {clusters_tmp}")
    log.info(
        "linked %d records of %s: %d pairs scored, %d at >= %s, %d clusters",
        result.records,
        features_table,
        result.scored_pairs,
        result.linked_pairs,
        threshold,
        result.clusters,
    )
    return result


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
