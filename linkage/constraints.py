"""Clustering under constraints: what may never share a cluster, and what must.

Two sources of constraints, one mechanism:

- **Reviewers' decisions** (`linkage.review`): a ``match`` is a forced edge, a
  ``no-match`` forbids two records from sharing a cluster.
- **Two different valid resident IDs** (`id_conflicts_sql`): one person holds one ID, so
  a cluster holding two valid IDs (neither contradicting its record's birth date) holds
  two people chained together by records that fit both — a namesake father and son
  through a record without an ID, twins with like-sounding names through a record of one
  of them. Each such pair of records is forbidden, exactly as if a reviewer had said
  ``no-match``, unless a reviewer declared the two IDs one person's.

`constrained_clusters` re-clusters the components concerned with the same rules as the
SQL path (`linkage.cluster.cluster_pairs`): links taken strongest first, a link skipped
when it would put a forbidden pair together. Cutting the weakest links this way is what a
reviewer expects of a split: each record stays with the side it is most strongly tied to.

Both paths also share the **ambiguity rule** for records that link but do not bridge
(`linkage.cluster`): such a record joins its best-scoring cluster only if that cluster
beats the runner-up by ``AMBIGUITY_MARGIN_BITS`` of match weight. A newborn's placeholder
record (张丽之子) fits both of a pair of twins equally — same mother, birth date, room and
phone — so any choice is a guess, and a wrong guess merges the twins in the published
index; the record stays unattached instead, and its links go to clerical review.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Pair = tuple[str, str]

# A non-bridging record attaches to its best cluster only when the runner-up's best link
# is this many bits of match weight weaker (a Bayes factor of 2). Twins' placeholder
# records tie exactly; a record of one person split across two clusters by a missed link
# may tie too, and then stays apart rather than picking one at random.
AMBIGUITY_MARGIN_BITS = 1.0
_P_CLIP = 1e-15


@dataclass(frozen=True)
class Constraints:
    """Clustering constraints, each pair ordered (smaller id first)."""

    must_link: frozenset[Pair] = frozenset()
    must_not_link: frozenset[Pair] = frozenset()

    def records(self) -> set[str]:
        """Every record named by a constraint."""
        return {uid for pair in self.must_link | self.must_not_link for uid in pair}

    def with_forbidden(self, pairs: Iterable[Pair]) -> Constraints:
        """These constraints plus ``pairs`` as must-not-link, except pairs forced together."""
        extra = {(min(a, b), max(a, b)) for a, b in pairs} - self.must_link
        return Constraints(self.must_link, self.must_not_link | frozenset(extra))

    def __bool__(self) -> bool:
        return bool(self.must_link or self.must_not_link)


def match_weight(probability: float) -> float:
    """log2 of the odds, clipped so that probability 1 (a forced edge) stays finite."""
    p = min(max(probability, _P_CLIP), 1.0 - _P_CLIP)
    return math.log2(p / (1.0 - p))


def match_weight_sql(column: str) -> str:
    """`match_weight` in DuckDB SQL, for the SQL path to decide ambiguity alike."""
    p = f"least(greatest({column}, {_P_CLIP!r}), {1.0 - _P_CLIP!r})"
    return f"log2({p} / (1.0 - {p}))"


def ambiguous(best: float, runner_up: float) -> bool:
    """Whether two candidate clusters' best links are too alike to choose between."""
    return match_weight(best) - match_weight(runner_up) < AMBIGUITY_MARGIN_BITS


def decision_edges_sql(constraints: Constraints) -> str:
    """SQL (unique_id_l, unique_id_r) for the forced edges of ``constraints``."""
    pairs = sorted(constraints.must_link)
    if not pairs:
        return "SELECT NULL::VARCHAR AS unique_id_l, NULL::VARCHAR AS unique_id_r WHERE false"
    values = ", ".join(
        "(" + ", ".join("'" + uid.replace("'", "''") + "'" for uid in pair) + ")" for pair in pairs
    )
    return f"SELECT * FROM (VALUES {values}) AS d(unique_id_l, unique_id_r)"


ID_COLUMNS = ("id_norm", "id_valid", "birth_conflict")


