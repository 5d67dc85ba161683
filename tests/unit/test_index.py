"""Stable person ids: carried forward by overlap, merges and splits logged, never reused."""

from __future__ import annotations

import logging
import random
from datetime import datetime

import duckdb
import pytest

from linkage.index import (
    _candidate,
    _new_ids,
    assign_person_ids,
)
from linkage.reclustered import note_reclustered, reset_reclustered


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA linkage")
    return con


def cluster(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str]]) -> None:
    con.execute("CREATE OR REPLACE TABLE linkage.clusters (unique_id VARCHAR, cluster_id VARCHAR)")
    con.executemany("INSERT INTO linkage.clusters VALUES (?, ?)", rows)


def ids(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT record_id, person_id FROM linkage.person_ids").fetchall())


def changes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str, str]]:
    return con.execute(
        "SELECT old_person_id, new_person_id, kind FROM linkage.person_id_changes "
        "WHERE run_id = ? ORDER BY kind", [run_id]
    ).fetchall()


def test_ids_are_opaque_and_stable_across_reruns(con: duckdb.DuckDBPyConnection) -> None:
    cluster(con, [("a:1", "c1"), ("b:1", "c1"), ("a:2", "c2")])
    first = assign_person_ids(con, run_id="r1", now=datetime(2026, 11, 1))
    before = ids(con)
    assert first.new == 2 and first.persons == 2
    assert before["a:1"] == before["b:1"] != before["a:2"]
    assert all(pid.startswith("P") and "a:1" not in pid for pid in before.values())
    # Same clusters under different cluster labels: nothing changes.
    cluster(con, [("a:1", "x"), ("b:1", "x"), ("a:2", "y")])
    again = assign_person_ids(con, run_id="r2", now=datetime(2026, 11, 2))
    assert ids(con) == before
    assert again.new == 0 and changes(con, "r2") == []


def test_merge_keeps_older_id_and_logs_retired_one(con: duckdb.DuckDBPyConnection) -> None:
    cluster(con, [("a:1", "c1"), ("b:1", "c2")])
    assign_person_ids(con, run_id="r1")
    old = ids(con)
    cluster(con, [("a:1", "c1"), ("b:1", "c1"), ("c:1", "c1")])
    result = assign_person_ids(con, run_id="r2")
    now = ids(con)
    assert len(set(now.values())) == 1
    survivor = now["a:1"]
    assert survivor in set(old.values())
    retired = (set(old.values()) - {survivor}).pop()
    assert changes(con, "r2") == [(retired, survivor, "merge")]
    assert result.merged == 1 and result.new == 0
    row = con.execute(
        "SELECT retired_into FROM linkage.id_registry WHERE person_id = ?", [retired]
    ).fetchone()
    assert row == (survivor,)


def test_split_keeps_id_on_larger_part(con: duckdb.DuckDBPyConnection) -> None:
    cluster(con, [("a:1", "c"), ("b:1", "c"), ("c:1", "c")])
    assign_person_ids(con, run_id="r1")
    original = ids(con)["a:1"]
    cluster(con, [("a:1", "big"), ("b:1", "big"), ("c:1", "small")])
    result = assign_person_ids(con, run_id="r2")
    now = ids(con)
    assert now["a:1"] == now["b:1"] == original
    assert now["c:1"] != original
    assert changes(con, "r2") == [(original, now["c:1"], "split")]
    assert result.split == 1


def test_retired_ids_are_never_reissued(con: duckdb.DuckDBPyConnection) -> None:
    cluster(con, [("a:1", "c")])
    assign_person_ids(con, run_id="r1")
    first = ids(con)["a:1"]
    cluster(con, [("z:9", "c")])  # a:1 vanished; z:9 is new
    assign_person_ids(con, run_id="r2")
    assert ("retire" in {kind for _, _, kind in changes(con, "r2")})
    cluster(con, [("a:1", "c")])  # a:1 comes back: it gets a fresh id, not the retired one
    assign_person_ids(con, run_id="r3")
    assert ids(con)["a:1"] != first


