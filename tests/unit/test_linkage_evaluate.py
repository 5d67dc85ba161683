"""Pairwise precision, recall and F1 on cases small enough to count by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from linkage.evaluate import evaluate_clusters
from sharehub.errors import LinkageError


def _truth(persons: dict[str, str], feed: str = "f") -> pd.DataFrame:
    return pd.DataFrame(
        {"feed": feed, "source_key": list(persons), "true_person_id": list(persons.values())}
    )


def _clusters(clusters: dict[str, str], feed: str = "f") -> pd.DataFrame:
    return pd.DataFrame(
        {"unique_id": [f"{feed}:{k}" for k in clusters], "cluster_id": list(clusters.values())}
    )


def test_hand_counted_precision_recall_f1() -> None:
    # truth: {1,2,3} is P, {4,5} is Q -> true pairs 12 13 23 45 = 4
    # clusters: {1,2} {3,4} {5}       -> predicted pairs 12 34 = 2, true positives 12 = 1
    truth = _truth({"1": "P", "2": "P", "3": "P", "4": "Q", "5": "Q"})
    clusters = _clusters({"1": "A", "2": "A", "3": "B", "4": "B", "5": "C"})
    r = evaluate_clusters(clusters, truth)
    assert (r.true_pairs, r.predicted_pairs, r.true_positive_pairs) == (4, 2, 1)
    assert r.precision == pytest.approx(1 / 2)
    assert r.recall == pytest.approx(1 / 4)
    assert r.f1 == pytest.approx(1 / 3)
    assert (r.clusters_predicted, r.true_persons, r.records_evaluated) == (3, 2, 5)
    assert r.to_dict()["f1"] == pytest.approx(1 / 3)


def test_perfect_and_all_singleton_clusterings() -> None:
    truth = _truth({"1": "P", "2": "P", "3": "Q"})
    perfect = evaluate_clusters(_clusters({"1": "x", "2": "x", "3": "y"}), truth)
    assert (perfect.precision, perfect.recall, perfect.f1) == (1.0, 1.0, 1.0)
    singletons = evaluate_clusters(_clusters({"1": "a", "2": "b", "3": "c"}), truth)
    # no predicted pairs: nothing wrong was claimed, nothing found
    assert (singletons.precision, singletons.recall, singletons.f1) == (1.0, 0.0, 0.0)


def test_quarantined_and_unlabelled_records_are_counted_apart() -> None:
    truth = _truth({"1": "P", "2": "P", "3": "P"})  # 3 was quarantined: never clustered
    clusters = pd.concat([_clusters({"1": "A", "2": "A"}), _clusters({"9": "A"}, feed="g")])
    r = evaluate_clusters(clusters, truth)
    assert r.records_missing_from_clusters == 1
    assert r.records_without_truth == 1
    assert r.records_evaluated == 2
    assert (r.true_pairs, r.predicted_pairs, r.precision, r.recall) == (1, 1, 1.0, 1.0)


def test_twin_pairs_merged_from_a_twin_list_or_a_twin_of_column() -> None:
    truth = _truth({"1": "T1", "2": "T2", "3": "T3", "4": "T4", "5": "T1"})
    clusters = _clusters({"1": "A", "2": "A", "3": "B", "4": "C", "5": "D"})
    twins = pd.DataFrame({"person_a": ["T1", "T4", "T2"], "person_b": ["T2", "T3", "T1"]})
    r = evaluate_clusters(clusters, truth, twins=twins)
    assert (r.twin_pairs, r.twin_pairs_merged) == (2, 1)
    truth["twin_of"] = truth["true_person_id"].map({"T1": "T2", "T2": "T1", "T3": "T4", "T4": "T3"})
    r = evaluate_clusters(clusters, truth)
    assert (r.twin_pairs, r.twin_pairs_merged) == (2, 1)
    plain = evaluate_clusters(clusters, truth.drop(columns="twin_of"))
    assert (plain.twin_pairs, plain.twin_pairs_merged) == (None, None)


def test_pairs_are_counted_not_listed() -> None:
    # 200,000 records in one cluster: 19,999,900,000 pairs, counted in a group-by
    n = 200_000
    keys = [str(i) for i in range(n)]
    truth = _truth(dict(zip(keys, ["P" if i % 2 else "Q" for i in range(n)], strict=True)))
    clusters = pd.DataFrame({"unique_id": [f"f:{k}" for k in keys], "cluster_id": "one"})
    r = evaluate_clusters(clusters, truth)
    assert r.predicted_pairs == n * (n - 1) // 2
    assert r.true_pairs == 2 * ((n // 2) * (n // 2 - 1) // 2)
    assert r.true_positive_pairs == r.true_pairs


@pytest.mark.parametrize("which", ["clusters", "truth"])
def test_a_record_listed_twice_is_refused(which: str) -> None:
    truth = _truth({"1": "P", "2": "P"})
    clusters = _clusters({"1": "A", "2": "A"})
    if which == "clusters":
        clusters = pd.concat([clusters, clusters.iloc[:1]])
    else:
        truth = pd.concat([truth, truth.iloc[:1]])
    with pytest.raises(LinkageError, match="more than once"):
        evaluate_clusters(clusters, truth)


def test_missing_columns_are_named() -> None:
    with pytest.raises(LinkageError, match="true_person_id"):
        evaluate_clusters(_clusters({"1": "A"}), pd.DataFrame({"feed": ["f"], "source_key": ["1"]}))
