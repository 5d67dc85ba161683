"""``linkage.unpublished``: the records whose published rows may differ from the last version.

Why: ``shared.person_xref`` (one row per record) and ``shared.person`` (one golden row per
person) are functions of a few per-record tables — ``staging.person_records``,
``linkage.person_features``, ``linkage.person_ids``, ``linkage.record_end_dates`` and each
record's strongest link in ``linkage.cluster_edges``. A day changes a few percent of the
records, yet computing every record's row (a join of three two-million-row tables) only to
find the few that differ was most of the publish stage. Each stage that rewrites rows of
those tables notes here the records it rewrote, in the same transaction; publication then
recomputes only those records' rows and their persons' golden rows
(`sharehub.publish.tables`), and starts the set afresh when a version is published.

Absent means "unknown, take everything": a stage that rebuilds one of those tables whole,
or cannot say what it rewrote, drops it (`forget_unpublished`), and the next publication
computes every row, then starts it empty (`reset_unpublished`). Writers add to it only
when it exists (`sharehub.warehouse.add_to_set`), so a set that was dropped stays dropped
until a publication has seen everything.

What the readers rely on: a record outside both sets has, in every one of those tables, the
rows it had when the last version was published, and a record only in
`UNPUBLISHED_LINKS` has them but in ``linkage.cluster_edges`` and
``linkage.record_end_dates`` — so a record's ``person_xref`` row outside both sets, and
the golden row of a person none of whose records (then or now) is in `UNPUBLISHED`, are
those of the published version.
"""

from __future__ import annotations

import duckdb

from sharehub.warehouse import add_to_set, table_exists

UNPUBLISHED = "linkage.unpublished"
UNPUBLISHED_LINKS = "linkage.unpublished_links"
"""Records whose strongest link (``linkage.cluster_edges``) or end date may have changed:
only their ``person_xref`` row can differ, not a golden row, so they are kept apart — a
day re-weighs the links of a few hundred thousand records without changing any person."""


def note_unpublished(con: duckdb.DuckDBPyConnection, records_sql: str, *, links_only: bool = False) -> None:
    """Add the record ids ``records_sql`` selects to the set, if kept; ``links_only``: only
    their strongest link or end date changed (`UNPUBLISHED_LINKS`)."""
    add_to_set(con, UNPUBLISHED_LINKS if links_only else UNPUBLISHED, "record_id", records_sql)


def forget_unpublished(con: duckdb.DuckDBPyConnection) -> None:
    """Drop both sets: any record's published row may have changed."""
    for table in (UNPUBLISHED, UNPUBLISHED_LINKS):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def reset_unpublished(con: duckdb.DuckDBPyConnection) -> None:
    """Start both sets empty: the published tables match their sources (call in the
    transaction that publishes a version)."""
    for table in (UNPUBLISHED, UNPUBLISHED_LINKS):
        con.execute(f"CREATE OR REPLACE TABLE {table} (record_id VARCHAR)")


def unpublished(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether both sets are kept, i.e. what changed since the last version is known."""
    return table_exists(con, UNPUBLISHED) and table_exists(con, UNPUBLISHED_LINKS)