def test_a_merge_keeps_the_older_id_even_when_the_newer_holds_more_records(
    con: duckdb.DuckDBPyConnection,
) -> None:
    cluster(con, [("a:1", "c1")])
    assign_person_ids(con, run_id="r1")
    older = ids(con)["a:1"]
    cluster(con, [("a:1", "c1"), ("b:1", "c2"), ("b:2", "c2"), ("b:3", "c2")])
    assign_person_ids(con, run_id="r2")
    newer = ids(con)["b:1"]
    cluster(con, [("a:1", "c"), ("b:1", "c"), ("b:2", "c"), ("b:3", "c")])
    result = assign_person_ids(con, run_id="r3", batch_ids=["ps_population/20261102-001"])
    assert set(ids(con).values()) == {older}
    assert changes(con, "r3") == [(newer, older, "merge")]
    assert result.merged == 1
    causes = con.execute(
        "SELECT batch_ids FROM linkage.person_id_changes WHERE run_id = 'r3'"
    ).fetchall()
    assert causes == [("ps_population/20261102-001",)]


def test_part_of_a_person_moving_to_another_is_logged_as_a_move(
    con: duckdb.DuckDBPyConnection,
) -> None:
    cluster(con, [("a:1", "p"), ("a:2", "p"), ("a:3", "p"), ("b:1", "q"), ("b:2", "q")])
    assign_person_ids(con, run_id="r1")
    before = ids(con)
    cluster(con, [("a:1", "p"), ("a:2", "p"), ("a:3", "q"), ("b:1", "q"), ("b:2", "q")])
    assign_person_ids(con, run_id="r2")
    after = ids(con)
    assert after == {**before, "a:3": before["b:1"]}
    assert changes(con, "r2") == [(before["a:1"], before["b:1"], "move")]


def test_ended_records_get_the_end_date_of_their_ended_version(
    con: duckdb.DuckDBPyConnection,
) -> None:
    from linkage.index import build_record_end_dates

    con.execute("CREATE SCHEMA staging")
    con.execute("""CREATE TABLE staging.ps_population AS SELECT * FROM (VALUES
        ('R1', 'active', TIMESTAMP '2026-11-01 02:00', NULL, false, 'b1'),
        ('R1', 'deregistered', TIMESTAMP '2026-11-02 09:00', TIMESTAMP '2026-11-02 09:00', true, 'b2'),
        ('R2', 'active', TIMESTAMP '2026-11-01 02:00', NULL, true, 'b1'))
        t(person_no, record_status, valid_from, valid_to, is_current, batch_id)""")
    con.execute("""CREATE TABLE staging.hw_ehr_person AS SELECT * FROM (VALUES
        ('E1', 'deleted', TIMESTAMP '2026-11-02 08:00', TIMESTAMP '2026-11-02 08:00', true, 'h2'))
        t(record_id, record_status, valid_from, valid_to, is_current, batch_id)""")
    assert build_record_end_dates(con) == 2
    rows = con.execute("SELECT * FROM linkage.record_end_dates ORDER BY record_id").fetchall()
    assert rows == [
        ("hw_ehr_person:E1", "deleted", datetime(2026, 11, 2, 8), "h2"),
        ("ps_population:R1", "deregistered", datetime(2026, 11, 2, 9), "b2"),
    ]


