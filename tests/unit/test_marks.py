"""``sharehub.marks``: which parts of its sources a derived table has not seen yet, and
when that cannot be said."""

from __future__ import annotations

import duckdb
import pytest

from sharehub import marks

Con = duckdb.DuckDBPyConnection
SOURCES = {"s.a": "batch_id", "s.b": "batch_id"}


@pytest.fixture
def con() -> Con:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA s")
    con.execute("CREATE TABLE s.a (k VARCHAR, batch_id VARCHAR)")
    con.execute("CREATE TABLE s.b (k VARCHAR, batch_id VARCHAR)")
    con.execute("CREATE TABLE s.derived (k VARCHAR)")
    con.execute("INSERT INTO s.a VALUES ('1', 'b1'), ('2', 'b1'), ('3', NULL)")
    con.execute("INSERT INTO s.derived VALUES ('1'), ('2')")
    return con


def grown(con: Con) -> list[tuple[str, str | None]] | None:
    marks.count_parts(con, SOURCES)
    name = marks.grown_parts(con, "s.derived", list(SOURCES), own=["s.derived"])
    return None if name is None else con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()


def save(con: Con) -> None:
    marks.count_parts(con, SOURCES)
    marks.save_marks(con, "s.derived", own=["s.derived"])


def test_new_and_grown_parts_are_found(con: Con) -> None:
    assert grown(con) is None  # no marks yet: the caller compares everything
    save(con)
    assert grown(con) == []
    con.execute("INSERT INTO s.a VALUES ('1', 'b2'), ('4', NULL)")  # a new batch; NULL grew
    con.execute("INSERT INTO s.b VALUES ('9', 'b2')")  # a source's first rows
    assert grown(con) == [("s.a", "b2"), ("s.a", None), ("s.b", "b2")]
    rows = con.execute(
        f"SELECT k FROM s.a WHERE {marks.in_grown_part('s.a', 'batch_id')} ORDER BY ALL"
    ).fetchall()
    assert rows == [("1",), ("3",), ("4",)]
    save(con)
    assert grown(con) == []


@pytest.mark.parametrize(
    "edit",
    [
        "DELETE FROM s.a WHERE k = '2'",  # a part lost a row
        "UPDATE s.a SET batch_id = 'b9' WHERE batch_id IS NULL",  # a part vanished
        "INSERT INTO s.derived VALUES ('x')",  # the table was written by something else
        "ALTER TABLE s.b DROP COLUMN batch_id",  # a source that cannot be marked
    ],
)
def test_marks_that_cannot_be_trusted_say_nothing(con: Con, edit: str) -> None:
    save(con)
    con.execute(edit)
    assert grown(con) is None


def test_in_step_means_nothing_new_since_the_marks(con: Con) -> None:
    marks.count_parts(con, SOURCES)
    assert not marks.in_step(con, "s.derived", list(SOURCES), own=["s.derived"])
    save(con)
    assert marks.in_step(con, "s.derived", list(SOURCES), own=["s.derived"])
    con.execute("INSERT INTO s.b VALUES ('9', 'b2')")
    marks.count_parts(con, SOURCES)
    assert not marks.in_step(con, "s.derived", list(SOURCES), own=["s.derived"])
    assert marks.in_step(con, "s.derived", ["s.a"], own=["s.derived"])  # only s.b moved
    con.execute("DELETE FROM s.derived WHERE k = '1'")
    assert not marks.in_step(con, "s.derived", ["s.a"], own=["s.derived"])
    marks.forget_marks(con, "s.derived")
    assert not marks.in_step(con, "s.derived", ["s.a"], own=[])
