"""``sharehub.delta``: a table patched by :func:`apply_delta` holds exactly the query's rows."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from sharehub.delta import Delta, apply_delta, replace_scope, same_shape

Con = duckdb.DuckDBPyConnection


@pytest.fixture
def con() -> Con:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k VARCHAR, role VARCHAR, v INTEGER, note VARCHAR)")
    con.execute("CREATE TABLE src (k VARCHAR, role VARCHAR, v INTEGER, note VARCHAR)")
    return con


def fill(con: Con, table: str, rows: list[tuple[Any, ...]]) -> None:
    con.execute(f"DELETE FROM {table}")
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", rows)


def rows(con: Con, relation: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()


def sync(con: Con, key: tuple[str, ...] = ("k", "role"), **options: Any) -> Delta:
    con.begin()
    delta = apply_delta(con, "t", "SELECT * FROM src", key, order="k, role", **options)
    con.commit()
    assert rows(con, "t") == rows(con, "src")
    return delta


BEFORE = [("a", "x", 1, None), ("a", "y", 2, "n"), ("b", "x", 3, None), (None, "x", 4, None)]


@pytest.mark.parametrize("materialize", [False, True])
def test_only_differing_keys_are_rewritten(con: Con, materialize: bool) -> None:
    fill(con, "t", BEFORE)
    fill(con, "src", [
        ("a", "x", 1, None),  # unchanged
        ("a", "y", 2, None),  # 'n' → NULL is a change
        ("c", "x", 5, None),  # new; ("b", "x") vanished
        (None, "x", 4, None),  # a NULL key is a key: unchanged
        (None, "y", 6, None),  # … and a new one
    ])  # fmt: skip
    assert sync(con, materialize=materialize) == Delta(keys=4, deleted=2, inserted=3)
    assert sync(con, materialize=materialize) == Delta(0, 0, 0)


def test_duplicates_are_counted_as_a_rebuild_would_keep_them(con: Con) -> None:
    fill(con, "t", BEFORE)
    fill(con, "src", [*BEFORE, ("a", "x", 1, None)])  # an exact duplicate appears
    assert sync(con).keys == 1
    fill(con, "src", BEFORE)  # … and goes again
    assert sync(con) == Delta(keys=1, deleted=2, inserted=1)
    fill(con, "src", [("k", "x", 1, None), ("k", "x", 2, None)])  # a coarser key
    sync(con, key=("k",))
    fill(con, "src", [("k", "x", 2, None), ("k", "x", 1, None)])  # same multiset
    assert sync(con, key=("k",)) == Delta(0, 0, 0)


def test_keys_under_constraints_are_rewritten_in_one_transaction() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY, code VARCHAR NOT NULL UNIQUE, v INT)")
    con.execute("CREATE TABLE src AS SELECT * FROM t")
    con.execute("INSERT INTO t VALUES ('1', 'c1', 1), ('2', 'c2', 2), ('3', 'c3', 3)")
    # 1 changes, 2 and 3 swap their codes: a key and a unique value each move.
    con.execute("INSERT INTO src VALUES ('1', 'c1', 10), ('2', 'c3', 2), ('3', 'c2', 3)")
    con.begin()
    delta = apply_delta(con, "t", "SELECT * FROM src", ("id",), order="id")
    con.commit()
    assert delta == Delta(keys=3, deleted=3, inserted=3)
    assert rows(con, "t") == rows(con, "src")
    constraints = con.execute(
        "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 't' ORDER BY 1"
    ).fetchall()
    assert constraints == [("NOT NULL",), ("NOT NULL",), ("PRIMARY KEY",), ("UNIQUE",)]


def test_same_shape_compares_names_types_and_order(con: Con) -> None:
    assert same_shape(con, "main.t", "SELECT * FROM src")
    assert not same_shape(con, "main.t", "SELECT k, role, note, v FROM src")
    assert not same_shape(con, "main.t", "SELECT k, role, v::BIGINT AS v, note FROM src")
    assert not same_shape(con, "main.t", "SELECT k, role, v, note AS remark FROM src")
    assert not same_shape(con, "main.missing", "SELECT * FROM src")


def test_a_failed_rewrite_raises_its_own_error_and_rolls_back() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY, v INT)")
    con.execute("INSERT INTO t VALUES ('1', 1), ('2', 2)")
    con.execute("CREATE TABLE src AS SELECT * FROM t")
    con.execute("INSERT INTO src VALUES ('2', 3)")  # a duplicate key, as a rebuild would fail
    con.begin()
    with pytest.raises(duckdb.ConstraintException, match="duplicate key"):
        apply_delta(con, "t", "SELECT * FROM src", ("id",), order="id")
    con.rollback()
    assert rows(con, "t") == [("1", 1), ("2", 2)]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]


# --- replacing a scope ---------------------------------------------------------------


def test_replacing_a_scope_rewrites_its_keys_and_nothing_else(con: Con) -> None:
    fill(con, "t", BEFORE)
    fill(con, "src", [
        ("a", "x", 10, None),  # changed, in scope
        ("a", "y", 2, "n"),  # unchanged, in scope: rewritten all the same
        ("b", "x", 30, None),  # changed, out of scope: left as it is (the caller's promise)
        (None, "x", 4, None),
        (None, "y", 6, None),  # new, in scope under the NULL key
        ("c", "x", 7, None),  # new, in scope
    ])  # fmt: skip
    con.execute(
        "CREATE TABLE scope AS SELECT * FROM (VALUES ('a'), (NULL), ('c'), ('z'), ('a')) s(k)"
    )
    con.begin()
    delta = replace_scope(
        con, "t", "SELECT * FROM src", ("k", "role"), "scope", order="k, role", scope_key=("k",)
    )
    con.commit()
    assert delta == Delta(keys=4, deleted=3, inserted=5)  # a, NULL, c, z
    expected = [r for r in rows(con, "src") if r[0] != "b"] + [("b", "x", 3, None)]
    assert rows(con, "t") == sorted(expected, key=lambda r: (r[0] is None, r))
    # A query already cut to the scope gives the same table.
    con.begin()
    replace_scope(
        con, "t", "SELECT * FROM src WHERE k IS DISTINCT FROM 'b'", ("k", "role"), "scope",
        order="k, role", scope_key=("k",),
    )  # fmt: skip
    con.commit()
    assert rows(con, "t") == sorted(expected, key=lambda r: (r[0] is None, r))
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]


def test_a_replaced_scope_holding_every_changed_key_equals_the_full_delta(con: Con) -> None:
    fill(con, "t", BEFORE)
    fill(con, "src", [("a", "x", 1, None), ("a", "y", 2, None), ("c", "x", 5, None),
                      (None, "x", 4, None)])  # fmt: skip
    con.execute(
        "CREATE TABLE scope AS SELECT * FROM (VALUES ('a', 'y'), ('b', 'x'), ('c', 'x')) s(k, role)"
    )
    con.begin()
    assert replace_scope(
        con, "t", "SELECT * FROM src", ("k", "role"), "scope", order="k, role"
    ) == Delta(keys=3, deleted=2, inserted=2)
    con.commit()
    assert rows(con, "t") == rows(con, "src")
    assert sync(con) == Delta(0, 0, 0)  # the full comparison finds nothing left


def test_an_empty_scope_changes_nothing() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY, v INT)")
    con.execute("INSERT INTO t VALUES ('1', 1)")
    con.execute("CREATE TABLE src AS SELECT '1' AS id, 2 AS v")
    con.execute("CREATE TABLE scope (id VARCHAR)")
    assert replace_scope(con, "t", "SELECT * FROM src", ("id",), "scope", order="id") == Delta(
        0, 0, 0
    )
    assert rows(con, "t") == [("1", 1)]
