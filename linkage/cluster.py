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

Reviewers' decisions (`linkage.review`) are constraints on top of the links: a ``match``
is a forced edge, a ``no-match`` forbids two records from sharing a cluster. Only the
components that hold a decided record are affected, so those — and only those — are
re-clustered in Python by `constrained_clusters`: the same rules, with links taken
strongest first and a link skipped when it would put a forbidden pair together. Cutting
the weakest links this way is what a reviewer expects of a split: each record stays
with the side it is most strongly tied to.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

NON_BRIDGING_STATUSES = ("inactive", "deregistered", "deleted")

Pair = tuple[str, str]


@dataclass(frozen=True)
class Constraints:
    """Reviewers' decisions as clustering constraints, each pair ordered (smaller id first)."""

    must_link: frozenset[Pair] = frozenset()
    must_not_link: frozenset[Pair] = frozenset()

    def records(self) -> set[str]:
        """Every record named by a decision."""
        return {uid for pair in self.must_link | self.must_not_link for uid in pair}

    def __bool__(self) -> bool:
        return bool(self.must_link or self.must_not_link)


class _Groups:
    """Union-find whose groups refuse to hold a must-not-link pair."""

    def __init__(self, must_not: dict[str, set[str]]) -> None:
        self.parent: dict[str, str] = {}
        self.members: dict[str, set[str]] = {}
        self.forbidden: dict[str, set[str]] = {}
        self._must_not = must_not

    def add(self, uid: str) -> None:
        if uid not in self.parent:  # a group of one
            self.parent[uid] = uid
            self.members[uid] = {uid}
            self.forbidden[uid] = set(self._must_not.get(uid, ()))

    def find(self, uid: str) -> str:
        root = uid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[uid] != root:
            self.parent[uid], uid = root, self.parent[uid]
        return root

    def can_join(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        small, big = sorted((ra, rb), key=lambda r: len(self.members[r]))
        return self.members[small].isdisjoint(self.forbidden[big])

    def join(self, a: str, b: str) -> bool:
        """Merge the groups of ``a`` and ``b`` unless that breaks a constraint."""
        if not self.can_join(a, b):
            return False
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        small, big = sorted((ra, rb), key=lambda r: (len(self.members[r]), r))
        self.parent[small] = big
        self.members[big] |= self.members.pop(small)
        self.forbidden[big] |= self.forbidden.pop(small)
        return True


def constrained_clusters(
    bridging: dict[str, bool],
    edges: Iterable[tuple[str, str, float]],
    constraints: Constraints,
) -> dict[str, str]:
    """Cluster ``bridging`` (record → may it bridge?) over ``edges`` (already at or above
    the threshold) under ``constraints``; return record → cluster id.

    Without constraints this gives what `cluster_pairs` gives: components over bridging
    records, each other record attached to its best bridging neighbour (ties: smaller
    cluster id), the rest clustered among themselves, ids the smallest core record.
    A forced edge joins its records even if one of them may not bridge; a forbidden
    pair's own edge is dropped and no later link may bring the two together.
    """
    nodes = set(bridging)
    must_not: dict[str, set[str]] = {}
    forbidden_pairs = set()
    for a, b in constraints.must_not_link:
        if a in nodes and b in nodes:
            must_not.setdefault(a, set()).add(b)
            must_not.setdefault(b, set()).add(a)
            forbidden_pairs.add((min(a, b), max(a, b)))
    forced = sorted(p for p in constraints.must_link if p[0] in nodes and p[1] in nodes)
    # strongest first: (-probability, left, right)
    kept = sorted(
        (-p, min(a, b), max(a, b)) for a, b, p in edges
        if a in nodes and b in nodes and (min(a, b), max(a, b)) not in forbidden_pairs
    )  # fmt: skip
    groups = _Groups(must_not)
    core = {u for u, b in bridging.items() if b} | {u for pair in forced for u in pair}
    for uid in sorted(core):
        groups.add(uid)
    for a, b in forced:
        if not groups.join(a, b):
            log.warning("match decision %s ~ %s contradicts a no-match decision; not applied", a, b)
    for _, a, b in kept:
        if bridging[a] and bridging[b]:
            groups.join(a, b)
    core_label = {uid: min(groups.members[groups.find(uid)]) for uid in core}
    # each non-bridging record joins its best bridging neighbour's cluster, if allowed
    candidates: dict[str, list[tuple[float, str, str]]] = {}
    for neg_p, a, b in kept:
        for uid, other in ((a, b), (b, a)):
            if uid not in core and bridging[other]:
                candidates.setdefault(uid, []).append((neg_p, core_label[other], other))
    attached: set[str] = set()
    for uid in sorted(candidates):
        groups.add(uid)
        if any(groups.join(uid, other) for _, _, other in sorted(candidates[uid])):
            attached.add(uid)
    loose = nodes - core - attached
    for uid in sorted(loose):
        groups.add(uid)
    for _, a, b in kept:
        if a in loose and b in loose:
            groups.join(a, b)
    out: dict[str, str] = {}
    for members in groups.members.values():
        name = min(members & core or members)
        out.update(dict.fromkeys(members, name))
    return out


def component_closure(con: duckdb.DuckDBPyConnection, seeds_sql: str, edges_sql: str) -> str:
    """Every record reachable from ``seeds_sql`` (unique_id) over ``edges_sql``
    (unique_id_l, unique_id_r); return the name of a temp table (unique_id).

    Why by frontier, not by clustering everything: it touches only the components of the
    seeds, so a day's few hundred changed records cost a few joins, not a re-clustering.
    """
    tag = uuid.uuid4().hex[:8]
    adj, reach, frontier, step = (f"__sharehub_{n}_{tag}" for n in ("adj", "reach", "front", "step"))
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


def decision_edges_sql(constraints: Constraints) -> str:
    """SQL (unique_id_l, unique_id_r) for the forced edges of ``constraints``."""
    pairs = sorted(constraints.must_link)
    if not pairs:
        return "SELECT NULL::VARCHAR AS unique_id_l, NULL::VARCHAR AS unique_id_r WHERE false"
    values = ", ".join(
        "(" + ", ".join("'" + uid.replace("'", "''") + "'" for uid in pair) + ")" for pair in pairs
    )
    return f"SELECT * FROM (VALUES {values}) AS d(unique_id_l, unique_id_r)"


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
    edges = f"SELECT unique_id_l, unique_id_r FROM {links} UNION ALL {decision_edges_sql(constraints)}"
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
        log.info("applied %d review constraints to %d records", len(constraints.must_link)
                 + len(constraints.must_not_link), len(result))
    finally:
        con.execute(f"DROP TABLE IF EXISTS {reach}")


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
        if constraints:
            _apply_constraints(con, out, links, records_table, bridging("rec"), constraints)
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
