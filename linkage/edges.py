"""``linkage.cluster_edges``: the links inside each cluster, the evidence behind a person.

Each person's records are held together by model links at or above the threshold and by
reviewers' forced links (probability 1); ``shared.person_xref`` publishes each record's
strongest one. After an increment only the edges of re-clustered records are redone.
"""

from __future__ import annotations

import duckdb

from linkage.reclustered import changed_records
from linkage.unpublished import forget_unpublished, note_unpublished
from sharehub.warehouse import table_exists

# Decimal places of the match_probability published for each record's strongest edge
# (shared.person_xref; docs/decisions/0003): beyond them the figure is noise that would
# change hundreds of thousands of rows a day. A record whose edges keep their rounded
# figures keeps its published one, so only the others are noted for publication.
PROBABILITY_DECIMALS = 4


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
        forget_unpublished(con)
        return
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _near AS SELECT c.unique_id, c.cluster_id "
        f"FROM linkage.clusters c SEMI JOIN {changed} r ON r.unique_id = c.unique_id"
    )
    pairs = "(SELECT * FROM linkage.predictions WHERE unique_id_l IN (SELECT unique_id FROM _near))"
    con.begin()
    try:
        touching = (f"unique_id_l IN (SELECT unique_id FROM {changed}) "
                    f"OR unique_id_r IN (SELECT unique_id FROM {changed})")
        con.execute("CREATE OR REPLACE TEMP TABLE _new_edges AS "
                    + _edges_sql(pairs, "_near", decisions_sql), [threshold])  # fmt: skip
        _note_strongest(con, f"(SELECT * FROM linkage.cluster_edges WHERE {touching})", "_new_edges")
        con.execute(f"DELETE FROM linkage.cluster_edges WHERE {touching}")
        con.execute("INSERT INTO linkage.cluster_edges BY NAME SELECT * FROM _new_edges")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _near")
        con.execute("DROP TABLE IF EXISTS _new_edges")


def _note_strongest(con: duckdb.DuckDBPyConnection, old: str, new: str) -> None:
    """Note for publication (`linkage.unpublished`) the records whose strongest link
    differs between the edges ``old`` (deleted) and ``new`` (inserted).

    Why that is all: every edge of a record outside both is kept, so its strongest link
    (``shared.person_xref.match_probability``) can only move where its strongest deleted
    and inserted edges differ, as published (`PROBABILITY_DECIMALS`). Noting every
    re-clustered record instead would make a day's publication recompute over a hundred
    thousand unchanged rows.
    """
    def strongest(edges: str) -> str:
        return (f"SELECT id, round(max(match_probability), {PROBABILITY_DECIMALS}) AS p FROM (SELECT "
                f"unnest([unique_id_l, unique_id_r]) AS id, match_probability FROM {edges}) GROUP BY id")  # fmt: skip

    note_unpublished(
        con,
        f"SELECT coalesce(o.id, n.id) FROM ({strongest(old)}) o FULL JOIN ({strongest(new)}) n "
        "ON n.id = o.id WHERE o.p IS DISTINCT FROM n.p",
        links_only=True,
    )


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
    kept = f"w.match_probability >= {threshold!r} AND w.old_match_probability >= {threshold!r}"
    # the records' strongest link (published rounded) may move where an edge's rounded
    # figure does: the rounded maximum is the maximum of the rounded figures
    moved = (f"round(w.match_probability, {PROBABILITY_DECIMALS}) "
             f"<> round(w.old_match_probability, {PROBABILITY_DECIMALS})")
    note_unpublished(con, f"SELECT unnest([unique_id_l, unique_id_r]) FROM {pairs_table} w "
                          f"WHERE {kept} AND {moved}", links_only=True)  # fmt: skip
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
