"""Turn scored pairs into clusters: connected components at a threshold, then splits.

Connected components make linking transitive (A~B and B~C put A, B and C together),
which is what a master person index needs, but it also lets one wrong link chain two
people together. Three guards, in this order:

1. Records that are no longer current — left the civil-affairs rolls, deregistered,
   soft-deleted — and records of newborns not yet named (张丽之子) *link but do not pull
   others together*: their contact data is stale, or they fit both of a pair of twins.
   Components are formed over the other records only; then each non-bridging record
   joins the cluster of its best-scoring bridging neighbour at or above the threshold
   (ties go to the smaller cluster id) — unless a second cluster scores as well
   (`linkage.constraints.ambiguous`), when it stays unattached; non-bridging records
   left over are clustered among themselves.
2. Reviewers' decisions (`linkage.review`): a ``match`` is a forced edge, a ``no-match``
   forbids two records from sharing a cluster.
3. A cluster holding two different valid resident IDs is split as if a reviewer had kept
   each such pair of records apart (`linkage.constraints.id_conflicts_sql`).

Only the components that hold a constrained record are affected by 2 and 3, so those —
and only those — are re-clustered in Python by `linkage.constraints.constrained_clusters`:
the same rules, links taken strongest first, a link skipped when it would put a forbidden
pair together.

Cluster ids are the smallest ``unique_id`` in the component (what Splink's connected
components return), so they are deterministic for a given set of links; stable person
ids across runs are `linkage.index`'s job, not this module's.
"""

from __future__ import annotations

import logging
import uuid

import duckdb
import pyarrow as pa

from linkage.constraints import (
    AMBIGUITY_MARGIN_BITS,
    ID_COLUMNS,
    Constraints,
    constrained_clusters,
    decision_edges_sql,
    id_conflicts_sql,
    match_weight_sql,
)
from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

NON_BRIDGING_STATUSES = ("inactive", "deregistered", "deleted")
MAX_SPLIT_ROUNDS = 5


def component_closure(con: duckdb.DuckDBPyConnection, seeds_sql: str, edges_sql: str) -> str:
    """Every record reachable from ``seeds_sql`` (unique_id) over ``edges_sql``
    (unique_id_l, unique_id_r); return the name of a temp table (unique_id).

    Why by frontier, not by clustering everything: it touches only the components of the
    seeds, so a day's few hundred changed records cost a few joins, not a re-clustering.
    """
    tag = uuid.uuid4().hex[:8]
    adj, reach, frontier, step = (
        f"__sharehub_{n}_{tag}" for n in ("adj", "reach", "front", "step")
    )
    con.execute(
        f"CREATE TEMP TABLE {adj} AS SELECT DISTINCT a, b FROM ("
        f"SELECT unique_id_l AS a, unique_id_r AS b FROM ({edges_sql}) "
        f"UNION ALL SELECT unique_id_r, unique_id_l FROM ({edges_sql}))"
    )
    con.execute(f"CREATE TEMP TABLE {reach} AS SELECT DISTINCT unique_id FROM ({seeds_sql})")
    con.execute(f"CREATE TEMP TABLE {frontier} AS SELECT * FROM {reach}")
    try:
        while True:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {step} AS SELECT DISTINCT e.b AS unique_id "
                f"FROM {frontier} f JOIN {adj} e ON e.a = f.unique_id "
                f"ANTI JOIN {reach} r ON r.unique_id = e.b"
            )
            if not con.execute(f"SELECT count(*) FROM {step}").fetchall()[0][0]:
                break
            con.execute(f"INSERT INTO {reach} SELECT unique_id FROM {step}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {frontier} AS SELECT * FROM {step}")
    finally:
        for table in (adj, frontier, step):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return reach


