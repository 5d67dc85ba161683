"""Clerical review: decisions as clustering constraints, the queue, and the audit trail."""

from __future__ import annotations

import random
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from linkage import review
from linkage.cluster import cluster_pairs
from linkage.constraints import Constraints, constrained_clusters
from sharehub.errors import LinkageError, NotFound


def _groups(clusters: dict[str, str]) -> set[frozenset[str]]:
    by: dict[str, set[str]] = {}
    for uid, cid in clusters.items():
        by.setdefault(cid, set()).add(uid)
    return {frozenset(g) for g in by.values()}


def _active(*uids: str) -> dict[str, bool]:
    return dict.fromkeys(uids, True)


def test_without_decisions_python_clustering_equals_the_sql_one() -> None:
    """The constrained clustering must be the same rules, or decided components would
    cluster differently from the rest."""
    for seed in range(20):
        rng = random.Random(seed)
        ids = [f"r{i:02d}" for i in range(rng.randint(2, 14))]
        status = {u: rng.choice(["active", "active", "inactive", "deregistered"]) for u in ids}
        edges = {tuple(sorted(rng.sample(ids, 2))): rng.choice([0.91, 0.95, 0.99])
                 for _ in range(rng.randint(0, 2 * len(ids)))}  # fmt: skip
        con = duckdb.connect()
        recs = pd.DataFrame({"unique_id": ids, "record_status": [status[u] for u in ids]})  # noqa: F841
        pairs = pd.DataFrame([(a, b, p) for (a, b), p in edges.items()],  # noqa: F841
                             columns=["unique_id_l", "unique_id_r", "match_probability"],
                             ).astype({"unique_id_l": str, "unique_id_r": str, "match_probability": float})  # fmt: skip
        con.execute("CREATE TABLE recs AS SELECT * FROM recs")
        con.execute("CREATE TABLE pairs AS SELECT * FROM pairs")
        out = cluster_pairs(con, "pairs", "recs", threshold=0.9)
        expected = dict(con.execute(f"SELECT unique_id, cluster_id FROM {out}").fetchall())
        bridging = {u: s == "active" for u, s in status.items()}
        got = constrained_clusters(bridging, [(a, b, p) for (a, b), p in edges.items()], Constraints())
        assert got == expected, seed


def test_no_match_cuts_the_weakest_link_of_the_chain() -> None:
    edges = [("a", "b", 0.99), ("b", "c", 0.96), ("c", "d", 0.99)]
    clusters = constrained_clusters(_active(*"abcd"), edges, Constraints(must_not_link=frozenset({("a", "d")})))
    assert _groups(clusters) == {frozenset("ab"), frozenset("cd")}


def test_no_match_drops_the_pairs_own_link() -> None:
    clusters = constrained_clusters(_active("a", "b"), [("a", "b", 0.999)],
                                    Constraints(must_not_link=frozenset({("a", "b")})))  # fmt: skip
    assert clusters["a"] != clusters["b"]


def test_match_joins_two_clusters() -> None:
    edges = [("a", "b", 0.99), ("c", "d", 0.99)]
    clusters = constrained_clusters(_active(*"abcd"), edges, Constraints(must_link=frozenset({("b", "c")})))
    assert _groups(clusters) == {frozenset("abcd")}


def test_a_match_outranks_the_best_neighbour_of_an_ended_record() -> None:
    """x (deregistered) scores best with a, a reviewer says it is b: it goes to b, and
    being ended it still pulls nobody together."""
    bridging = {"a": True, "b": True, "x": False}
    clusters = constrained_clusters(bridging, [("a", "x", 0.99)],
                                    Constraints(must_link=frozenset({("b", "x")})))  # fmt: skip
    assert _groups(clusters) == {frozenset("a"), frozenset("bx")}


def test_a_match_that_contradicts_a_no_match_is_not_applied() -> None:
    decided = Constraints(must_link=frozenset({("a", "b"), ("b", "c")}),
                          must_not_link=frozenset({("a", "c")}))  # fmt: skip
    clusters = constrained_clusters(_active(*"abc"), [], decided)
    assert _groups(clusters) == {frozenset("ab"), frozenset("c")}


def test_an_ended_record_told_apart_from_its_best_neighbour_joins_the_next_best() -> None:
    bridging = {"a": True, "b": True, "x": False}
    edges = [("a", "x", 0.99), ("b", "x", 0.95)]
    clusters = constrained_clusters(bridging, edges, Constraints(must_not_link=frozenset({("a", "x")})))
    assert _groups(clusters) == {frozenset("a"), frozenset("bx")}


