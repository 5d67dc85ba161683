"""Measure clusters against the generator's truth: pairwise precision, recall, F1.

Pairwise metrics count unordered record pairs placed in the same cluster. They are
computed from group sizes — C(n, 2) per cluster, per true person and per
(cluster, true person) cell — never by listing pairs, so a million-record evaluation
costs a group-by, not N².

Records the truth knows but the clusters lack (quarantined rows, records not yet
staged) are counted apart and left out of the metrics, so a quarantine does not pass
for a linkage error; records without truth (e.g. housing owners the generator does not
label) are also counted apart.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from sharehub.errors import LinkageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    """Pairwise accuracy of one clustering; ``to_dict`` is what reports print."""

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int
    clusters_predicted: int
    true_persons: int
    records_evaluated: int
    records_missing_from_clusters: int
    records_without_truth: int
    twin_pairs: int | None = None
    twin_pairs_merged: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pairs(sizes: pd.Series) -> int:
    """Σ C(n, 2) over group sizes."""
    n = sizes.astype("int64")
    return int((n * (n - 1) // 2).sum())


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LinkageError(
            f"{what} lacks columns {', '.join(missing)}; expected {', '.join(columns)}"
        )


def evaluate_clusters(
    clusters: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    twins: pd.DataFrame | None = None,
) -> EvaluationReport:
    """Compare ``clusters`` (unique_id, cluster_id) with ``truth`` (feed, source_key,
    true_person_id).

    Twin pairs merged: pass ``twins`` (columns ``person_a``, ``person_b``: true person
    ids of twin pairs) or give ``truth`` a ``twin_of`` column; a pair is merged when any
    record of one twin shares a cluster with any record of the other. Without either,
    the twin fields stay None.
    """
    _require(clusters, ("unique_id", "cluster_id"), "clusters")
    _require(truth, ("feed", "source_key", "true_person_id"), "truth")
    if clusters["unique_id"].duplicated().any():
        dup = clusters.loc[clusters["unique_id"].duplicated(), "unique_id"].iloc[0]
        raise LinkageError(f"clusters list record {dup!r} more than once; one row per record")

    t = pd.DataFrame(
        {
            "unique_id": truth["feed"].astype(str) + ":" + truth["source_key"].astype(str),
            "true_person_id": truth["true_person_id"].astype(str),
        }
    )
    if t["unique_id"].duplicated().any():
        dup = t.loc[t["unique_id"].duplicated(), "unique_id"].iloc[0]
        raise LinkageError(f"truth lists record {dup!r} more than once; one row per record")
    c = clusters[["unique_id", "cluster_id"]].astype({"unique_id": str, "cluster_id": str})
    merged = c.merge(t, on="unique_id", how="inner")
    missing = int((~t["unique_id"].isin(c["unique_id"])).sum())
    without_truth = int((~c["unique_id"].isin(t["unique_id"])).sum())

    predicted = _pairs(merged.groupby("cluster_id").size())
    true = _pairs(merged.groupby("true_person_id").size())
    tp = _pairs(merged.groupby(["cluster_id", "true_person_id"]).size())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    twin_pairs, twins_merged = _twins(merged, truth, twins)
    report = EvaluationReport(
        precision=precision,
        recall=recall,
        f1=f1,
        true_pairs=true,
        predicted_pairs=predicted,
        true_positive_pairs=tp,
        clusters_predicted=int(merged["cluster_id"].nunique()),
        true_persons=int(merged["true_person_id"].nunique()),
        records_evaluated=len(merged),
        records_missing_from_clusters=missing,
        records_without_truth=without_truth,
        twin_pairs=twin_pairs,
        twin_pairs_merged=twins_merged,
    )
    log.info(
        "linkage evaluation: precision %.4f recall %.4f F1 %.4f on %d records",
        precision,
        recall,
        f1,
        len(merged),
    )
    return report


def _twins(
    merged: pd.DataFrame, truth: pd.DataFrame, twins: pd.DataFrame | None
) -> tuple[int | None, int | None]:
    """Count twin pairs, and those with both twins in one cluster (hook for truth)."""
    if twins is None and "twin_of" in truth.columns:
        pairs = truth.loc[truth["twin_of"].notna(), ["true_person_id", "twin_of"]]
        twins = pd.DataFrame({"person_a": pairs["true_person_id"], "person_b": pairs["twin_of"]})
    if twins is None:
        return None, None
    _require(twins, ("person_a", "person_b"), "twins")
    a = twins["person_a"].astype(str)
    b = twins["person_b"].astype(str)
    pairs = pd.DataFrame({"a": a.where(a < b, b), "b": b.where(a < b, a)})
    pairs = pairs[pairs["a"] != pairs["b"]].drop_duplicates()
    cells = merged[["cluster_id", "true_person_id"]].drop_duplicates()
    joined = pairs.merge(cells.rename(columns={"true_person_id": "a"}), on="a").merge(
        cells.rename(columns={"true_person_id": "b"}), on=["b", "cluster_id"]
    )
    return len(pairs), int(joined[["a", "b"]].drop_duplicates().shape[0])
