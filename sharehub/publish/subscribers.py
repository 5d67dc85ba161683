"""What each subscriber gets, as pure functions of the shared-table contracts.

Why apart from the PostgreSQL I/O (``postgres.py``): the column plans, the view definitions
and the export queries decide what leaves the hub (invariant 5), so they are small pure
functions that unit tests read without a server.

- A table's PostgreSQL copy holds only the columns some department is granted (``*_source``
  columns and ``feeds`` stay in the hub) plus the columns row filters need.
- A token column (contract customProperty ``token: hmac-sha256``) is stored raw only if a
  department is granted it raw, and as ``<column>__token`` if any department reads it as a
  token. A view exposes the token under the column's own name.
- One view per department and granted table: exactly the granted columns, only the rows
  of its row filter, ``security_barrier`` so a filtered-out row cannot leak through a
  function in a subscriber's WHERE clause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from sharehub.publish.contract import ROLE_PREFIX, Grant, SharedContract

TOKEN_SUFFIX = "__token"
SUB_PREFIX = "sub_"

_PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "UBIGINT": "numeric(20,0)",
    "HUGEINT": "numeric(39,0)",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True)
class StoredColumn:
    """One column of a table's PostgreSQL copy and where its values come from."""

    name: str
    source: str
    duckdb_type: str
    token: bool

    @property
    def pg_type(self) -> str:
        return pg_type(self.duckdb_type)


def pg_type(duckdb_type: str) -> str:
    """PostgreSQL type for a contract's DuckDB physicalType (``VARCHAR[]`` → ``text[]``)."""
    if duckdb_type.endswith("[]"):
        return pg_type(duckdb_type[:-2]) + "[]"
    match = _DECIMAL.match(duckdb_type)
    if match:
        return f"numeric({match.group(1)},{match.group(2)})"
    if duckdb_type not in _PG_TYPES:
        raise ValueError(f"no PostgreSQL type for DuckDB type {duckdb_type!r}; add it to _PG_TYPES")
    return _PG_TYPES[duckdb_type]


def role_name(department: str, prefix: str = ROLE_PREFIX) -> str:
    return f"{prefix}{department}"


def view_schema(department: str) -> str:
    return f"{SUB_PREFIX}{department}"


def needs_token(contract: SharedContract, column: str) -> bool:
    return any(column in g.columns and column not in g.raw_columns for g in contract.grants)


def needs_raw(contract: SharedContract, column: str) -> bool:
    return any(column in g.raw_columns for g in contract.grants)


def stored_columns(contract: SharedContract) -> list[StoredColumn]:
    """The columns of the table's PostgreSQL copy, in contract order."""
    wanted = {c for g in contract.grants for c in g.columns}
    wanted |= {g.rows.column for g in contract.grants if g.rows}
    found = []
    for col in contract.columns:
        if col.name not in wanted:
            continue
        if not col.token or needs_raw(contract, col.name):
            found.append(StoredColumn(col.name, col.name, col.duckdb_type, False))
        if col.token and needs_token(contract, col.name):
            found.append(StoredColumn(col.name + TOKEN_SUFFIX, col.name, "VARCHAR", True))
    return found


def tokens_needed(contracts: list[SharedContract]) -> bool:
    """Whether any department reads any ID column as a token (then a key is required)."""
    return any(needs_token(c, col) for c in contracts for col in c.token_columns)


def view_query(contract: SharedContract, grant: Grant, schema: str) -> sql.Composed:
    """SELECT of one department's view on one table of version schema ``schema``."""
    items: list[sql.Composable] = []
    for column in grant.columns:
        if contract.column(column).token and column not in grant.raw_columns:
            items.append(sql.SQL("{} AS {}").format(sql.Identifier(column + TOKEN_SUFFIX), sql.Identifier(column)))
        else:
            items.append(sql.Identifier(column))
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), sql.Identifier(schema, contract.name))
    if grant.rows:
        values = sql.SQL(", ").join(sql.Literal(v) for v in grant.rows.values)
        query += sql.SQL(" WHERE {} IN ({})").format(sql.Identifier(grant.rows.column), values)
    return query


def _duck(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _array_literal(expr: str) -> str:
    """DuckDB expression rendering a list as a PostgreSQL array literal (``{"a","b"}``)."""
    element = ("CASE WHEN e IS NULL THEN 'NULL' ELSE '\"' || replace(replace(CAST(e AS VARCHAR), "
               "'\\', '\\\\'), '\"', '\\\"') || '\"' END")
    return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE "
            f"'{{' || array_to_string(list_transform({expr}, lambda e: {element}), ',') || '}}' END")


def export_query(contract: SharedContract, columns: list[StoredColumn], source: str, tokens: str) -> str:
    """DuckDB SELECT producing the PostgreSQL copy's rows, tokens joined from ``tokens``.

    ``tokens`` is a relation ``(raw VARCHAR, token VARCHAR)`` holding the token of every
    raw value of every token column (the tokens are computed in Python: DuckDB has no HMAC).
    """
    items, joins = [], []
    for i, col in enumerate(columns):
        if col.token:
            joins.append(f"LEFT JOIN {tokens} k{i} ON k{i}.raw = t.{_duck(col.source)}")
            items.append(f"k{i}.token")
        elif col.duckdb_type.endswith("[]"):
            items.append(_array_literal(f"t.{_duck(col.source)}"))
        else:
            items.append(f"t.{_duck(col.source)}")
    return f"SELECT {', '.join(items)} FROM {source} t {' '.join(joins)}"