def test_cluster_pairs_changes_only_the_decided_components() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE recs AS SELECT * FROM (VALUES ('a', 'active'), ('b', 'active'), "
                "('c', 'active'), ('d', 'active'), ('e', 'active')) t(unique_id, record_status)")  # fmt: skip
    con.execute("CREATE TABLE pairs AS SELECT * FROM (VALUES ('a', 'b', 0.99), ('b', 'c', 0.97), "
                "('d', 'e', 0.99)) t(unique_id_l, unique_id_r, match_probability)")  # fmt: skip
    out = cluster_pairs(con, "pairs", "recs", threshold=0.9,
                        constraints=Constraints(must_not_link=frozenset({("a", "c")})))  # fmt: skip
    rows = dict(con.execute(f"SELECT unique_id, cluster_id FROM {out}").fetchall())
    assert _groups(rows) == {frozenset("ab"), frozenset("c"), frozenset("de")}


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """Three clusters: one with a grey-zone pair to a stranger, one holding two valid IDs
    (and a guardian's ID, which conflicts with its record's birth date), and a link above
    the threshold that clustering held apart (f:3 ~ f:6)."""
    return _world()


def _world() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA linkage")
    con.execute("""CREATE TABLE linkage.person_features AS SELECT * FROM (VALUES
        ('f:1', '110105194803120016', true, false), ('f:2', NULL, false, false),
        ('f:3', '110105194803120016', true, false), ('f:4', '110105195001010011', true, false),
        ('f:5', '120104199206233301', true, true), ('f:6', NULL, false, false))
        t(unique_id, id_norm, id_valid, birth_conflict)""")
    con.execute("""CREATE TABLE linkage.clusters AS SELECT * FROM (VALUES
        ('f:1', 'c1'), ('f:3', 'c1'), ('f:4', 'c1'), ('f:5', 'c1'), ('f:2', 'c2'), ('f:6', 'c3'))
        t(unique_id, cluster_id)""")
    con.execute("""CREATE TABLE linkage.predictions AS SELECT * FROM (VALUES
        ('f:1', 'f:3', 12.0, 0.9999), ('f:2', 'f:6', 0.5, 0.7), ('f:1', 'f:2', -3.0, 0.2),
        ('f:3', 'f:6', 6.0, 0.985))
        t(unique_id_l, unique_id_r, match_weight, match_probability)""")
    con.execute("ALTER TABLE linkage.predictions ALTER match_probability TYPE DOUBLE")
    con.execute("CREATE TABLE linkage.person_ids AS SELECT unique_id AS record_id, "
                "'P' || cluster_id AS person_id FROM linkage.clusters")
    return con


