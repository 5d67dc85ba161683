"""Changing published tables in place: the result equals a rebuild, row for row."""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb
import pytest
from test_publish_validation import SHARED, district, snapshot

from sharehub.errors import PublishAborted
from sharehub.publish import publish
from sharehub.publish.delta import apply_in_place, changed_rows

ROWS = [("a", 1, "x"), ("b", 2, "y"), ("c", 3, "z"), ("d", 4, "w")]


def _table(con: duckdb.DuckDBPyConnection, name: str, rows: list[tuple[object, ...]]) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {name} (k VARCHAR, n INTEGER, v VARCHAR)")
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?)", rows)


def _rows(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[object, ...]]:
    return sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr)


def _hash(con: duckdb.DuckDBPyConnection, name: str) -> int:
    return int(con.execute(f"SELECT coalesce(bit_xor(hash(t)), 0) FROM {name} t").fetchall()[0][0])


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA shared")
    _table(con, "shared.t", ROWS)
    return con


def test_only_differing_keys_are_rewritten_and_the_table_equals_the_candidate(con: duckdb.DuckDBPyConnection) -> None:
    # b changed, c gone, e new, a and d unchanged
    new = [("a", 1, "x"), ("b", 2, "Y"), ("d", 4, "w"), ("e", 5, "v")]
    _table(con, "cand", new)
    before = _hash(con, "shared.t")
    delta = apply_in_place(con, "t", "cand", ("k",))
    assert _rows(con, "shared.t") == sorted(new, key=repr)
    assert sorted(r[0] for r in con.execute(f"SELECT k FROM {delta.keys}").fetchall()) == ["b", "c", "e"]
    assert (delta.deleted, delta.inserted) == (2, 2)
    # the content hash moves by exactly the deleted and the inserted rows
    assert before ^ delta.deleted_hash ^ delta.inserted_hash == _hash(con, "shared.t")
    written = con.execute(f"SELECT k FROM shared.t t WHERE {changed_rows(delta, ('k',))} ORDER BY k").fetchall()
    assert written == [("b",), ("e",)]


def test_a_published_row_duplicated_in_the_candidate_is_written_twice(con: duckdb.DuckDBPyConnection) -> None:
    """Both copies match the one published row by key and hash; the row count tells."""
    _table(con, "cand", [*ROWS, ("a", 1, "x")])
    delta = apply_in_place(con, "t", "cand", ("k",))
    assert _rows(con, "shared.t") == _rows(con, "cand")
    assert con.execute("SELECT count(*) FROM shared.t WHERE k = 'a'").fetchall() == [(2,)]
    assert delta.inserted == 2


def test_a_row_without_its_key_is_written_so_validation_sees_it(con: duckdb.DuckDBPyConnection) -> None:
    _table(con, "cand", [*ROWS, (None, 9, "q")])
    apply_in_place(con, "t", "cand", ("k",))
    assert _rows(con, "shared.t") == _rows(con, "cand")


def test_rows_outside_the_scope_are_left_alone(con: duckdb.DuckDBPyConnection) -> None:
    """A candidate covering only some keys: those missing from it within scope go."""
    _table(con, "cand", [("b", 2, "Y")])
    con.execute("CREATE TABLE scope AS SELECT * FROM (VALUES ('b'), ('c')) s(k)")
    apply_in_place(con, "t", "cand", ("k",), scope="SELECT k FROM scope")
    assert _rows(con, "shared.t") == sorted([("a", 1, "x"), ("b", 2, "Y"), ("d", 4, "w")], key=repr)


def test_a_compound_key_with_nulls_matches_null_to_null(con: duckdb.DuckDBPyConnection) -> None:
    _table(con, "shared.t", [("a", None, "x"), ("a", 1, "y")])
    _table(con, "cand", [("a", None, "x"), ("a", 1, "Y")])
    delta = apply_in_place(con, "t", "cand", ("k", "n"))
    assert _rows(con, "shared.t") == _rows(con, "cand")
    assert (delta.deleted, delta.inserted) == (1, 1)


def _change_district(con: duckdb.DuckDBPyConnection) -> None:
    """A day's changes: a moved person, a new record, an ended record, a new tag."""
    con.execute("UPDATE linkage.person_ids SET person_id = 'P1' WHERE record_id = 'ps_population:2'")
    con.execute("INSERT INTO staging.person_records VALUES ('ps_population:9', 'ps_population', '9', "
                "'b2', 'active', '2026-11-03', '光明路9号', 'H9')")  # fmt: skip
    con.execute("INSERT INTO linkage.person_features SELECT 'ps_population:9', '李娜', NULL, false, 'F', "
                "DATE '1990-01-01', NULL, NULL, false")  # fmt: skip
    con.execute("INSERT INTO linkage.person_ids VALUES ('ps_population:9', 'P9')")
    con.execute("UPDATE staging.person_records SET record_status = 'deregistered', batch_id = 'b2' "
                "WHERE record_id = 'ps_population:3'")  # fmt: skip
    con.execute("UPDATE staging.hw_ehr_person SET key_population = '高血压' WHERE record_id = 'E1'")


def test_a_version_changed_in_place_equals_one_built_whole(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="sharehub.publish.delta")
    con = district(6)
    publish(con, run_id="r1", now=datetime(2026, 11, 27))
    _change_district(con)
    whole = tmp_path / "whole.duckdb"
    con.execute(f"ATTACH '{whole}' AS whole")
    con.execute("COPY FROM DATABASE memory TO whole")
    con.execute("DETACH whole")
    assert publish(con, run_id="r2", now=datetime(2026, 11, 28)).version == 2
    assert "shared.person_xref changed in place" in caplog.text
    other = duckdb.connect(str(whole))
    assert publish(other, run_id="r2", now=datetime(2026, 11, 28), full_validation=True).version == 2
    assert snapshot(con) == snapshot(other)  # every shared table and the content hash
    # the changed person is rewritten, an unchanged one keeps its row
    assert con.execute("SELECT person_id FROM shared.person_xref WHERE record_id = 'ps_population:2'"
                       ).fetchall() == [("P1",)]  # fmt: skip
    assert set(SHARED) >= {"person", "person_xref", "health_tags"}


def test_a_failing_version_changed_in_place_leaves_the_published_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    con = district(6)
    publish(con, run_id="r1", now=datetime(2026, 11, 27))
    before = snapshot(con)
    _change_district(con)
    con.execute("UPDATE staging.person_records SET batch_id = NULL WHERE record_id = 'ps_population:4'")
    with pytest.raises(PublishAborted, match="batch_id"):
        publish(con, run_id="r2", now=datetime(2026, 11, 28))
    assert snapshot(con) == before
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]
