"""The hub warehouse: one DuckDB file, one schema per layer.

DuckDB allows one writing process at a time, so writers open the file here and pass the
connection down; readers open it read-only. Nothing keeps a global connection.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb

from sharehub.errors import NotFound
from sharehub.settings import Settings

log = logging.getLogger(__name__)

LAYERS = ("raw", "quarantine", "staging", "linkage", "shared", "audit")


def connect(settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (creating it and its schemas when writing)."""
    path = Path(settings.warehouse)
    if read_only:
        if not path.exists():
            raise NotFound(
                f"warehouse {path} does not exist; run `sharehub run` first "
                "or point --warehouse / SHAREHUB_WAREHOUSE at an existing file"
            )
        con = duckdb.connect(str(path), read_only=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        for layer in LAYERS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    if settings.threads:
        con.execute(f"SET threads = {int(settings.threads)}")
    if settings.memory_limit:
        con.execute("SET memory_limit = ?", [settings.memory_limit])
    return con


def one(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    """The single row of a query, fully consumed.

    DuckDB 2 keeps a result open until it is fetched to the end, and refuses
    ``register`` and some other calls on that connection meanwhile; ``fetchone`` does
    not finish a result, so library code reads single rows through here.
    """
    rows = con.execute(sql, params or []).fetchall()
    if len(rows) != 1:
        raise ValueError(f"expected exactly one row from {sql!r}, got {len(rows)}")
    return tuple(rows[0])


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """True if ``schema.table`` exists as a table or view."""
    schema, _, name = qualified.partition(".")
    (count,) = one(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    )
    return bool(count)


def add_to_set(con: duckdb.DuckDBPyConnection, table: str, column: str, ids_sql: str) -> None:
    """Add the ids ``ids_sql`` selects to the one-column set ``table``, if it exists.

    Why not create it when absent: such a set (records re-clustered, records pending)
    absent means nobody knows what changed since it was last emptied; a table holding
    only this run's ids would claim too little.
    """
    if table_exists(con, table):
        con.execute(
            f"INSERT INTO {table} SELECT DISTINCT t.id FROM ({ids_sql}) t(id) "
            f"ANTI JOIN {table} s ON s.{column} = t.id"
        )


def require_table(con: duckdb.DuckDBPyConnection, qualified: str) -> None:
    """Raise a clear error naming the table when it does not exist."""
    if "." not in qualified:
        raise NotFound(f"table name {qualified!r} must be schema-qualified, e.g. shared.person")
    if not table_exists(con, qualified):
        raise NotFound(f"table {qualified} does not exist in the warehouse")
