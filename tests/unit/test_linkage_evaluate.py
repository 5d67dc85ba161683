"""Pairwise precision, recall and F1 on cases small enough to count by hand."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pandas as pd
import pytest

from linkage.evaluate import evaluate_clusters
from sharehub.errors import ContractViolation, LinkageError
from sharehub.evaluation import read_truth


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


# ------------------------------------------------------------------ twins and causes


def _damaged(rows: list[tuple[str, str, str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(truth, clusters) from rows of (key, true person, cluster, damage)."""
    truth = pd.DataFrame({"feed": "f", "source_key": [r[0] for r in rows],
                          "true_person_id": [r[1] for r in rows],
                          "damage": [r[3] for r in rows]})
    return truth, _clusters({r[0]: r[2] for r in rows})


def test_errors_by_cause_counted_by_hand() -> None:
    # P = {1,2,3,7} split over A {1,2}, B {3}, E {7}; Q = {4,5} split over C, D;
    # R = {6} wrongly in C with 4.
    truth, clusters = _damaged([
        ("1", "P", "A", ""), ("2", "P", "A", "id_typo"), ("3", "P", "B", "homophone;space"),
        ("7", "P", "E", ""), ("4", "Q", "C", ""), ("5", "Q", "D", "id_missing"),
        ("6", "R", "C", "id_typo"),
    ])
    r = evaluate_clusters(clusters, truth)
    # FN pairs: 1-3 {homophone,space}, 2-3 {id_typo,homophone,space}, 1-7 {}, 2-7 {id_typo},
    #           3-7 {homophone,space}, 4-5 {id_missing}; FP pairs: 4-6 {id_typo}
    assert (r.false_negative_pairs, r.false_positive_pairs) == (6, 1)
    assert r.errors_by_cause is not None
    got = [(c.cause, c.false_negative_pairs, c.false_positive_pairs) for c in r.errors_by_cause]
    assert got == [("homophone", 3, 0), ("id_typo", 2, 1), ("space", 3, 0),
                   ("id_missing", 1, 0), ("none", 1, 0)]
    assert r.to_dict()["errors_by_cause"][0] == {
        "cause": "homophone", "false_negative_pairs": 3, "false_positive_pairs": 0}


def test_errors_by_cause_agree_with_listing_every_pair() -> None:
    rng = random.Random(5)
    tags = ["", "", "a", "b", "a;b", "c"]
    rows = [(str(i), f"P{rng.randrange(12)}", f"C{rng.randrange(10)}", rng.choice(tags))
            for i in range(60)]
    truth, clusters = _damaged(rows)
    expected: dict[str, list[int]] = {}
    for (_, p1, c1, d1), (_, p2, c2, d2) in itertools.combinations(rows, 2):
        if (p1 == p2) == (c1 == c2):
            continue  # a true positive or a true negative
        kind = 0 if p1 == p2 else 1
        for tag in (set(filter(None, f"{d1};{d2}".split(";"))) or {"none"}):
            expected.setdefault(tag, [0, 0])[kind] += 1
    r = evaluate_clusters(clusters, truth)
    assert r.errors_by_cause is not None
    got = {c.cause: [c.false_negative_pairs, c.false_positive_pairs] for c in r.errors_by_cause}
    assert got == expected


def test_no_damage_column_means_no_causes() -> None:
    r = evaluate_clusters(_clusters({"1": "A", "2": "B"}), _truth({"1": "P", "2": "P"}))
    assert r.errors_by_cause is None
    assert r.to_dict()["false_negative_pairs"] == 1


def test_twins_from_a_truth_file_with_empty_twin_of_and_an_absent_twin() -> None:
    truth = _truth({"1": "T1", "2": "T2", "3": "T1", "4": "S1", "5": "S2", "6": "U1", "7": "X"})
    truth["twin_of"] = truth["true_person_id"].map(
        {"T1": "T2", "T2": "T1", "S1": "S2", "S2": "S1", "U1": "U2"}).fillna("")
    # T1/T2 share cluster A through record 3; S1/S2 are apart; U2 has no record: not counted
    clusters = _clusters({"1": "B", "2": "A", "3": "A", "4": "C", "5": "D", "6": "E", "7": "F"})
    r = evaluate_clusters(clusters, truth)
    assert (r.twin_pairs, r.twin_pairs_merged) == (2, 1)
    assert r.twin_pairs_merged_share == pytest.approx(0.5)


def test_read_truth_keeps_twins_and_damage_and_accepts_old_files(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text("feed,source_key,true_person_id\nf,1,P\n", encoding="utf-8")
    assert list(read_truth(old).columns) == ["feed", "source_key", "true_person_id"]
    new = tmp_path / "new.csv"
    new.write_text("feed,source_key,true_person_id,twin_of,damage,extra\n"
                   "f,1,P,Q,id_typo;homophone,x\nf,2,Q,P,\n", encoding="utf-8")
    truth = read_truth(new)
    assert list(truth.columns) == ["feed", "source_key", "true_person_id", "twin_of", "damage"]
    assert truth["damage"].tolist() == ["id_typo;homophone", ""]
    with pytest.raises(ContractViolation, match="true_person_id"):
        bad = tmp_path / "bad.csv"
        bad.write_text("feed,source_key\nf,1\n", encoding="utf-8")
        read_truth(bad)
