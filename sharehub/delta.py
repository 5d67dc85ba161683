"""Bring a derived table up to date with its defining query by rewriting only what changed.

Why: a day's deliveries touch a few percent of the records, yet tables derived from them
(``staging.person_records``, ``linkage.houses``, ``linkage.house_matches``,
``linkage.residence``) used to be rebuilt whole every day. Writing two million rows —
sorting, compressing, building indexes — costs seconds; finding the rows that differ costs
one pass over both sides hashing each row and one aggregation by key. The table ends up
holding exactly the rows the query gives, as a multiset, so every reader that does not
depend on physical row order sees what a rebuild would give. Only the order differs:
changed rows are appended.

Even that pass reads every row of both sides, so it still costs in proportion to the
district. Given a *scope* — the keys whose rows can have changed — :func:`replace_scope`
computes the query's rows for those keys only and puts them in place of the table's,
reading nothing else of the table than its key columns. The scope is the caller's
promise that every other key's rows are already right, and what it rests on is the
caller's to say: each caller derives it from what changed upstream (`sharehub.marks`:
the staging batches and id-change runs a table has not yet seen; the records the house
index matched again, `linkage.houses.RESIDENCE_PENDING`) and falls back to the full
comparison of :func:`apply_delta` — which stays the reference, and what the tests
compare against every day — whenever that cannot be said: a first build, a table of
another shape, marks missing or contradicted.

In :func:`apply_delta` a changed row goes unseen only if its 64-bit ``hash`` equals that
of the row it replaces (2^-64 per changed row), the bargain
:func:`linkage.changes.fingerprint_sql` already makes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from sharehub.warehouse import one, table_exists

log = logging.getLogger(__name__)

_STALE = "_delta_stale_keys"
_NEW = "_delta_new_rows"


@dataclass(frozen=True)
class Delta:
    """What :func:`apply_delta` rewrote: stale rows deleted, fresh rows inserted."""

    keys: int  # keys whose rows differed (appeared, vanished or changed)
    deleted: int
    inserted: int


def written(delta: Delta | None) -> str:
    """How a table was written, for the log: ``rebuilt`` (no delta) or what changed."""
    if delta is None:
        return "rebuilt"
    return f"{delta.keys} rewritten ({delta.deleted} rows deleted, {delta.inserted} inserted)"


def shape(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(column, type) of a table or of a SELECT, in order."""
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def same_shape(con: duckdb.DuckDBPyConnection, table: str, query: str) -> bool:
    """Whether ``table`` exists with exactly the columns (names, types, order) of ``query``.

    Why: a row hash is only comparable between rows of one shape, and a table written by
    an older version of the code must be rebuilt, not patched.
    """
    return table_exists(con, table) and shape(con, table) == shape(con, f"({query})")


def same_key(key: Sequence[str], left: str, right: str) -> str:
    """SQL: rows ``left`` and ``right`` have the same ``key`` (quoted column names).

    IS NOT DISTINCT FROM: a NULL key is a key like any other, as in a rebuild."""
    return " AND ".join(
        f'{left}."{k}" IS NOT DISTINCT FROM {right}."{k}"'
        for k in (c.replace('"', '""') for c in key)
    )


def apply_delta(
    con: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    key: Sequence[str],
    *,
    order: str,
    materialize: bool = False,
) -> Delta:
    """Make ``table`` hold the rows of ``query``, rewriting only keys whose rows differ.

    A key is stale when the multiset of its row hashes in the table differs from that in
    the query — a row appeared, changed or vanished, or a duplicate came or went — told
    by the signed sums of row hashes and of rows per key, in one aggregation over both
    sides. All rows of a stale key are deleted and the query's rows for it inserted,
    sorted by ``order``. Deleting first lets a key under a PRIMARY KEY or UNIQUE
    constraint be rewritten within one transaction.

    ``query`` must give the columns of ``table`` in order (see :func:`same_shape`). It is
    evaluated twice (hashed, then for the stale keys' rows) unless ``materialize``, which
    keeps its rows in a temporary table instead: cheaper when the query joins much. The
    caller owns the transaction, so readers see the old table or the new one.
    """
    keys = ", ".join(key)
    source = f"({query})"
    if materialize:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {query}")
        source = _NEW
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_STALE} AS
            SELECT {keys} FROM (
                SELECT {keys}, hash(_q)::HUGEINT AS row_hash, 1 AS side FROM {source} _q
                UNION ALL
                SELECT {keys}, -hash(_t)::HUGEINT, -1 FROM {table} _t
            )
            GROUP BY {keys}
            HAVING sum(row_hash) <> 0 OR sum(side) <> 0"""
    )
    return _rewrite(con, table, source, key, order)


def replace_scope(
    con: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    key: Sequence[str],
    scope: str,
    *,
    order: str,
    scope_key: Sequence[str] | None = None,
) -> Delta:
    """Make ``table`` hold the rows of ``query`` for the keys of ``scope``: delete the
    table's rows of those keys, insert the query's, sorted by ``order``.

    ``scope`` is a table or parenthesised SELECT of ``scope_key`` columns (by default
    ``key``; it must be some of the key columns, so that a key lies wholly inside or
    outside). The caller promises that outside the scope the table already holds the
    query's rows; ``query`` may then be cut to the scope (it is cut to it either way),
    which is what makes this cost in proportion to the scope. Why nothing is compared:
    a scope is (nearly) what changed, and reading the table's rows to compare them would
    scan every column of the whole table — the cost a scope is there to avoid; deleting
    scans the key columns only. Every key of the scope is counted as rewritten.
    """
    columns = scope_key or key
    on = same_key(columns, "_x", "_s")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_NEW} AS
            SELECT _x.* FROM ({query}) _x SEMI JOIN {scope} _s ON {on}"""
    )
    names = ", ".join(f'"{c}"' for c in (c.replace('"', '""') for c in columns))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_STALE} AS SELECT DISTINCT {names} FROM {scope} _s")
    keys = int(one(con, f"SELECT count(*) FROM {_STALE}")[0])
    deleted = inserted = 0
    if keys:
        deleted = int(one(con, f"DELETE FROM {table} _x USING {_STALE} _s WHERE {on}")[0])
        inserted = int(one(con, f"INSERT INTO {table} SELECT * FROM {_NEW} ORDER BY {order}")[0])
    # As in _rewrite: after a failed statement only a rollback, which drops these too.
    con.execute(f"DROP TABLE {_STALE}")
    con.execute(f"DROP TABLE {_NEW}")
    return Delta(keys, deleted, inserted)


def _rewrite(
    con: duckdb.DuckDBPyConnection, table: str, source: str, key: Sequence[str], order: str
) -> Delta:
    """Delete ``table``'s rows of the keys in ``_delta_stale_keys``, insert ``source``'s."""
    stale = int(one(con, f"SELECT count(*) FROM {_STALE}")[0])
    deleted = inserted = 0
    if stale:
        deleted = int(one(
            con, f"DELETE FROM {table} _t USING {_STALE} _s WHERE {same_key(key, '_t', '_s')}"
        )[0])  # fmt: skip
        inserted = int(one(
            con,
            f"""INSERT INTO {table}
                SELECT _q.* FROM {source} _q SEMI JOIN {_STALE} _s ON {same_key(key, '_q', '_s')}
                ORDER BY {order}""",
        )[0])  # fmt: skip
    # Not in a finally: after a failed statement the transaction accepts only a rollback,
    # which drops these temporary tables with everything else.
    con.execute(f"DROP TABLE {_STALE}")
    con.execute(f"DROP TABLE IF EXISTS {_NEW}")
    return Delta(stale, deleted, inserted)
