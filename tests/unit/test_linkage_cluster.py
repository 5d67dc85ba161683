"""Clustering scored pairs: transitivity, the threshold, and records that must not bridge."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from linkage.cluster import cluster_pairs, cluster_predictions
from sharehub.errors import LinkageError


def _setup(
    records: dict[str, str], pairs: list[tuple[str, str, float]]
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA linkage")
    recs = pd.DataFrame({"unique_id": list(records), "record_status": list(records.values())})  # noqa: F841
    edges = pd.DataFrame(pairs, columns=["unique_id_l", "unique_id_r", "match_probability"])  # noqa: F841
    con.execute("CREATE TABLE linkage.person_features AS SELECT * FROM recs")
    con.execute("CREATE TABLE linkage.predictions AS SELECT * FROM edges")
    return con


def _clusters(con: duckdb.DuckDBPyConnection, threshold: float) -> dict[str, str]:
    cluster_predictions(con, threshold=threshold)
    return dict(con.execute("SELECT unique_id, cluster_id FROM linkage.clusters").fetchall())


def _groups(clusters: dict[str, str]) -> set[frozenset[str]]:
    by: dict[str, set[str]] = {}
    for uid, cid in clusters.items():
        by.setdefault(cid, set()).add(uid)
    return {frozenset(g) for g in by.values()}


def test_links_are_transitive_and_everyone_gets_a_cluster() -> None:
    con = _setup(
        {u: "active" for u in "abcdefg"},
        [("a", "b", 0.95), ("b", "c", 0.97), ("d", "e", 0.5), ("e", "f", 0.99)],
    )
    clusters = _clusters(con, 0.9)
    assert sorted(clusters) == list("abcdefg")
    assert _groups(clusters) == {frozenset("abc"), frozenset("d"), frozenset("ef"), frozenset("g")}
    assert clusters["a"] == "a"  # the smallest id names the cluster


def test_the_threshold_is_inclusive() -> None:
    con = _setup({"a": "active", "b": "active"}, [("a", "b", 0.9)])
    assert _groups(_clusters(con, 0.9)) == {frozenset("ab")}
    assert _groups(_clusters(con, 0.91)) == {frozenset("a"), frozenset("b")}


def test_inactive_records_link_but_do_not_pull_others_together() -> None:
    con = _setup(
        {"a": "active", "b": "active", "x": "inactive", "y": "deregistered", "z": None},
        # x and y each touch two people; z has no status and counts as current
        [("a", "x", 0.99), ("b", "x", 0.95), ("a", "y", 0.92), ("b", "y", 0.97), ("b", "z", 0.99)],
    )
    clusters = _clusters(con, 0.9)
    assert clusters["a"] != clusters["b"]
    assert clusters["x"] == clusters["a"]  # its best current neighbour
    assert clusters["y"] == clusters["b"]
    assert clusters["z"] == clusters["b"]


def test_a_placeholder_newborn_joins_one_twin_and_does_not_chain_both() -> None:
    con = _setup({"t1": "active", "t2": "active", "n": "active"},
                 [("n", "t1", 0.97), ("n", "t2", 0.97)])  # fmt: skip
    con.execute("ALTER TABLE linkage.person_features ADD COLUMN is_placeholder_name BOOLEAN")
    con.execute("UPDATE linkage.person_features SET is_placeholder_name = (unique_id = 'n')")
    clusters = _clusters(con, 0.9)
    assert _groups(clusters) == {frozenset({"t1", "n"}), frozenset({"t2"})}  # tie: smaller id


def test_inactive_records_without_current_neighbours_cluster_among_themselves() -> None:
    con = _setup(
        {"a": "active", "p": "inactive", "q": "deleted", "r": "inactive"},
        [("p", "q", 0.99), ("q", "r", 0.2)],
    )
    assert _groups(_clusters(con, 0.9)) == {frozenset("a"), frozenset("pq"), frozenset("r")}


def test_every_status_can_be_made_bridging() -> None:
    con = _setup(
        {"a": "active", "b": "active", "x": "inactive"}, [("a", "x", 0.99), ("b", "x", 0.95)]
    )
    out = cluster_pairs(
        con,
        "linkage.predictions",
        "linkage.person_features",
        threshold=0.9,
        non_bridging_statuses=(),
    )
    rows = con.execute(f"SELECT unique_id, cluster_id FROM {out}").fetchall()
    assert _groups(dict(rows)) == {frozenset("abx")}


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_an_impossible_threshold_is_refused(threshold: float) -> None:
    con = _setup({"a": "active"}, [])
    with pytest.raises(LinkageError, match="threshold"):
        cluster_predictions(con, threshold=threshold)
