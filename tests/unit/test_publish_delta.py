"""Changing published tables in place: the result equals a rebuild, row for row."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_publish_validation import SHARED, district, edited, snapshot

from sharehub.errors import PublishAborted
from sharehub.publish import publish
from sharehub.publish.delta import apply_in_place, changed_rows

ROWS = [("a", 1, "x"), ("b", 2, "y"), ("c", 3, "z"), ("d", 4, "w")]


def _table(con: duckdb.DuckDBPyConnection, name: str, rows: Sequence[tuple[object, ...]]) -> None:
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
    # as the stages writing those tables do (linkage.unpublished)
    edited(con, "ps_population:2", "ps_population:9", "ps_population:3")


def test_a_version_changed_in_place_equals_one_built_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
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


def test_a_failing_version_changed_in_place_leaves_the_published_one() -> None:
    con = district(6)
    publish(con, run_id="r1", now=datetime(2026, 11, 27))
    before = snapshot(con)
    _change_district(con)
    con.execute("UPDATE staging.person_records SET batch_id = NULL WHERE record_id = 'ps_population:4'")
    edited(con, "ps_population:4")
    with pytest.raises(PublishAborted, match="batch_id"):
        publish(con, run_id="r2", now=datetime(2026, 11, 28))
    assert snapshot(con) == before
    assert con.execute("SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary) + "
                       "(SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)").fetchall() == [(0,)]


# --- several days changed in place, each equal to a whole build --------------------------


def _with_houses(con: duckdb.DuckDBPyConnection, persons: int) -> duckdb.DuckDBPyConnection:
    """A dwelling per population record, owned and lived in by that record's person."""
    con.execute("""CREATE TABLE linkage.houses (house_id VARCHAR, house_code VARCHAR, address VARCHAR,
        addr_std VARCHAR, addr_estate VARCHAR, addr_building VARCHAR, addr_unit VARCHAR, addr_room VARCHAR,
        addr_key VARCHAR, usage VARCHAR, occupancy VARCHAR, status VARCHAR, owner_record_id VARCHAR)""")
    con.execute(f"""INSERT INTO linkage.houses SELECT 'h' || i, 'H' || i, '光明路' || i || '号', NULL, '光明',
        NULL, NULL, NULL, NULL, '住宅', '自住', 'active', 'ps_population:' || i FROM range({persons}) t(i)""")
    con.execute("""CREATE TABLE linkage.residence (person_id VARCHAR, house_id VARCHAR, record_id VARCHAR,
        feed VARCHAR, link_source VARCHAR, role VARCHAR, valid BOOLEAN)""")
    con.execute(f"""INSERT INTO linkage.residence SELECT 'P' || i, 'h' || i, 'ps_population:' || i,
        'ps_population', 'house_code', role, true
        FROM range({persons}) t(i), (VALUES ('resident'), ('owner')) r(role)""")
    return con


def _move_record(con: duckdb.DuckDBPyConnection, record: int, person: str) -> None:
    """Record ``ps_population:<record>`` now belongs to ``person``; residence follows."""
    con.execute("UPDATE linkage.person_ids SET person_id = ? WHERE record_id = ?", [person, f"ps_population:{record}"])
    edited(con, f"ps_population:{record}")
    con.execute("UPDATE linkage.residence SET person_id = ? WHERE record_id = ?", [person, f"ps_population:{record}"])


def _drop_record(con: duckdb.DuckDBPyConnection, record: int) -> None:
    """Record ``ps_population:<record>`` is gone from the district, with its dwelling links."""
    rid = f"ps_population:{record}"
    for table, column in (("staging.person_records", "record_id"), ("linkage.person_features", "unique_id"),
                          ("linkage.person_ids", "record_id"), ("linkage.residence", "record_id")):
        con.execute(f"DELETE FROM {table} WHERE {column} = ?", [rid])
    edited(con, rid)
    con.execute("UPDATE linkage.houses SET owner_record_id = NULL WHERE owner_record_id = ?", [rid])


def _day2(con: duckdb.DuckDBPyConnection) -> None:
    _change_district(con)  # record 2 moves to P1, record 9 arrives, record 3 ends, a tag changes
    con.execute("UPDATE linkage.residence SET person_id = 'P1' WHERE record_id = 'ps_population:2'")
    con.execute("INSERT INTO linkage.houses VALUES ('h9', 'H9', '光明路9号', NULL, '光明', NULL, NULL, NULL, "
                "NULL, '商住', '出租', 'active', 'ps_population:9')")  # fmt: skip
    con.execute("INSERT INTO linkage.residence VALUES ('P9', 'h9', 'ps_population:9', 'ps_population', "
                "'house_code', 'resident', true)")  # fmt: skip


def _day3(con: duckdb.DuckDBPyConnection) -> None:
    _drop_record(con, 4)  # P4 vanishes: person, xref, house owner and residence rows change
    con.execute("INSERT INTO linkage.cluster_edges VALUES ('ps_population:1', 'ca_recipients:M1', 9, 0.97312)")
    edited(con, "ps_population:1", "ca_recipients:M1")
    con.execute("UPDATE staging.ca_recipients SET monthly_amount = 720 WHERE is_current")
    con.execute("UPDATE linkage.houses SET occupancy = '出租' WHERE house_id = 'h5'")