def _apply_constraints(
    con: duckdb.DuckDBPyConnection,
    out: str,
    links: str,
    records_table: str,
    bridging_sql: str,
    constraints: Constraints,
) -> None:
    """Re-cluster, in ``out``, the components that hold a decided record."""
    present = {
        str(r[0])
        for r in con.execute(
            f"SELECT unique_id FROM {records_table} WHERE unique_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [sorted(constraints.records())],
        ).fetchall()
    }
    if not present:
        return
    seeds = ", ".join("('" + uid.replace("'", "''") + "')" for uid in sorted(present))
    edges = (
        f"SELECT unique_id_l, unique_id_r FROM {links} UNION ALL {decision_edges_sql(constraints)}"
    )
    reach = component_closure(con, f"SELECT * FROM (VALUES {seeds}) AS s(unique_id)", edges)
    try:
        nodes = con.execute(
            f"SELECT rec.unique_id, {bridging_sql} FROM {records_table} rec "
            f"SEMI JOIN {reach} c ON c.unique_id = rec.unique_id"
        ).fetchall()
        pairs = con.execute(
            f"SELECT e.unique_id_l, e.unique_id_r, e.match_probability FROM {links} e "
            f"SEMI JOIN {reach} c ON c.unique_id = e.unique_id_l"
        ).fetchall()
        result = constrained_clusters({str(u): bool(b) for u, b in nodes}, pairs, constraints)
        table = pa.table({
            "unique_id": pa.array(list(result), pa.string()),
            "cluster_id": pa.array(list(result.values()), pa.string()),
        })  # fmt: skip
        con.register("_constrained", table)
        try:
            con.execute(f"DELETE FROM {out} WHERE unique_id IN (SELECT unique_id FROM {reach})")
            con.execute(f"INSERT INTO {out} SELECT unique_id, cluster_id FROM _constrained")
        finally:
            con.unregister("_constrained")
        log.info(
            "applied %d review constraints to %d records",
            len(constraints.must_link) + len(constraints.must_not_link),
            len(result),
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {reach}")


def _split_id_conflicts(
    con: duckdb.DuckDBPyConnection,
    out: str,
    links: str,
    records_table: str,
    bridging_sql: str,
    constraints: Constraints,
) -> None:
    """Split, in ``out``, every cluster holding two different valid IDs
    (`linkage.constraints.id_conflicts_sql`), as if a reviewer had kept each such pair
    apart. A split can move a non-bridging record next to another ID, so this repeats
    until no cluster holds two IDs; each round only adds constraints, so it ends."""
    for round_no in range(1, MAX_SPLIT_ROUNDS + 1):
        pairs = con.execute(id_conflicts_sql(out, records_table, constraints)).fetchall()
        if not pairs:
            return
        log.info("round %d: %d record pairs carry different valid IDs in one cluster; "
                 "splitting", round_no, len(pairs))  # fmt: skip
        constraints = constraints.with_forbidden((str(a), str(b)) for a, b in pairs)
        _apply_constraints(con, out, links, records_table, bridging_sql, constraints)
    left = con.execute(
        f"SELECT count(*) FROM ({id_conflicts_sql(out, records_table, constraints)})"
    ).fetchall()[0][0]
    if left:
        log.warning("%d record pairs with different valid IDs still share a cluster after %d "
                    "split rounds", left, MAX_SPLIT_ROUNDS)  # fmt: skip


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
    constraints: Constraints | None = None,
) -> str:
    """Cluster ``records_table`` (unique_id, record_status and, if present,
    is_placeholder_name) using the pairs of ``pairs_table`` (unique_id_l, unique_id_r,
    match_probability) at or above ``threshold``, honouring reviewers' ``constraints``;
    return the name of a temp table (unique_id, cluster_id)."""
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
        # best current neighbour's cluster of each non-bridging record, unless the
        # runner-up cluster is as good (linkage.constraints.ambiguous)
        attach = f"""
            WITH nb AS (
                SELECT unique_id_l AS uid, unique_id_r AS other, match_probability FROM {links}
                UNION ALL
                SELECT unique_id_r, unique_id_l, match_probability FROM {links}
            ), cand AS (
                SELECT nb.uid, c.cluster_id, max(nb.match_probability) AS p,
                       row_number() OVER (PARTITION BY nb.uid
                                          ORDER BY max(nb.match_probability) DESC, c.cluster_id) AS rk
                FROM nb
                JOIN {records_table} rec ON rec.unique_id = nb.uid AND NOT {bridging("rec")}
                JOIN {core} c ON c.unique_id = nb.other
                GROUP BY nb.uid, c.cluster_id
            )
            SELECT a.uid AS unique_id, a.cluster_id FROM cand a
            LEFT JOIN cand b ON b.uid = a.uid AND b.rk = 2
            WHERE a.rk = 1 AND (b.uid IS NULL OR
                {match_weight_sql("a.p")} - {match_weight_sql("b.p")} >= {AMBIGUITY_MARGIN_BITS!r})
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
        constraints = constraints or Constraints()
        if constraints:
            _apply_constraints(con, out, links, records_table, bridging("rec"), constraints)
        if all(c in columns for c in ID_COLUMNS):
            _split_id_conflicts(con, out, links, records_table, bridging("rec"), constraints)
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
    constraints: Constraints | None = None,
) -> int:
    """Re-cluster saved predictions at ``threshold`` into ``clusters_table``.

    For trying another threshold without scoring again; `linkage.predict.link` does
    prediction and clustering in one step. Returns the number of clusters.
    """
    out = cluster_pairs(
        con, predictions_table, records_table, threshold=threshold, constraints=constraints
    )
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
