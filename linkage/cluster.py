"""Turn scored pairs into clusters: connected components at a threshold.

Connected components make linking transitive (A~B and B~C put A, B and C together),
which is what a master person index needs, but it also lets one wrong link chain two
people together. Records that are no longer current — left the civil-affairs rolls,
deregistered, soft-deleted — are the riskiest bridges: their contact data is stale and
nobody corrects them. Records of newborns not yet named (张丽之子) are the other risk:
such a record fits both of a pair of twins equally, and would chain them together. So
these records *link but do not pull others together*: components are formed over the
other records only, then each non-bridging record joins the cluster of its best-scoring
bridging neighbour at or above the threshold (ties go to the smaller cluster id), and
non-bridging records with no such neighbour are clustered among themselves.

Cluster ids are the smallest ``unique_id`` in the component (what Splink's connected
components return), so they are deterministic for a given set of links; stable person
ids across runs are `linkage.index`'s job, not this module's.
"""

from __future__ import annotations

import logging
import uuid

import duckdb

from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

NON_BRIDGING_STATUSES = ("inactive", "deregistered", "deleted")


def _components(con: duckdb.DuckDBPyConnection, nodes_sql: str, edges_sql: str, out: str) -> None:
    """Create temp table ``out`` (unique_id, cluster_id) by Splink's connected components."""
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    tag = uuid.uuid4().hex[:8]
    nodes, edges = f"__sharehub_cc_nodes_{tag}", f"__sharehub_cc_edges_{tag}"
    con.execute(f"CREATE TEMP TABLE {nodes} AS {nodes_sql}")
    con.execute(f"CREATE TEMP TABLE {edges} AS {edges_sql}")
    db_api = DuckDBAPI(connection=con)
    try:
        cc = cluster_pairwise_predictions_at_threshold(
            db_api.register(nodes),
            db_api.register(edges),
            db_api=db_api,
            node_id_column_name="unique_id",
        )
        con.execute(
            f"CREATE TEMP TABLE {out} AS "
            f"SELECT CAST(unique_id AS VARCHAR) AS unique_id, "
            f"CAST(cluster_id AS VARCHAR) AS cluster_id FROM {cc.physical_name}"
        )
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        con.execute(f"DROP TABLE IF EXISTS {nodes}")
        con.execute(f"DROP TABLE IF EXISTS {edges}")


def cluster_pairs(
    con: duckdb.DuckDBPyConnection,
    pairs_table: str,
    records_table: str,
    *,
    threshold: float,
    non_bridging_statuses: tuple[str, ...] = NON_BRIDGING_STATUSES,
    placeholders_bridge: bool = False,
) -> str:
    """Cluster ``records_table`` (unique_id, record_status and, if present,
    is_placeholder_name) using the pairs of ``pairs_table`` (unique_id_l, unique_id_r,
    match_probability) at or above ``threshold``; return the name of a temp table
    (unique_id, cluster_id)."""
    if not 0.0 < threshold <= 1.0:
        raise LinkageError(f"threshold must be in (0, 1]; got {threshold}")
    statuses = ", ".join("'" + s.replace("'", "''") + "'" for s in non_bridging_statuses)
    try:
        columns = {str(r[0]) for r in con.execute(f"DESCRIBE {records_table}").fetchall()}
    except duckdb.Error as exc:
        raise LinkageError(f"cannot read records to cluster from {records_table}: {exc}") from exc
    tag = uuid.uuid4().hex[:8]
    core, loose, out = (f"__sharehub_{n}_{tag}" for n in ("core", "loose", "clusters"))

    def bridging(alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        tests = ["TRUE"]
        if statuses:
            tests.append(f"coalesce({prefix}record_status, 'active') NOT IN ({statuses})")
        if placeholders_bridge is False and "is_placeholder_name" in columns:
            tests.append(f"NOT coalesce(CAST({prefix}is_placeholder_name AS BOOLEAN), false)")
        return "(" + " AND ".join(tests) + ")"

    links = f"(SELECT * FROM {pairs_table} WHERE match_probability >= {threshold!r})"
    try:
        _components(
            con,
            f"SELECT unique_id FROM {records_table} WHERE {bridging()}",
            f"SELECT e.unique_id_l, e.unique_id_r FROM {links} e "
            f"JOIN {records_table} l ON l.unique_id = e.unique_id_l AND {bridging('l')} "
            f"JOIN {records_table} r ON r.unique_id = e.unique_id_r AND {bridging('r')}",
            core,
        )
        # best current neighbour of each non-current record
        attach = f"""
            WITH nb AS (
                SELECT unique_id_l AS uid, unique_id_r AS other, match_probability FROM {links}
                UNION ALL
                SELECT unique_id_r, unique_id_l, match_probability FROM {links}
            )
            SELECT nb.uid AS unique_id,
                   arg_min(c.cluster_id, (-nb.match_probability, c.cluster_id)) AS cluster_id
            FROM nb
            JOIN {records_table} rec ON rec.unique_id = nb.uid AND NOT {bridging("rec")}
            JOIN {core} c ON c.unique_id = nb.other
            GROUP BY nb.uid
        """
        con.execute(f"CREATE TEMP TABLE {out} AS SELECT * FROM {core} UNION ALL ({attach})")
        _components(
            con,
            f"SELECT unique_id FROM {records_table} WHERE unique_id NOT IN "
            f"(SELECT unique_id FROM {out})",
            f"SELECT e.unique_id_l, e.unique_id_r FROM {links} e "
            f"WHERE e.unique_id_l NOT IN (SELECT unique_id FROM {out}) "
            f"AND e.unique_id_r NOT IN (SELECT unique_id FROM {out})",
            loose,
        )
        con.execute(f"INSERT INTO {out} SELECT * FROM {loose}")
    except duckdb.Error as exc:
        con.execute(f"DROP TABLE IF EXISTS {out}")
        raise LinkageError(f"clustering {pairs_table} at {threshold} failed: {exc}") from exc
    finally:
        con.execute(f"DROP TABLE IF EXISTS {core}")
        con.execute(f"DROP TABLE IF EXISTS {loose}")
    return out


def cluster_predictions(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: float,
    predictions_table: str = "linkage.predictions",
    records_table: str = "linkage.person_features",
    clusters_table: str = "linkage.clusters",
) -> int:
    """Re-cluster saved predictions at ``threshold`` into ``clusters_table``.

    For trying another threshold without scoring again; `linkage.predict.link` does
    prediction and clustering in one step. Returns the number of clusters.
    """
    out = cluster_pairs(con, predictions_table, records_table, threshold=threshold)
    try:
        write_tables(con, {clusters_table: f"SELECT * FROM {out} ORDER BY unique_id"})
        rows = con.execute(f"SELECT count(DISTINCT cluster_id) FROM {out}").fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {out}")
    return int(rows[0][0])


def write_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> None:
    """Replace each ``schema.table`` with its SELECT, all in one transaction.

    Why one transaction: predictions and the clusters built from them must change
    together, so that a reader never sees clusters of one run beside pairs of another.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        for table, select_sql in tables.items():
            if "." in table:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.partition('.')[0]}")
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise LinkageError(f"writing {', '.join(tables)} failed: {exc}") from exc