def own_id_sql(alias: str) -> str:
    """SQL: the record ``alias`` carries a valid ID of its own — one whose embedded birth
    date does not contradict the record's (a guardian's ID on a civil-affairs row does)."""
    return (
        f"{alias}.id_norm IS NOT NULL AND coalesce(CAST({alias}.id_valid AS BOOLEAN), false) "
        f"AND NOT coalesce(CAST({alias}.birth_conflict AS BOOLEAN), false)"
    )


def held_apart_sql(pairs: str, clusters: str, threshold: float) -> str:
    """SQL (unique_id_l, unique_id_r, cluster_l, cluster_r): links of ``pairs`` at or above
    ``threshold`` whose records clustering put in two clusters of ``clusters`` — a link cut
    on two valid IDs, or a record left between two persons it fits alike."""
    return f"""
        SELECT p.unique_id_l, p.unique_id_r, a.cluster_id AS cluster_l, b.cluster_id AS cluster_r
        FROM {pairs} p
        JOIN {clusters} a ON a.unique_id = p.unique_id_l
        JOIN {clusters} b ON b.unique_id = p.unique_id_r
        WHERE p.match_probability >= {threshold!r} AND a.cluster_id <> b.cluster_id
    """


def id_conflicts_sql(clusters: str, records: str, constraints: Constraints) -> str:
    """SQL (unique_id_l, unique_id_r): pairs of records sharing a cluster of ``clusters``
    (unique_id, cluster_id) while carrying different valid IDs of their own in ``records``.

    A pair is exempt when a reviewer's ``match`` joined two records with those two IDs:
    the reviewer has said that one person holds both (a re-issued ID)."""
    return f"""
        WITH ids AS (
            SELECT c.cluster_id, r.unique_id, r.id_norm
            FROM {clusters} c JOIN {records} r USING (unique_id) WHERE {own_id_sql("r")}
        ), declared AS (
            SELECT least(a.id_norm, b.id_norm) AS x, greatest(a.id_norm, b.id_norm) AS y
            FROM ({decision_edges_sql(constraints)}) d
            JOIN {records} a ON a.unique_id = d.unique_id_l AND {own_id_sql("a")}
            JOIN {records} b ON b.unique_id = d.unique_id_r AND {own_id_sql("b")}
        )
        SELECT least(a.unique_id, b.unique_id) AS unique_id_l,
               greatest(a.unique_id, b.unique_id) AS unique_id_r
        FROM ids a JOIN ids b ON a.cluster_id = b.cluster_id AND a.id_norm < b.id_norm
        ANTI JOIN declared ON declared.x = a.id_norm AND declared.y = b.id_norm
    """


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


def _attach(
    groups: _Groups,
    uid: str,
    candidates: list[tuple[float, str, str]],
) -> bool:
    """Join ``uid`` to its best allowed cluster unless the runner-up is as good."""
    groups.add(uid)
    best: dict[str, tuple[float, str]] = {}  # cluster label -> (best p, a record in it)
    for neg_p, label, other in sorted(candidates):
        if label not in best and groups.can_join(uid, other):
            best[label] = (-neg_p, other)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
    if not ranked or (len(ranked) > 1 and ambiguous(ranked[0][1][0], ranked[1][1][0])):
        return False
    return groups.join(uid, ranked[0][1][1])


def constrained_clusters(
    bridging: dict[str, bool],
    edges: Iterable[tuple[str, str, float]],
    constraints: Constraints,
) -> dict[str, str]:
    """Cluster ``bridging`` (record → may it bridge?) over ``edges`` (already at or above
    the threshold) under ``constraints``; return record → cluster id.

    Without constraints this gives what `linkage.cluster.cluster_pairs` gives: components
    over bridging records, each other record attached to its best bridging neighbour's
    cluster unless the runner-up is as good (`ambiguous`; ties: smaller cluster id), the
    rest clustered among themselves, ids the smallest core record. A forced edge joins its
    records even if one of them may not bridge; a forbidden pair's own edge is dropped and
    no later link may bring the two together.
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
    attached = {uid for uid in sorted(candidates) if _attach(groups, uid, candidates[uid])}
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
