"""Publish a shared table by changing it in place: only the rows of the keys that differ.

Why: a day changes a few percent of the district, yet building every candidate as a full
new table (two million ``person_xref`` rows, a million golden rows), comparing it with the
published table row by row (EXCEPT ALL) and hashing it again cost most of the publish
stage. Inside the publishing transaction the published table itself is brought to the
candidate's content instead: the rows of every key whose rows differ are deleted and the
candidate's rows for those keys inserted. Nothing is visible to other connections before
COMMIT (DuckDB's MVCC) and a failed validation rolls everything back, so subscribers still
see the previous version or the new one, never a mix — the write-audit-publish guarantee of
`sharehub.publish.tables` holds unchanged.

Why the result equals the candidate (as a multiset of rows): rows are grouped by the
contract's key (NULL-safe, so a row missing its key is a key of its own) on both sides, and
a key is rewritten unless its row count and the ``bit_xor`` of its rows' hashes agree. A
key left alone therefore has as many rows on both sides with the same combined hash; in a
published table each key has one row (it passed the key's uniqueness expectation), so the
candidate has that one row too, unless two rows' 64-bit hashes collide (the same odds as
`sharehub.publish.expectations.batch_sql` accepts). A duplicated key in the candidate
changes the count, is rewritten with both rows, and fails the uniqueness expectation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from sharehub.delta import same_key, shape
from sharehub.errors import PublishAborted
from sharehub.publish.expectations import quote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delta:
    """What changing one shared table in place did."""

    table: str
    keys: str  # temp table holding the keys whose rows were rewritten
    deleted: int
    inserted: int
    # bit_xor of the deleted and of the inserted rows' hashes: the table's content hash
    # (bit_xor over all rows) moves by exactly these two
    deleted_hash: int = 0
    inserted_hash: int = 0
    # SELECT of exactly the rows written (the new rows at the rewritten keys)
    written: str = ""
    # temp table holding the ``keep`` columns of the deleted rows: the values other
    # tables' rows may have pointed to, for validating those rows (`expectations.batch_sql`)
    old: str | None = None


def keys_table(name: str) -> str:
    """The temp table holding the changed keys of shared table ``name``."""
    return f"_delta_keys_{name}"


def old_rows_table(name: str) -> str:
    """The temp table holding the rows deleted from shared table ``name`` (``keep_old``)."""
    return f"_delta_old_{name}"


def index_table(name: str) -> str:
    """The temp table indexing published table ``name`` (`index_published`)."""
    return f"_delta_published_{name}"


# Columns of an index beside the key (names no contract column takes).
_HASH, _ROW = "__row_hash", "__row_id"


def index_published(
    con: duckdb.DuckDBPyConnection, name: str, key: tuple[str, ...], keep: tuple[str, ...] = ()
) -> int:
    """Index ``shared.<name>`` for `apply_in_place`: a temp table of every row's key (and
    ``keep`` columns), hash and rowid. Return the table's content hash (``bit_xor`` of the
    row hashes).

    Why: one pass over the table then serves the version's content check, finding the
    keys that differ, the deleted rows' hashes, the values they held and the rows to
    delete, each of which used to read (and hash) every column of the table again — about
    a second of wide reads each for the million golden rows. Build it inside the
    publishing transaction, before the table changes: the rowids hold for that transaction.
    """
    cols = ", ".join(f"t.{quote(c)}" for c in dict.fromkeys((*key, *keep)))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {index_table(name)} AS "
                f"SELECT {cols}, hash(t) AS {_HASH}, t.rowid AS {_ROW} FROM shared.{name} t")
    return int(con.execute(f"SELECT coalesce(bit_xor({_HASH}), 0) FROM {index_table(name)}").fetchall()[0][0])


def same_columns(con: duckdb.DuckDBPyConnection, a: str, b: str) -> bool:
    """Whether two relations have the same column names and types, in the same order
    (row hashes are only comparable then)."""
    return shape(con, a) == shape(con, b)


def _diff_sql(candidate: str, published: str, key: tuple[str, ...], grouped: bool) -> str:
    """SELECT of the keys whose rows differ between ``candidate`` and ``published`` (an
    index: key columns and row hashes).

    Ungrouped (the fast path): a key differs when one of its rows finds no row with the
    same key and hash on the other side. That misses only a candidate holding the same
    row twice where one was published; `apply_in_place` notices by the row count and
    compares grouped rows (count and ``bit_xor`` of hashes per key) instead.
    """
    cols = ", ".join(quote(k) for k in key)
    picked = ", ".join(f"coalesce(n.{quote(k)}, o.{quote(k)}) AS {quote(k)}" for k in key)
    if grouped:
        n = f"SELECT {cols}, count(*) AS rows, bit_xor(hash(c)) AS h FROM {candidate} c GROUP BY ALL"
        o = f"SELECT {cols}, count(*) AS rows, bit_xor({_HASH}) AS h FROM {published} p GROUP BY ALL"
        on, differ = same_key(key, "n", "o"), "n.h IS DISTINCT FROM o.h OR n.rows IS DISTINCT FROM o.rows"
    else:
        n = f"SELECT {cols}, hash(c) AS h FROM {candidate} c"
        o = f"SELECT {cols}, {_HASH} AS h FROM {published} p"
        on, differ = same_key(key, "n", "o") + " AND n.h = o.h", "n.h IS NULL OR o.h IS NULL"
    return f"SELECT DISTINCT {picked} FROM ({n}) n FULL JOIN ({o}) o ON {on} WHERE {differ}"


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def _at_keys(con: duckdb.DuckDBPyConnection, relation: str, keys: str, key: tuple[str, ...], hashed: str) -> tuple[int, int]:
    """(rows, ``bit_xor`` of ``hashed``) of ``relation`` at the keys in ``keys``."""
    rows, combined = con.execute(
        f"SELECT count(*), coalesce(bit_xor({hashed}), 0) FROM {relation} t "
        f"WHERE EXISTS (SELECT 1 FROM {keys} d WHERE {same_key(key, 'd', 't')})"
    ).fetchall()[0]
    return int(rows), int(combined)


def apply_in_place(
    con: duckdb.DuckDBPyConnection,
    name: str,
    candidate: str,
    key: tuple[str, ...],
    scope: str | None = None,
    *,
    keep: tuple[str, ...] = (),
    indexed: bool = False,
) -> Delta:
    """Make ``shared.<name>`` hold ``candidate``'s rows; touch only the keys that differ.

    ``candidate`` holds the new rows of the whole table, or, with ``scope`` (a SELECT of
    key values), only of the keys in scope: rows outside it are known to be unchanged
    (golden rows of persons whose inputs did not change). Call inside the publishing
    transaction, after checking that both have the same columns (`same_columns`).
    ``indexed``: `index_published` already indexed the table in this transaction, with
    ``keep``: columns of the deleted rows to keep in a temp table (`Delta.old`).
    """
    if not key:
        raise ValueError(f"shared.{name} has no key in its contract; it cannot change in place")
    table, keys, index = f"shared.{name}", keys_table(name), index_table(name)
    if not indexed:
        index_published(con, name, key, keep)
    published = (
        f"(SELECT * FROM {index} t WHERE EXISTS (SELECT 1 FROM ({scope}) s WHERE "
        f"{same_key(key, 's', 't')}))" if scope else index
    )  # fmt: skip
    before, wanted = _count(con, published), _count(con, candidate)
    for grouped in (False, True):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {keys} AS {_diff_sql(candidate, published, key, grouped)}")
        # the changed keys lie in scope, so the table's rows there are the published ones
        going, gone_hash = _at_keys(con, index, keys, key, _HASH)
        coming, new_hash = _at_keys(con, candidate, keys, key, "hash(t)")
        # Unless the candidate holds a published row twice, the rewritten keys account
        # for every difference in length; otherwise compare grouped rows.
        if before - going + coming == wanted:
            break
    at_keys = f"EXISTS (SELECT 1 FROM {keys} d WHERE {same_key(key, 'd', 't')})"
    old = None
    if keep:
        old = old_rows_table(name)
        cols = ", ".join(quote(c) for c in keep)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {old} AS SELECT {cols} FROM {index} t WHERE {at_keys}")
    # the published rows at the changed keys, by rowid (the index knows them)
    deleted = int(con.execute(
        f"DELETE FROM {table} WHERE rowid IN (SELECT {_ROW} FROM {index} t WHERE {at_keys})"
    ).fetchall()[0][0])  # fmt: skip
    con.execute(f"DROP TABLE {index}")  # rowids are not to be trusted past the delete
    written = f"SELECT t.* FROM {candidate} t WHERE {at_keys}"
    inserted = int(con.execute(f"INSERT INTO {table} {written}").fetchall()[0][0])
    if (deleted, inserted) != (going, coming):
        raise PublishAborted(
            f"shared.{name} changed in place by {deleted} rows deleted and {inserted} inserted, "
            f"where its keys that differ hold {going} published and {coming} new rows; the "
            "previous version stays published (a defect of the hub: please report it)",
            table=name,
        )
    log.info("shared.%s changed in place: %d rows deleted, %d inserted", name, deleted, inserted)
    return Delta(table, keys, deleted, inserted, gone_hash, new_hash, written, old)


def changed_rows(delta: Delta, key: tuple[str, ...], alias: str = "t") -> str:
    """Condition on ``alias`` holding for the rows ``delta`` wrote (`expectations.batch_sql`)."""
    return f"EXISTS (SELECT 1 FROM {delta.keys} d WHERE {same_key(key, 'd', alias)})"