def test_the_queue_holds_grey_pairs_held_apart_links_and_conflicting_ids(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert review.build_queue(con, run_id="r1", threshold=0.95) == 3
    items = {(i["kind"], i["unique_id_l"], i["unique_id_r"]): i for i in review.list_items(con)}
    assert set(items) == {
        ("grey_pair", "f:2", "f:6"),
        ("conflicting_ids", "f:1", "f:4"),
        ("held_apart", "f:3", "f:6"),
    }
    grey = items[("grey_pair", "f:2", "f:6")]
    assert grey["review_id"] == review.review_id("f:6", "f:2")
    assert (grey["match_probability"], grey["same_person"], grey["created_run"]) == (0.7, False, "r1")
    # rebuilt by a later run: same ids, first-seen run kept
    review.build_queue(con, run_id="r2", threshold=0.95)
    again = {i["review_id"]: i for i in review.list_items(con)}
    assert again[grey["review_id"]]["created_run"] == "r1"
    assert again[grey["review_id"]]["seen_run"] == "r2"


def test_decisions_are_appended_and_the_latest_wins(con: duckdb.DuckDBPyConnection) -> None:
    review.build_queue(con, run_id="r1", threshold=0.95)
    rid = review.review_id("f:2", "f:6")
    first = review.decide(con, rid, "match", by="王芳", reason="same person", now=datetime(2026, 11, 2))
    assert review.list_items(con, "decided")[0]["decision"] == "match"
    assert review.constraints(con).must_link == {("f:2", "f:6")}
    second = review.decide(con, "f:6, f:2", "no-match", by="李强", reason="twins")
    assert second.review_id == rid and second.decision_no == first.decision_no + 1
    decided = review.constraints(con)
    assert (decided.must_link, decided.must_not_link) == (frozenset(), {("f:2", "f:6")})
    assert [d["decided_by"] for d in review.decision_log(con)] == ["王芳", "李强"]
    assert review.decisions_after(con, first.decision_no) == [rid]
    assert review.decisions_after(con, review.last_decision_no(con)) == []


def test_bad_decisions_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    review.build_queue(con, run_id="r1", threshold=0.95)
    rid = review.review_id("f:2", "f:6")
    with pytest.raises(LinkageError, match="one of match, no-match"):
        review.decide(con, rid, "maybe", by="王芳", reason="?")
    with pytest.raises(LinkageError, match="--by"):
        review.decide(con, rid, "match", by=" ", reason="same")
    with pytest.raises(NotFound, match="no review item"):
        review.decide(con, "RDOESNOTEXIST", "match", by="王芳", reason="same")
    with pytest.raises(NotFound, match="f:9"):
        review.decide(con, "f:1,f:9", "match", by="王芳", reason="same")
    assert review.decision_log(con) == []


def _day2(con: duckdb.DuckDBPyConnection, scoped: bool) -> None:
    """What an increment does around f:2, f:6 and a newcomer f:7: f:6 gets a valid ID and
    a strong link to f:2, whose cluster it joins with f:7 (another valid ID: a conflict),
    and the held-apart link f:3 ~ f:6 weakens into the grey zone; cluster c1 is untouched."""
    con.execute("UPDATE linkage.person_features SET id_norm = '110105198001010012', "
                "id_valid = true WHERE unique_id = 'f:6'")  # fmt: skip
    con.execute("INSERT INTO linkage.person_features VALUES "
                "('f:7', '110105199001010014', true, false)")  # fmt: skip
    con.execute("DELETE FROM linkage.clusters WHERE unique_id IN ('f:2', 'f:6')")
    con.execute("INSERT INTO linkage.clusters VALUES ('f:2', 'f:2'), ('f:6', 'f:2'), ('f:7', 'f:2')")
    con.execute("DELETE FROM linkage.predictions WHERE unique_id_l IN ('f:2', 'f:6') "
                "OR unique_id_r IN ('f:2', 'f:6')")  # fmt: skip
    con.execute("""INSERT INTO linkage.predictions VALUES ('f:2', 'f:6', 9.0, 0.998),
        ('f:6', 'f:7', 8.0, 0.996), ('f:3', 'f:6', 1.0, 0.66), ('f:1', 'f:2', -3.0, 0.2)""")
    con.execute("DELETE FROM linkage.person_ids WHERE record_id IN ('f:2', 'f:6')")
    con.execute("INSERT INTO linkage.person_ids VALUES ('f:2', 'Pf:2'), ('f:6', 'Pf:2'), "
                "('f:7', 'Pf:2')")  # fmt: skip
    if scoped:
        con.execute("CREATE TABLE linkage.reclustered AS SELECT * FROM (VALUES "
                    "('f:2'), ('f:6'), ('f:7')) t(unique_id)")  # fmt: skip


def test_rebuilding_the_queue_around_reclustered_records_equals_a_full_rebuild() -> None:
    """Items of untouched clusters are kept from the previous queue, the rest computed
    again: the queue comes out as a full rebuild makes it, first-seen runs included."""
    queues = []
    for scoped in (True, False):
        con = _world()
        review.build_queue(con, run_id="r1", threshold=0.95)
        _day2(con, scoped)
        review.build_queue(con, run_id="r2", threshold=0.95)
        queues.append(con.execute(f"SELECT * FROM {review.QUEUE}").fetchall())
        assert not con.execute(
            "SELECT * FROM information_schema.tables WHERE table_name IN ('_items', '_near')"
        ).fetchall()
    assert queues[0] == queues[1]
    items = {(r[1], r[2], r[3]): r for r in queues[0]}
    assert set(items) == {
        ("conflicting_ids", "f:1", "f:4"),  # kept from r1
        ("conflicting_ids", "f:6", "f:7"),  # new
        ("grey_pair", "f:3", "f:6"),  # was held apart
    }
    assert [items[("conflicting_ids", "f:1", "f:4")][k] for k in (9, 10)] == ["r1", "r2"]
    assert items[("grey_pair", "f:3", "f:6")][9] == "r1"  # the pair was first seen in r1