def _day4(con: duckdb.DuckDBPyConnection) -> None:
    _move_record(con, 2, "P2")  # P2 comes back: split again
    con.execute("UPDATE linkage.cluster_edges SET match_probability = 0.97318")  # same to four places
    edited(con, *(r[0] for r in con.execute(
        "SELECT unnest([unique_id_l, unique_id_r]) FROM linkage.cluster_edges").fetchall()))
    con.execute("UPDATE staging.hw_ehr_person SET key_population = NULL WHERE record_id = 'E1'")


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Every shared table as sorted rows, its content hash, the versions, and that the
    changes noted for publication were taken (`linkage.unpublished` emptied)."""
    from sharehub.publish.tables import _table_hash

    state: dict[str, object] = dict(snapshot(con))
    state.update({f"hash {t}": _table_hash(con, f"shared.{t}") for t in SHARED})
    state["unpublished"] = con.execute("SELECT count(*) FROM linkage.unpublished").fetchall()
    return state


def _batches_checked_both_ways(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make validation also compute each changed table's batch the long way (orphan
    columns over the whole table, read from the table itself) and assert it holds the
    same rows as the narrowed batch; return the tables so compared."""
    from dataclasses import replace

    from sharehub.publish import expectations

    compared: list[str] = []
    original = expectations.validate

    def validate(con: Any, names: Any, relation: Any, previous_rows: Any = None, baseline: Any = None,
                 changed: Any = None) -> Any:
        whole = {name: replace(c, gone=None) for name, c in (changed or {}).items()}
        for name in changed or {}:
            contract = expectations.shared_contract(name)
            rows = [sorted(con.execute(expectations.batch_sql(contract, relation, None, c)).fetchall(), key=repr)
                    for c in (changed, whole)]  # fmt: skip
            assert rows[0] == rows[1], name
            compared.append(name)
        return original(con, names, relation, previous_rows, baseline, changed)

    monkeypatch.setattr(expectations, "validate", validate)
    return compared


def test_days_changed_in_place_equal_days_built_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two warehouses live the same days: one publishes in place, the other builds every
    table whole (full validation); their shared tables, per-table hashes, versions and
    content hashes agree every day, and scoped validation batches equal whole ones."""
    compared = _batches_checked_both_ways(monkeypatch)
    inplace = _with_houses(district(8), 8)
    publish(inplace, run_id="r1", now=datetime(2026, 11, 27))
    path = tmp_path / "whole.duckdb"
    inplace.execute(f"ATTACH '{path}' AS whole")
    inplace.execute("COPY FROM DATABASE memory TO whole")
    inplace.execute("DETACH whole")
    whole = duckdb.connect(str(path))
    for day, change in enumerate((_day2, _day3, _day4), start=2):
        for con in (inplace, whole):
            change(con)
        now = datetime(2026, 11, 26 + day)
        a = publish(inplace, run_id=f"r{day}", now=now)
        b = publish(whole, run_id=f"r{day}", now=now, full_validation=True)
        assert (a.version, a.created) == (b.version, b.created) == (day, True)
        assert _tables(inplace) == _tables(whole), f"day {day}"
        assert inplace.execute("SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary) + "
                               "(SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)").fetchall() == [(0,)]
    assert {"person", "person_xref", "house", "residence", "benefits", "health_tags"} <= set(compared)
    # a day without changes is no new version either way
    assert not publish(inplace, run_id="r5").created and not publish(whole, run_id="r5", full_validation=True).created


def _failures(con: duckdb.DuckDBPyConnection, **kwargs: object) -> set[tuple[object, ...]]:
    with pytest.raises(PublishAborted) as info:
        publish(con, run_id="bad", now=datetime(2026, 11, 29), **kwargs)  # type: ignore[arg-type]
    return {(f.table, f.expectation, f.column, f.unexpected_count, tuple(sorted(map(repr, f.examples))))
            for f in info.value.details["failures"]}


def test_unchanged_rows_pointing_to_deleted_rows_fail_as_in_a_whole_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows that did not change but whose target went away are still validated: the
    same failures as validating every row of a whole build, and nothing is published."""
    compared = _batches_checked_both_ways(monkeypatch)
    con = _with_houses(district(8), 8)
    publish(con, run_id="r1", now=datetime(2026, 11, 27))
    before = snapshot(con)
    # record 5 leaves the district but its dwelling still names it as owner (house row
    # unchanged); record 6 moves to P1 but residence still says P6 (residence unchanged)
    for table, column in (("staging.person_records", "record_id"), ("linkage.person_features", "unique_id"),
                          ("linkage.person_ids", "record_id")):
        con.execute(f"DELETE FROM {table} WHERE {column} = 'ps_population:5'")
    con.execute("UPDATE linkage.person_ids SET person_id = 'P1' WHERE record_id = 'ps_population:6'")
    edited(con, "ps_population:5", "ps_population:6")
    path = tmp_path / "whole.duckdb"
    con.execute(f"ATTACH '{path}' AS whole")
    con.execute("COPY FROM DATABASE memory TO whole")
    con.execute("DETACH whole")
    in_place = _failures(con)
    assert in_place == _failures(duckdb.connect(str(path)), full_validation=True)
    found = {(t, c) for t, _, c, _, _ in in_place}
    assert {("house", "owner_record_id"), ("residence", "person_id"), ("residence", "record_id, person_id")} <= found
    assert snapshot(con) == before
    assert {"house", "residence"} <= set(compared)
