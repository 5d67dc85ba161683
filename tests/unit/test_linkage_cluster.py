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


def _placeholder(con: duckdb.DuckDBPyConnection, *uids: str) -> None:
    con.execute("ALTER TABLE linkage.person_features ADD COLUMN is_placeholder_name BOOLEAN")
    con.execute(
        "UPDATE linkage.person_features SET is_placeholder_name = list_contains(?, unique_id)",
        [list(uids)],
    )


def test_a_placeholder_newborn_fitting_both_twins_alike_joins_neither() -> None:
    con = _setup({"t1": "active", "t2": "active", "n": "active"},
                 [("n", "t1", 0.97), ("n", "t2", 0.97)])  # fmt: skip
    _placeholder(con, "n")
    assert _groups(_clusters(con, 0.9)) == {frozenset({"t1"}), frozenset({"t2"}), frozenset({"n"})}


def test_a_placeholder_joins_the_twin_it_fits_clearly_better() -> None:
    # 0.999 is 10.0 bits, 0.97 is 5.0 bits: far beyond the one-bit margin
    con = _setup({"t1": "active", "t2": "active", "n": "active"},
                 [("n", "t1", 0.97), ("n", "t2", 0.999)])  # fmt: skip
    _placeholder(con, "n")
    assert _groups(_clusters(con, 0.9)) == {frozenset({"t1"}), frozenset({"t2", "n"})}


def test_a_runner_up_within_one_bit_is_ambiguous() -> None:
    # 0.96 (4.58 bits) against 0.95 (4.25 bits): too close to choose
    con = _setup({"a": "active", "b": "active", "x": "inactive"},
                 [("a", "x", 0.96), ("b", "x", 0.95)])  # fmt: skip
    assert _groups(_clusters(con, 0.9)) == {frozenset("a"), frozenset("b"), frozenset("x")}


def _with_ids(con: duckdb.DuckDBPyConnection, ids: dict[str, str | None]) -> None:
    con.execute("ALTER TABLE linkage.person_features ADD COLUMN id_norm VARCHAR")
    con.execute("ALTER TABLE linkage.person_features ADD COLUMN id_valid BOOLEAN")
    con.execute("ALTER TABLE linkage.person_features ADD COLUMN birth_conflict BOOLEAN")
    for uid, id_norm in ids.items():
        con.execute(
            "UPDATE linkage.person_features SET id_norm = ?, id_valid = ? IS NOT NULL, "
            "birth_conflict = false WHERE unique_id = ?",
            [id_norm, id_norm, uid],
        )


def test_a_record_without_id_does_not_chain_father_and_son() -> None:
    """Namesake father (ID A) and son (ID B); the son's clinic record without an ID fits
    the son on birth date and the father on name, room and phone alone."""
    con = _setup(
        {"father": "active", "son": "active", "clinic": "active", "son2": "active"},
        [("clinic", "son", 0.9999), ("clinic", "father", 0.96), ("son", "son2", 0.999)],
    )
    _with_ids(con, {"father": "A", "son": "B", "son2": "B", "clinic": None})
    clusters = _clusters(con, 0.9)
    assert _groups(clusters) == {frozenset({"father"}), frozenset({"son", "son2", "clinic"})}


def test_two_ids_in_a_chain_are_cut_at_the_weakest_link() -> None:
    con = _setup(
        {u: "active" for u in "abcd"},
        [("a", "b", 0.999), ("b", "c", 0.93), ("c", "d", 0.999)],
    )
    _with_ids(con, {"a": "A", "b": None, "c": None, "d": "D"})
    assert _groups(_clusters(con, 0.9)) == {frozenset("ab"), frozenset("cd")}


def test_an_id_contradicting_its_birth_date_is_no_conflict() -> None:
    """A guardian's ID on a civil-affairs row is not the record's own (linkage.model)."""
    con = _setup({"a": "active", "b": "active"}, [("a", "b", 0.99)])
    _with_ids(con, {"a": "A", "b": "G"})
    con.execute("UPDATE linkage.person_features SET birth_conflict = (unique_id = 'b')")
    assert _groups(_clusters(con, 0.9)) == {frozenset("ab")}


def test_a_reviewers_match_declares_two_ids_one_persons() -> None:
    from linkage.constraints import Constraints

    con = _setup({u: "active" for u in "abc"}, [("a", "b", 0.99), ("b", "c", 0.99)])
    _with_ids(con, {"a": "A", "b": "A", "c": "C"})
    split = cluster_pairs(con, "linkage.predictions", "linkage.person_features", threshold=0.9)
    assert len(_groups(dict(con.execute(f"SELECT * FROM {split}").fetchall()))) == 2
    out = cluster_pairs(con, "linkage.predictions", "linkage.person_features", threshold=0.9,
                        constraints=Constraints(must_link=frozenset({("a", "c")})))  # fmt: skip
    assert _groups(dict(con.execute(f"SELECT * FROM {out}").fetchall())) == {frozenset("abc")}


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
