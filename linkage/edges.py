"""``linkage.cluster_edges``: the links inside each cluster, the evidence behind a person.

Each person's records are held together by model links at or above the threshold and by
reviewers' forced links (probability 1); ``shared.person_xref`` publishes each record's
strongest one. After an increment only the edges of re-clustered records are redone.
"""

from __future__ import annotations

import duckdb

from linkage.reclustered import changed_records
from sharehub.warehouse import table_exists


def write_cluster_edges(
    con: duckdb.DuckDBPyConnection, decisions_sql: str, threshold: float
) -> None:
    """``linkage.cluster_edges``: the links inside each cluster, with reviewers' forced
    links (probability 1, ``decisions_sql``) among them.

    When ``linkage.reclustered`` exists, only the edges touching its records are deleted
    and computed again, among its records' clusters. Why that equals a rebuild
    (`linkage.reclustered.RECLUSTERED`): an edge with neither record in it keeps its pair (only
    pairs holding a seed of the re-clustering, or two, are scored again), both records
    keep their clusters, and it is no forced link (every decided record is a seed); an
    edge touching the set, a link at or above the threshold or a forced one, has both
    records in it.
    """
    changed = changed_records(con)
    if changed is None or not table_exists(con, "linkage.cluster_edges"):
        con.execute(
            "CREATE OR REPLACE TABLE linkage.cluster_edges AS "
            + _edges_sql("linkage.predictions", "linkage.clusters", decisions_sql),
            [threshold],
        )
        return
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _near AS SELECT c.unique_id, c.cluster_id "
        f"FROM linkage.clusters c SEMI JOIN {changed} r ON r.unique_id = c.unique_id"
    )
    pairs = "(SELECT * FROM linkage.predictions WHERE unique_id_l IN (SELECT unique_id FROM _near))"
    con.begin()
    try:
        con.execute(
            f"DELETE FROM linkage.cluster_edges WHERE unique_id_l IN (SELECT unique_id FROM {changed}) "
            f"OR unique_id_r IN (SELECT unique_id FROM {changed})"
        )
        con.execute(
            "INSERT INTO linkage.cluster_edges BY NAME " + _edges_sql(pairs, "_near", decisions_sql),
            [threshold],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _near")


def reweigh_edges(con: duckdb.DuckDBPyConnection, pairs_table: str, threshold: float) -> None:
    """Give the model edges of ``pairs_table``'s pairs (re-weighted kept pairs,
    `linkage.reweight`) their new weight and probability, where the pair was and still
    is at or above ``threshold``.

    Why only those: such a link keeps its cluster (`linkage.incremental`), so its edge
    stays and only its figures change; a link that crossed the threshold re-clustered its
    records, whose edges `write_cluster_edges` computes afresh. Without this the
    published strongest link of a record (``shared.person_xref``) would keep an old
    probability after a change of names' frequencies.
    """
    if not table_exists(con, "linkage.cluster_edges"):
        return
    con.execute(
        f"""UPDATE linkage.cluster_edges e
            SET match_weight = w.match_weight, match_probability = w.match_probability
            FROM {pairs_table} w
            WHERE e.evidence = 'model' AND e.unique_id_l = w.unique_id_l
              AND e.unique_id_r = w.unique_id_r
              AND w.match_probability >= ? AND w.old_match_probability >= ?""",
        [threshold, threshold],
    )


def _edges_sql(pairs: str, clusters: str, decisions_sql: str) -> str:
    """SQL: the links of ``pairs`` at or above the threshold (the parameter) and the forced
    ones, whose two records share a cluster of ``clusters``."""
    return f"""
        WITH edges AS (
            SELECT unique_id_l, unique_id_r, match_weight, match_probability, 'model' AS evidence
            FROM {pairs} WHERE match_probability >= ?
            UNION ALL
            SELECT d.unique_id_l, d.unique_id_r, NULL, 1.0, 'review'
            FROM ({decisions_sql}) d
        )
        SELECT p.* FROM edges p
        JOIN {clusters} a ON a.unique_id = p.unique_id_l
        JOIN {clusters} b ON b.unique_id = p.unique_id_r
        WHERE a.cluster_id = b.cluster_id
        """
