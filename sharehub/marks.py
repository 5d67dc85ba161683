"""What a derived table was last brought up to date with: the rows per part of each source.

Why: the sources of the derived tables only ever grow. ``staging.<feed>`` keeps every
version of every record, each row naming the delivery that wrote it (``batch_id``), and
a record's current version changes only by a new row; ``linkage.person_id_changes``
appends each run's id changes under its ``run_id``. So the source rows a derived table
has not yet seen are those of the parts (batches, runs) that are new or grew since it
was last written, and counting rows per part — one narrow scan per source — finds them.
The counts are stored beside the table (``<table>_marks``), in the transaction that
writes it, together with the table's own row count.

Marks say nothing when they cannot be trusted, and the caller then compares in full:
no marks (a first build, a warehouse from before them), a part that lost rows or
vanished (a source rewritten rather than appended to), or a table whose row count is
not the one stored (written by something else since). A source changed in place without
a change in its row counts goes unseen: nothing in the hub does that (staging closes a
version by an UPDATE of ``is_current`` only together with the INSERT of the next one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import duckdb

from sharehub.warehouse import one

log = logging.getLogger(__name__)

NOW = "_marks_now"
GROWN = "_marks_grown"


def marks_table(table: str) -> str:
    """Where the marks of ``table`` are kept: ``<schema>.<name>_marks``."""
    return f"{table}_marks"


def count_parts(con: duckdb.DuckDBPyConnection, sources: Mapping[str, str]) -> None:
    """Temp table ``_marks_now`` (source, part, rows): rows per part of each source now.

    ``sources`` maps a table to the column naming the part a row belongs to. A source
    that does not exist has no rows, hence no parts; one without that column (written by
    hand) cannot be marked: its one row has NULL rows, and no marks are trusted for it.
    """
    columns = _columns(con, list(sources))
    selects = [
        f"SELECT '{table}' AS source, CAST({column} AS VARCHAR) AS part, count(*) AS rows "
        f"FROM {table} GROUP BY ALL"
        if column in columns[table]
        else f"SELECT '{table}', NULL, NULL::BIGINT"
        for table, column in sources.items()
        if table in columns
    ]
    body = " UNION ALL ".join(selects) or (
        "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS part, NULL::BIGINT AS rows WHERE false"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {NOW} AS {body}")


def grown_parts(
    con: duckdb.DuckDBPyConnection, table: str, sources: Sequence[str], own: Sequence[str]
) -> str | None:
    """Temp table ``_marks_grown`` (source, part) of the parts of ``sources`` that are new
    or grew since ``table``'s marks were written (needs :func:`count_parts` first); its
    name, or None when the marks cannot say (see the module's docstring).

    ``own``: the tables written with the marks, whose row counts must be those stored.
    """
    marks = marks_table(table)
    found = _columns(con, [marks, *own])
    if marks not in found or _unmarked(con, sources):
        return None
    names = ", ".join(f"'{s}'" for s in sources)
    shrunk = int(one(con, f"""
        SELECT count(*) FROM {marks} m
        LEFT JOIN {NOW} n ON n.source = m.source AND n.part IS NOT DISTINCT FROM m.part
        WHERE m.source IN ({names}) AND (n.rows IS NULL OR n.rows < m.rows)""")[0])  # fmt: skip
    if shrunk:
        log.info("%s: %d source parts lost rows since it was written; comparing in full",
                 table, shrunk)  # fmt: skip
        return None
    for name in own:
        if name not in found or not _own_rows_stored(con, marks, name):
            log.info("%s was written by something else since its marks; comparing in full", name)
            return None
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {GROWN} AS
            SELECT n.source, n.part FROM {NOW} n
            LEFT JOIN {marks} m ON m.source = n.source AND m.part IS NOT DISTINCT FROM n.part
            WHERE n.source IN ({names}) AND (m.rows IS NULL OR n.rows > m.rows)"""
    )
    return GROWN


def in_step(
    con: duckdb.DuckDBPyConnection, table: str, sources: Sequence[str], own: Sequence[str]
) -> bool:
    """Whether ``table`` has seen every row of ``sources`` now counted (``_marks_now``):
    its marks hold exactly these counts and its own row counts are those stored.

    Why: a table built from another derived table can trust that one's rows only while
    it is up to date with the sources both are marked against.
    """
    marks = marks_table(table)
    found = _columns(con, [marks, *own])
    if marks not in found or _unmarked(con, sources):
        return False
    names = ", ".join(f"'{s}'" for s in sources)
    differ = int(one(con, f"""
        SELECT count(*) FROM (SELECT * FROM {NOW} WHERE source IN ({names})) n
        FULL JOIN (SELECT * FROM {marks} WHERE source IN ({names})) m
          ON m.source = n.source AND m.part IS NOT DISTINCT FROM n.part
        WHERE n.rows IS DISTINCT FROM m.rows""")[0])  # fmt: skip
    return not differ and all(name in found and _own_rows_stored(con, marks, name) for name in own)


def in_grown_part(source: str, column: str) -> str:
    """SQL condition: ``column`` (of a row of ``source``) names a grown part of it."""
    return (
        f"EXISTS (SELECT 1 FROM {GROWN} _g WHERE _g.source = '{source}' "
        f"AND _g.part IS NOT DISTINCT FROM CAST({column} AS VARCHAR))"
    )


def save_marks(con: duckdb.DuckDBPyConnection, table: str, own: Sequence[str]) -> None:
    """Store ``_marks_now`` and the row counts of ``own`` as ``table``'s marks (call in
    the transaction that wrote them)."""
    marks = marks_table(table)
    con.execute(f"CREATE OR REPLACE TABLE {marks} AS SELECT source, part, rows FROM {NOW}")
    for name in own:
        con.execute(f"INSERT INTO {marks} VALUES (?, NULL, ?)", [name, _rows(con, name)])


def forget_marks(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop ``table``'s marks: the next build compares in full."""
    con.execute(f"DROP TABLE IF EXISTS {marks_table(table)}")


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables of this module."""
    for name in (NOW, GROWN):
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _unmarked(con: duckdb.DuckDBPyConnection, sources: Sequence[str]) -> bool:
    names = ", ".join(f"'{s}'" for s in sources)
    return bool(
        one(con, f"SELECT count(*) FROM {NOW} WHERE source IN ({names}) AND rows IS NULL")[0]
    )


def existing(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> set[str]:
    """Which of ``tables`` (schema-qualified) exist, in one query."""
    return set(_columns(con, tables))


def _columns(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> dict[str, set[str]]:
    """The columns of each of ``tables`` that exists (base tables and views), in one query."""
    rows = con.execute(
        "SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name || '.' || table_name IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [list(tables)],
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), set()).add(str(column))
    return found


def _own_rows_stored(con: duckdb.DuckDBPyConnection, marks: str, table: str) -> bool:
    stored = con.execute(
        f"SELECT rows FROM {marks} WHERE source = ? AND part IS NULL", [table]
    ).fetchall()
    return bool(stored) and stored == [(_rows(con, table),)]


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(one(con, f"SELECT count(*) FROM {table}")[0])