def test_settled_persons_keep_their_ids_beside_a_merge_a_split_and_a_newcomer(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Most clusters of an increment are settled (the same records as one previous id);
    they skip the carry-forward but must come out exactly as if they had gone through it."""
    cluster(con, [("s:1", "s"), ("s:2", "s"), ("t:1", "t"), ("m:1", "m1"), ("m:2", "m2"),
                  ("x:1", "x"), ("x:2", "x"), ("x:3", "x")])  # fmt: skip
    assign_person_ids(con, run_id="r1")
    old = ids(con)
    cluster(con, [("s:1", "S"), ("s:2", "S"), ("t:1", "T"), ("m:1", "M"), ("m:2", "M"),
                  ("x:1", "X"), ("x:2", "X"), ("x:3", "Y"), ("n:1", "N")])  # fmt: skip
    result = assign_person_ids(con, run_id="r2")
    now = ids(con)
    assert [now[r] for r in ("s:1", "s:2", "t:1")] == [old["s:1"], old["s:1"], old["t:1"]]
    assert now["m:1"] == now["m:2"] and now["x:1"] == now["x:2"] == old["x:1"]
    assert now["x:3"] not in old.values() and now["n:1"] not in old.values()
    kinds = sorted(kind for _, _, kind in changes(con, "r2"))
    assert kinds == ["merge", "split"]
    assert (result.persons, result.kept, result.new, result.merged, result.split) == (6, 4, 2, 1, 1)


def _day(
    rng: random.Random, clusters: dict[str, str], gone: list[str], day: int
) -> tuple[dict[str, str], set[str]]:
    """One day as an incremental linkage re-clusters: a few clusters are taken apart and
    put together again differently (merges, splits, moves) with newcomers and records
    coming back, some of their records vanish, every other cluster stays as it was.
    Returns the new clusters (cluster id: the smallest member, as clustering names them)
    and the re-clustered set (with the vanished records)."""
    groups: dict[str, list[str]] = {}
    for uid, cid in sorted(clusters.items()):
        groups.setdefault(cid, []).append(uid)
    touched = rng.sample(sorted(groups), k=min(len(groups), rng.randint(1, 6)))
    records = [uid for cid in touched for uid in groups[cid]]
    vanished = set(rng.sample(records, k=rng.randint(0, min(2, len(records)))))
    back = set(rng.sample(gone, k=min(len(gone), rng.randint(0, 2))))
    newcomers = {f"n{day}:{i}" for i in range(rng.randint(0, 3))} | back
    gone[:] = sorted((set(gone) - back) | vanished)
    pool = sorted((set(records) - vanished) | newcomers)
    rng.shuffle(pool)
    after = {uid: cid for uid, cid in clusters.items() if cid not in touched}
    while pool:
        part, pool = pool[: rng.randint(1, 4)], pool[rng.randint(1, 4) :]
        after.update(dict.fromkeys(part, min(part)))
    return after, set(records) | vanished | newcomers


def _state(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[object, ...]], ...]:
    return tuple(
        sorted(con.execute(f"SELECT * FROM linkage.{t}").fetchall(), key=repr)
        for t in ("person_ids", "id_registry", "person_id_changes")
    )


@pytest.mark.parametrize("seed", range(6))
def test_assigning_only_the_reclustered_records_equals_assigning_all(
    seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Over several days of merges, splits, moves, vanished and returning records, the
    assignment that weighs only the re-clustered set gives what weighing every cluster
    gives: person ids, registry, change log and summary."""
    caplog.set_level(logging.INFO, logger="linkage.index")
    rng = random.Random(seed)
    clusters = {}
    for p in range(40):
        members = [f"r:{p}:{i}" for i in range(rng.randint(1, 3))]
        clusters.update(dict.fromkeys(members, min(members)))
    scoped, whole = duckdb.connect(), duckdb.connect()
    gone: list[str] = []
    for day in range(1, 9):
        changed: set[str] = set()
        if day > 1:
            clusters, changed = _day(rng, clusters, gone, day)
        for con in (scoped, whole):
            con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
            cluster(con, sorted(clusters.items()))
        if day > 1:
            note_reclustered(scoped, "SELECT * FROM (VALUES " + ", ".join(
                f"('{uid}')" for uid in sorted(changed)) + ") t(unique_id)")  # fmt: skip
        caplog.clear()
        now = datetime(2026, 11, day)
        got = assign_person_ids(scoped, run_id=f"r{day}", now=now, batch_ids=[f"b{day}"])
        assert (day > 1) == ("re-clustered records only" in caplog.text)
        want = assign_person_ids(
            whole, run_id=f"r{day}", now=now, batch_ids=[f"b{day}"], reclustered=None
        )
        assert got == want, day
        assert _state(scoped) == _state(whole), day
        reset_reclustered(scoped)
    kinds = {str(k) for (k,) in whole.execute("SELECT kind FROM linkage.person_id_changes").fetchall()}
    assert kinds >= {"merge", "split", "move"}, kinds  # the days exercised the carry-forward


def test_a_set_that_misses_a_vanished_record_means_assigning_every_record(
    con: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    cluster(con, [("a:1", "a:1"), ("a:2", "a:1"), ("b:1", "b:1")])
    assign_person_ids(con, run_id="r1")
    reset_reclustered(con)
    cluster(con, [("a:1", "a:1"), ("b:1", "b:1")])  # a:2 vanished, but nobody noted it
    assign_person_ids(con, run_id="r2")
    assert "assigning every record" in caplog.text
    assert set(ids(con)) == {"a:1", "b:1"}


def test_new_ids_are_salted_past_every_issued_one(con: duckdb.DuckDBPyConnection) -> None:
    """A record back after its id was retired would be given that id again: the next
    unissued salt is taken instead, found by asking the registry about candidates only."""
    cluster(con, [("a:1", "c")])
    assign_person_ids(con, run_id="r1")
    taken = [_candidate("z:9", salt) for salt in range(6)]
    con.executemany(
        "INSERT INTO linkage.id_registry VALUES (?, ?, TIMESTAMP '2026-11-01', NULL, NULL)",
        [(pid, 100 + n) for n, pid in enumerate(taken)],
    )
    assert _new_ids(con, ["z:9", "y:1"]) == [_candidate("z:9", 6), _candidate("y:1", 0)]
