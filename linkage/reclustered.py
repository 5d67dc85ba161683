"""``linkage.reclustered``: the records whose cluster changed since ids were last assigned.

Why: after a daily increment only a few percent of the clusters changed, and the steps
after clustering — person ids (`linkage.index`), the review queue (`linkage.review`), the
links inside each cluster (`linkage.edges`) — need only weigh those. The incremental
linkage notes what it re-clustered; those steps read it; identify starts it afresh.
"""

from __future__ import annotations

import duckdb

from sharehub.warehouse import add_to_set, table_exists

RECLUSTERED = "linkage.reclustered"
"""Records whose cluster a linkage may have changed since person ids were last assigned.

Absent means "unknown, take everything": a full linkage drops it (`forget_reclustered`),
the end of an identify stage starts it empty (`reset_reclustered`), and each incremental
linkage in between adds what it re-clustered (`note_reclustered`) — so two linkages with
no assignment between them (an identify stage that failed) are both covered.

What its readers rely on, from `linkage.incremental.link_incremental`: (1) a record
outside it kept its cluster row and its features (a change to any model column makes a
record a seed), and a cluster — of yesterday or today — lies wholly inside or outside it
(`_scope` says why); (2) a link at or above the threshold touching it, old or new, has
both records in it, and so has every reviewer's forced link: it is closed over those
links, and is made at the threshold in use (another threshold means a full linkage).
"""


def note_reclustered(con: duckdb.DuckDBPyConnection, records_sql: str) -> None:
    """Add the records of ``records_sql`` (unique_id) to ``linkage.reclustered``, if kept
    (absent: everything may have changed, `sharehub.warehouse.add_to_set`)."""
    add_to_set(con, RECLUSTERED, "unique_id", records_sql)


def reset_reclustered(con: duckdb.DuckDBPyConnection) -> None:
    """Start ``linkage.reclustered`` empty: ids, queue and cluster edges match the clusters."""
    con.execute(f"CREATE OR REPLACE TABLE {RECLUSTERED} (unique_id VARCHAR)")


def forget_reclustered(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``linkage.reclustered``: every cluster may have changed (a full linkage)."""
    con.execute(f"DROP TABLE IF EXISTS {RECLUSTERED}")


def changed_records(
    con: duckdb.DuckDBPyConnection, reclustered: str | None = RECLUSTERED
) -> str | None:
    """``reclustered`` when it exists (the records that may have changed cluster), else None."""
    if reclustered is None or not table_exists(con, reclustered):
        return None
    return reclustered
