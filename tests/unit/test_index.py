"""Stable person ids: carried forward by overlap, merges and splits logged, never reused."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from linkage.index import assign_person_ids


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
