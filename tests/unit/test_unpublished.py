"""``linkage.unpublished``: each writer notes the records whose published rows may change.

Publication recomputes only those records' ``person_xref`` rows and their persons' golden
rows (`sharehub.publish.tables`), so a writer that forgets a record leaves a stale shared
row. These tests drive each writer on inline rows; tests/integration/test_lifecycle.py
checks the whole day-2 flow against the full SELECTs.
"""

from __future__ import annotations

import duckdb
import pytest

from linkage.unpublished import (
    UNPUBLISHED,
    UNPUBLISHED_LINKS,
    forget_unpublished,
    note_unpublished,
    reset_unpublished,
    unpublished,
)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for schema in ("linkage", "staging"):
        con.execute(f"CREATE SCHEMA {schema}")
    return con


def _noted(con: duckdb.DuckDBPyConnection, table: str = UNPUBLISHED) -> set[str]:
    return {str(r[0]) for r in con.execute(f"SELECT record_id FROM {table}").fetchall()}


def test_the_sets_are_only_added_to_while_they_exist(con: duckdb.DuckDBPyConnection) -> None:
    note_unpublished(con, "SELECT 'a'")
    assert not unpublished(con)  # unknown stays unknown until a publication resets it
    reset_unpublished(con)
    note_unpublished(con, "SELECT 'a' UNION ALL SELECT 'a'")
    note_unpublished(con, "SELECT 'b'", links_only=True)
    note_unpublished(con, "SELECT 'a'")
    assert unpublished(con) and _noted(con) == {"a"} and _noted(con, UNPUBLISHED_LINKS) == {"b"}
    assert con.execute(f"SELECT count(*) FROM {UNPUBLISHED}").fetchall() == [(1,)]
    forget_unpublished(con)
    assert not unpublished(con)


def _staging(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str | None, str]]) -> None:
    con.execute("CREATE OR REPLACE TABLE staging.ps_population (person_no VARCHAR, record_status VARCHAR, "
                "valid_to TIMESTAMP, batch_id VARCHAR, is_current BOOLEAN)")  # fmt: skip
    con.executemany("INSERT INTO staging.ps_population VALUES (?, ?, ?, ?, true)", rows)


def test_end_dates_note_the_records_whose_end_changed(con: duckdb.DuckDBPyConnection) -> None:
    from linkage.index import build_record_end_dates

    _staging(con, [("1", "deregistered", "2026-11-01", "b1"), ("2", "deregistered", "2026-11-01", "b1"),
                   ("3", "active", None, "b1")])  # fmt: skip
    build_record_end_dates(con)
    reset_unpublished(con)
    # 1 ends on another day (same status and batch), 2 is unchanged, 3 ends, 4 is new and active
    _staging(con, [("1", "deregistered", "2026-11-02", "b1"), ("2", "deregistered", "2026-11-01", "b1"),
                   ("3", "deceased", "2026-11-02", "b2"), ("4", "active", None, "b2")])  # fmt: skip
    assert build_record_end_dates(con) == 3
    assert _noted(con, UNPUBLISHED_LINKS) == {"ps_population:1", "ps_population:3"} and not _noted(con)


def _edges(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE OR REPLACE TABLE linkage.predictions AS SELECT * FROM (VALUES
        ('a', 'b', 5.0, 0.97), ('b', 'c', 6.0, 0.98), ('d', 'e', 7.0, 0.99))
        t(unique_id_l, unique_id_r, match_weight, match_probability)""")
    con.execute("""CREATE OR REPLACE TABLE linkage.clusters AS SELECT * FROM (VALUES
        ('a', 'a'), ('b', 'a'), ('c', 'a'), ('d', 'd'), ('e', 'd')) t(unique_id, cluster_id)""")


def test_cluster_edges_note_only_records_whose_strongest_link_moved(con: duckdb.DuckDBPyConnection) -> None:
    from linkage.constraints import Constraints, decision_edges_sql
    from linkage.edges import write_cluster_edges
    from linkage.reclustered import reset_reclustered

    decisions = decision_edges_sql(Constraints())
    _edges(con)
    write_cluster_edges(con, decisions, 0.9)
    reset_unpublished(con)
    reset_reclustered(con)
    # a and b are re-clustered: the a-b link weakens and a new a-c link appears
    con.execute("UPDATE linkage.predictions SET match_probability = 0.95 WHERE unique_id_l = 'a'")
    con.execute("INSERT INTO linkage.predictions VALUES ('a', 'c', 4.0, 0.96)")
    con.execute("INSERT INTO linkage.reclustered VALUES ('a'), ('b'), ('c')")
    write_cluster_edges(con, decisions, 0.9)
    # a: 0.97 → 0.96; b keeps 0.98 (b-c), c keeps 0.98; d and e untouched
    assert _noted(con, UNPUBLISHED_LINKS) == {"a"} and not _noted(con)


def test_a_full_rebuild_of_the_edges_forgets_what_changed(con: duckdb.DuckDBPyConnection) -> None:
    from linkage.constraints import Constraints, decision_edges_sql
    from linkage.edges import write_cluster_edges

    _edges(con)
    reset_unpublished(con)
    write_cluster_edges(con, decision_edges_sql(Constraints()), 0.9)  # no linkage.reclustered
    assert not unpublished(con)


def test_reweighed_edges_note_records_whose_published_figure_may_move(con: duckdb.DuckDBPyConnection) -> None:
    from linkage.edges import reweigh_edges

    con.execute("""CREATE TABLE linkage.cluster_edges AS SELECT * FROM (VALUES
        ('a', 'b', 5.0, 0.97001::DOUBLE, 'model'), ('c', 'd', 6.0, 0.98001, 'model'), ('e', 'f', 6.0, 0.96, 'model'))
        t(unique_id_l, unique_id_r, match_weight, match_probability, evidence)""")
    con.execute("""CREATE TABLE _reweighted AS SELECT * FROM (VALUES
        ('a', 'b', 5.1, 0.97003::DOUBLE, 0.97001::DOUBLE),  -- same to four places: published figure stays
        ('c', 'd', 6.2, 0.98021, 0.98001),   -- moves
        ('e', 'f', 1.0, 0.50, 0.96))         -- falls below the threshold: re-clustered, not here
        t(unique_id_l, unique_id_r, match_weight, match_probability, old_match_probability)""")
    reset_unpublished(con)
    reweigh_edges(con, "_reweighted", 0.9)
    assert _noted(con, UNPUBLISHED_LINKS) == {"c", "d"} and not _noted(con)
    assert con.execute("SELECT match_probability FROM linkage.cluster_edges WHERE unique_id_l = 'a'"
                       ).fetchall() == [(0.97003,)]
