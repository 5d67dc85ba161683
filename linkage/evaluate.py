"""Measure clusters against the generator's truth: pairwise precision, recall, F1.

Pairwise metrics count unordered record pairs placed in the same cluster. They are
computed from group sizes — C(n, 2) per cluster, per true person and per
(cluster, true person) cell — never by listing pairs, so a million-record evaluation
costs a group-by, not N².

Records the truth knows but the clusters lack (quarantined rows, records not yet
staged) are counted apart and left out of the metrics, so a quarantine does not pass
for a linkage error; records without truth (e.g. housing owners the generator does not
label) are also counted apart.

When the truth carries the generator's ``damage`` tags, errors are grouped by cause: a
false-negative pair (one true person, two clusters) or false-positive pair (two persons,
one cluster) counts once for each tag on either of its records, ``none`` when neither
record has a tag. These counts come from group sizes too: the error pairs touching tag
*t* are all error pairs minus those among the records without *t*.
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
    errors_by_cause: tuple[CauseCount, ...] | None = None

    @property
    def false_negative_pairs(self) -> int:
        """Pairs of one true person's records placed in different clusters."""
        return self.true_pairs - self.true_positive_pairs

    @property
    def false_positive_pairs(self) -> int:
        """Pairs of different persons' records placed in one cluster."""
        return self.predicted_pairs - self.true_positive_pairs

    @property
    def twin_pairs_merged_share(self) -> float | None:
        """Share of twin pairs (both twins evaluated) merged into one cluster."""
        if self.twin_pairs is None or self.twin_pairs_merged is None:
            return None
        return self.twin_pairs_merged / self.twin_pairs if self.twin_pairs else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["false_negative_pairs"] = self.false_negative_pairs
        data["false_positive_pairs"] = self.false_positive_pairs
        data["twin_pairs_merged_share"] = self.twin_pairs_merged_share
        return data


@dataclass(frozen=True)
class CauseCount:
    """Error pairs with one damage tag on either record (``none``: no tag on either)."""

    cause: str
    false_negative_pairs: int
    false_positive_pairs: int


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
    true_person_id, optionally twin_of and damage).

    Twin pairs merged: pass ``twins`` (columns ``person_a``, ``person_b``: true person
    ids of twin pairs) or give ``truth`` a ``twin_of`` column (empty or NULL: no twin); a
    pair counts when both twins have evaluated records, and is merged when any record of
    one twin shares a cluster with any record of the other. Without either, the twin
    fields stay None. Errors by cause need a ``damage`` column (``;``-separated tags).
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
    if "damage" in truth.columns:
        t["damage"] = truth["damage"].fillna("").astype(str).to_numpy()
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
    causes = _errors_by_cause(merged) if "damage" in merged.columns else None
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
        errors_by_cause=causes,
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
    """Count twin pairs whose twins both have evaluated records, and those merged."""
    if twins is None and "twin_of" in truth.columns:
        has_twin = truth["twin_of"].notna() & (truth["twin_of"].astype(str).str.strip() != "")
        pairs = truth.loc[has_twin, ["true_person_id", "twin_of"]]
        twins = pd.DataFrame({"person_a": pairs["true_person_id"], "person_b": pairs["twin_of"]})
    if twins is None:
        return None, None
    _require(twins, ("person_a", "person_b"), "twins")
    a = twins["person_a"].astype(str)
    b = twins["person_b"].astype(str)
    pairs = pd.DataFrame({"a": a.where(a < b, b), "b": b.where(a < b, a)})
    pairs = pairs[pairs["a"] != pairs["b"]].drop_duplicates()
    present = set(merged["true_person_id"])
    pairs = pairs[pairs["a"].isin(present) & pairs["b"].isin(present)]
    cells = merged[["cluster_id", "true_person_id"]].drop_duplicates()
    joined = pairs.merge(cells.rename(columns={"true_person_id": "a"}), on="a").merge(
        cells.rename(columns={"true_person_id": "b"}), on=["b", "cluster_id"]
    )
    return len(pairs), int(joined[["a", "b"]].drop_duplicates().shape[0])


def _error_pairs(frame: pd.DataFrame) -> tuple[int, int]:
    """(false-negative, false-positive) pairs among the records of ``frame``."""
    if frame.empty:
        return 0, 0
    tp = _pairs(frame.groupby(["cluster_id", "true_person_id"]).size())
    fn = _pairs(frame.groupby("true_person_id").size()) - tp
    fp = _pairs(frame.groupby("cluster_id").size()) - tp
    return fn, fp


def _errors_by_cause(merged: pd.DataFrame) -> tuple[CauseCount, ...]:
    """Error pairs per damage tag, most frequent first (see module docstring).

    Only records of a true person split over clusters or of a cluster holding several
    persons can be in an error pair, and keeping all records of exactly those groups
    leaves every count unchanged, so the per-tag group-bys run on a small frame.
    """
    spread = merged.groupby("true_person_id")["cluster_id"].transform("nunique") > 1
    mixed = merged.groupby("cluster_id")["true_person_id"].transform("nunique") > 1
    frame = merged.loc[spread | mixed, ["cluster_id", "true_person_id", "damage"]]
    tags = frame["damage"].str.split(";").map(lambda ts: frozenset(t for t in ts if t))
    fn_all, fp_all = _error_pairs(frame)
    counts = [CauseCount("none", *_error_pairs(frame[tags.map(len) == 0]))]
    for tag in sorted(set().union(*tags)) if len(tags) else []:
        fn, fp = _error_pairs(frame[~tags.map(lambda ts, tag=tag: tag in ts)])
        counts.append(CauseCount(tag, fn_all - fn, fp_all - fp))
    counts = [c for c in counts if c.false_negative_pairs or c.false_positive_pairs]
    counts.sort(key=lambda c: (-(c.false_negative_pairs + c.false_positive_pairs), c.cause))
    return tuple(counts)
