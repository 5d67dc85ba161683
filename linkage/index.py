"""The master person index: stable, opaque ``person_id``s across runs.

Subscribers store our ids in their own systems, so an id must survive re-clustering.
After each clustering we carry the previous ids forward by greatest overlap: each previous
id goes with the new cluster that holds most of its records (its *home*); a cluster that
is home to several ids keeps the oldest and retires the others into it (a *merge*); a
cluster home to none takes an unused id it overlaps most, else a new one (a *split* when
its records had an id before, otherwise a new person); records that move between two
surviving ids are logged as a *move*, and an id whose records all vanished as *retire*.
Ids are derived from a hash so a re-run on the same input gives the same ids
(idempotence), and an id once issued is never reused.

Every change row names the run and the batches that caused it (``batch_ids``: the
deliveries loaded since the previous linkage, and ``review:<id>`` for reviewers'
decisions applied for the first time), so a subscriber can tell a death from a fix.

After an incremental linkage only the clusters and previous persons of the records it
re-clustered (`linkage.reclustered.RECLUSTERED`) are weighed; every other person keeps its id unseen, as the
full computation would keep it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from linkage.reclustered import RECLUSTERED, changed_records
from linkage.unpublished import forget_unpublished, note_unpublished
from sharehub.delta import shape
from sharehub.warehouse import one, table_exists

log = logging.getLogger(__name__)

# Salts looked up at once for a seed whose first candidate is taken (`_new_ids`).
_PREFETCHED_SALTS = 4

_DDL = """
CREATE TABLE IF NOT EXISTS linkage.person_ids (
    record_id VARCHAR PRIMARY KEY,
    person_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS linkage.id_registry (
    person_id VARCHAR PRIMARY KEY,
    issued_seq BIGINT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    retired_into VARCHAR
);
CREATE TABLE IF NOT EXISTS linkage.person_id_changes (
    old_person_id VARCHAR,
    new_person_id VARCHAR,
    kind VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    records BIGINT
);
ALTER TABLE linkage.person_id_changes ADD COLUMN IF NOT EXISTS batch_ids VARCHAR;
"""


@dataclass(frozen=True)
class IdAssignment:
    """What one assignment run did, for the run summary and the change log."""

    persons: int
    kept: int
    new: int
    merged: int
    split: int
    retired: int


def _candidate(seed_record: str, salt: int) -> str:
    digest = hashlib.sha256(f"{seed_record}|{salt}".encode()).hexdigest()
    return "P" + digest[:15].upper()


def _registered(con: duckdb.DuckDBPyConnection, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` the registry has issued: one query on the candidates only."""
    wanted = sorted(set(candidates))
    if not wanted:
        return set()
    rows = con.execute(
        "SELECT person_id FROM linkage.id_registry "
        "WHERE person_id IN (SELECT unnest(?::VARCHAR[]))",
        [wanted],
    ).fetchall()
    return {str(row[0]) for row in rows}


def _new_ids(con: duckdb.DuckDBPyConnection, seeds: Sequence[str]) -> list[str]:
    """An opaque id per seed (a new cluster's smallest record id), in order: the first
    salted hash neither issued before nor given to an earlier seed.

    Hashing (not the record id itself) keeps the id free of source keys; determinism
    keeps re-runs idempotent. Why ask the registry about candidates only: reading every
    issued id into Python cost about a second a day at 1M persons, for the few records
    that come back after their id was retired (their first candidate is that id).
    """
    first = [_candidate(seed, 0) for seed in seeds]
    issued = _registered(con, first)
    # a record back after its id was retired seeds that id first: its next salts in one go
    again = [_candidate(seed, salt) for seed, pid in zip(seeds, first, strict=True)
             if pid in issued for salt in range(1, _PREFETCHED_SALTS)]  # fmt: skip
    issued |= _registered(con, again)
    checked = {*first, *again}
    ids: list[str] = []
    given: set[str] = set()
    for seed, candidate in zip(seeds, first, strict=True):
        salt = 0
        while True:
            if candidate not in checked:
                issued |= _registered(con, [candidate])
                checked.add(candidate)
            if candidate not in issued and candidate not in given:
                break
            salt += 1
            candidate = _candidate(seed, salt)
        given.add(candidate)
        ids.append(candidate)
    return ids


def _carry_forward(overlap: list[tuple[str, str, int, int]]) -> dict[str, str]:
    """cluster_id → previous person_id, from (cluster_id, person_id, records, issued_seq)
    rows ordered by records descending, then age, then cluster.

    First each id goes home (the cluster holding most of its records) and each cluster
    keeps the oldest id at home there — so a split leaves the id on the larger part and a
    merge keeps the older id; then clusters still without an id take the unused id they
    overlap most, so an id survives where any of its records remain.
    """
    home: dict[str, str] = {}
    for cluster_id, person_id, _n, _seq in overlap:
        home.setdefault(person_id, cluster_id)
    chosen: dict[str, str] = {}
    used: set[str] = set()
    for _cluster, person_id, _n, _seq in sorted(overlap, key=lambda row: (row[3], row[1])):
        cluster_id = home[person_id]
        if cluster_id not in chosen and person_id not in used:
            chosen[cluster_id] = person_id
            used.add(person_id)
    for cluster_id, person_id, _n, _seq in overlap:
        if cluster_id not in chosen and person_id not in used:
            chosen[cluster_id] = person_id
            used.add(person_id)
    return chosen


@dataclass(frozen=True)
class _Inputs:
    """Where an assignment reads each record's cluster and previous person from."""

    clusters: str  # (unique_id, cluster_id)
    ids: str  # (record_id, person_id)
    scoped: bool  # only the records of RECLUSTERED: the others are settled unseen


def _inputs(
    con: duckdb.DuckDBPyConnection, clusters_table: str, reclustered: str | None, had_ids: bool
) -> _Inputs:
    """The whole ``clusters_table`` and ``linkage.person_ids``, or — when ``reclustered``
    exists — temp copies of their rows for its records (`_scope`)."""
    whole = _Inputs(clusters_table, "linkage.person_ids", scoped=False)
    if not had_ids or reclustered is None:
        return whole
    if reclustered == RECLUSTERED and clusters_table != "linkage.clusters":
        return whole  # the set names records of linkage.clusters, not of another table
    changed = changed_records(con, reclustered)
    return whole if changed is None else _scope(con, clusters_table, changed) or whole


def _scope(con: duckdb.DuckDBPyConnection, clusters_table: str, reclustered: str) -> _Inputs | None:
    """Temp tables ``_scope_clusters`` and ``_scope_ids``: the cluster and previous person
    of each record of ``reclustered``; None when the records outside it are not as many in
    ``linkage.person_ids`` as in ``clusters_table`` (then everything is assigned).

    Why the other records keep their cluster *and* their person id, so that the
    unrestricted assignment settles them unchanged:
    `linkage.incremental.link_incremental` re-clusters ``reach``, the closure of its seeds
    (changed, removed, TF-moved, status-changed and every reviewer-decided record) over
    yesterday's links at or above the threshold, today's and the forced links of
    decisions, and leaves every other record's cluster row as it was. Every cluster
    `linkage.cluster.cluster_pairs` builds is connected by such links: components over
    bridging records; a non-bridging record attached by a link at or above the threshold;
    left-over records as components among themselves; and
    `linkage.constraints.constrained_clusters` (reviewers' decisions, and the splits on
    two valid IDs, which only forbid pairs) joins groups only along those links or forced
    ones, so a split yields connected parts. A forced link of an earlier day whose
    decision has flipped since has both records among the seeds (every decided record is
    one). So a previous cluster lies wholly inside or wholly outside reach, and with it
    the previous person who is exactly that cluster. A cluster's id is one of its records'
    ids, so a re-clustered cluster never takes an outside cluster's id. A
    cluster outside thus holds one previous person's records and that person no others:
    settled, with the same id, either way. Inside, the settled test and the carry-forward
    see the same clusters, persons, overlaps and order as the unrestricted computation,
    and new ids are salted against the registry either way. A union of such sets
    (linkages without an assignment between them) has the same property, so the set
    needs no widening. Removed records are in it too: their person rows go.
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _scope_clusters AS
        SELECT c.unique_id, c.cluster_id FROM {clusters_table} c
        SEMI JOIN {reclustered} r ON r.unique_id = c.unique_id"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _scope_ids AS
        SELECT p.record_id, p.person_id FROM linkage.person_ids p
        SEMI JOIN {reclustered} r ON r.unique_id = p.record_id"""
    )
    with_id, in_cluster = one(
        con,
        f"""SELECT (SELECT count(*) FROM linkage.person_ids) - (SELECT count(*) FROM _scope_ids),
                   (SELECT count(*) FROM {clusters_table}) - (SELECT count(*) FROM _scope_clusters)""",
    )
    if with_id != in_cluster:
        log.warning(
            "%d records outside %s hold a person id but %d a cluster; assigning every record",
            with_id, reclustered, in_cluster,
        )  # fmt: skip
        return None
    return _Inputs("_scope_clusters", "_scope_ids", scoped=True)


def assign_person_ids(
    con: duckdb.DuckDBPyConnection,
    *,
    clusters_table: str = "linkage.clusters",
    run_id: str,
    now: datetime | None = None,
    batch_ids: Sequence[str] = (),
    reclustered: str | None = RECLUSTERED,
) -> IdAssignment:
    """Carry ids forward onto ``clusters_table`` (unique_id, cluster_id); log every change.

    Writes ``linkage.person_ids`` (record → person), ``linkage.id_registry`` and appends to
    ``linkage.person_id_changes`` (with ``batch_ids``, the causes of this run), in one
    transaction (the caller's if one is open). When ``reclustered`` exists (the records
    that may have changed cluster since the last assignment, `RECLUSTERED`), only the
    clusters and previous persons holding them are weighed (`_scope` says why the result
    is the same); None weighs every cluster.
    """
    now = now or datetime.now()
    had_ids = table_exists(con, "linkage.person_ids")
    con.execute(_DDL)
    inputs = _inputs(con, clusters_table, reclustered, had_ids)
    try:
        return _assign(con, inputs, run_id, now, batch_ids)
    finally:
        for table in (
            "_scope_clusters",
            "_scope_ids",
            "_settled",
            "_record_person",
            "_retired_rows",
        ):
            con.execute(f"DROP TABLE IF EXISTS {table}")


def _settle(con: duckdb.DuckDBPyConnection, inputs: _Inputs) -> int:
    """Create ``_settled`` (cluster_id, person_id); return the number of settled clusters.

    Settled clusters hold exactly the records of one previous id and that id has no
    record elsewhere: the id stays, nothing changes. On a day-2 increment that is ~97 %
    of the district, so only the rest is carried forward in Python (same result: no other
    cluster overlaps a settled id, so `_carry_forward` never weighs it). Scoped, the
    clusters outside are settled unseen: one per previous person outside, and the
    registry's unretired ids are exactly the previous persons (this module alone writes
    both, retiring every previous id that no cluster carries on).
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _settled AS
        WITH one_id AS (  -- clusters whose every record had the same id
            SELECT CAST(c.cluster_id AS VARCHAR) AS cluster_id, min(p.person_id) AS person_id,
                   count(*) AS n
            FROM {inputs.clusters} c LEFT JOIN {inputs.ids} p ON p.record_id = c.unique_id
            GROUP BY c.cluster_id
            HAVING count(p.person_id) = count(*) AND count(DISTINCT p.person_id) = 1
        ), prev AS (SELECT person_id, count(*) AS n FROM {inputs.ids} GROUP BY person_id)
        -- one join on the key only: with a third relation the optimizer may join on the
        -- counts alone (a product of ~10^10 rows at 100k persons)
        SELECT o.cluster_id, o.person_id
        FROM one_id o JOIN prev ON prev.person_id = o.person_id
        WHERE prev.n = o.n
        """
    )
    settled = int(one(con, "SELECT count(*) FROM _settled")[0])
    if inputs.scoped:
        settled += int(one(con, f"""
            SELECT (SELECT count(*) FROM linkage.id_registry WHERE retired_at IS NULL)
                 - (SELECT count(DISTINCT person_id) FROM {inputs.ids})""")[0])  # fmt: skip
    return settled


def _assign(
    con: duckdb.DuckDBPyConnection,
    inputs: _Inputs,
    run_id: str,
    now: datetime,
    batch_ids: Sequence[str],
) -> IdAssignment:
    settled = _settle(con, inputs)
    overlap = con.execute(
        f"""
        SELECT c.cluster_id, p.person_id, count(*) AS n, min(r.issued_seq) AS seq
        FROM {inputs.clusters} c
        JOIN {inputs.ids} p ON p.record_id = c.unique_id
        JOIN linkage.id_registry r ON r.person_id = p.person_id
        ANTI JOIN _settled s ON s.person_id = p.person_id
        GROUP BY ALL
        ORDER BY n DESC, seq, c.cluster_id
        """
    ).fetchall()
    clusters = con.execute(
        f"SELECT c.cluster_id, min(c.unique_id), count(*) FROM {inputs.clusters} c "
        "ANTI JOIN _settled s ON s.cluster_id = CAST(c.cluster_id AS VARCHAR) "
        "GROUP BY c.cluster_id ORDER BY min(c.unique_id)"
    ).fetchall()
    previous = {
        pid: n
        for pid, n in con.execute(
            f"SELECT p.person_id, count(*) FROM {inputs.ids} p "
            "ANTI JOIN _settled s ON s.person_id = p.person_id GROUP BY p.person_id"
        ).fetchall()
    }

    chosen = _carry_forward(overlap)
    used = set(chosen.values())
    unnamed = [(cluster_id, str(min_record)) for cluster_id, min_record, _n in clusters
               if cluster_id not in chosen]  # fmt: skip
    next_seq = int(one(con, "SELECT coalesce(max(issued_seq), 0) FROM linkage.id_registry")[0])
    new_rows = []
    for (cluster_id, _seed), pid in zip(
        unnamed, _new_ids(con, [s for _c, s in unnamed]), strict=True
    ):
        next_seq += 1
        chosen[cluster_id] = pid
        new_rows.append((pid, next_seq, now))

    causes = ",".join(batch_ids) or None
    changes, retired, merged_into = _changes(
        overlap, chosen, used, previous, new_rows, run_id, now, causes
    )
    with _transaction(con):
        _register(con, new_rows, retired, merged_into, now)
        _write_person_ids(con, inputs, chosen)
        _log_changes(con, changes)
    result = IdAssignment(
        persons=settled + len(clusters),
        kept=settled + len(used),
        new=len(new_rows),
        merged=sum(1 for c in changes if c[2] == "merge"),
        split=sum(1 for c in changes if c[2] == "split"),
        retired=sum(1 for c in changes if c[2] == "retire"),
    )
    scope = " (re-clustered records only)" if inputs.scoped else ""
    log.info("person ids assigned%s: %s", scope, result)
    return result


_Change = tuple[str | None, str | None, str, str, datetime, int, str | None]


def _changes(
    overlap: list[tuple[str, str, int, int]],
    chosen: dict[str, str],
    used: set[str],
    previous: dict[str, int],
    new_rows: list[tuple[str, int, datetime]],
    run_id: str,
    now: datetime,
    causes: str | None,
) -> tuple[list[_Change], list[str], dict[str, str]]:
    """The change log rows, the retired ids and what each merged id went into."""
    changes: list[_Change] = []
    # Records that had an id before and now sit in a cluster under another id.
    moved: dict[tuple[str, str], int] = {}
    for cluster_id, person_id, n, _seq in overlap:
        target = chosen[cluster_id]
        if target != person_id:
            moved[(person_id, target)] = moved.get((person_id, target), 0) + n
    new_ids = {row[0] for row in new_rows}
    for (old, target), n in sorted(moved.items()):
        if old not in used:
            kind = "merge"  # the old id lost every cluster: its records joined `target`
        elif target in new_ids:
            kind = "split"  # the old id lives on; part of its records got a new id
        else:
            kind = "move"  # records moved between two persons that both survive
        changes.append((old, target, kind, run_id, now, n, causes))
    retired = [pid for pid in previous if pid not in used]
    for pid in retired:
        if not any(old == pid for old, _ in moved):
            changes.append((pid, None, "retire", run_id, now, previous[pid], causes))
    merged_into = {old: target for (old, target) in moved if old not in used}
    return changes, retired, merged_into


def _register(
    con: duckdb.DuckDBPyConnection,
    new_rows: list[tuple[str, int, datetime]],
    retired: list[str],
    merged_into: dict[str, str],
    now: datetime,
) -> None:
    """Issue the new ids and mark the retired ones in ``linkage.id_registry``."""
    if new_rows:
        issued = pa.table(
            {
                "person_id": pa.array([r[0] for r in new_rows], pa.string()),
                "issued_seq": pa.array([r[1] for r in new_rows], pa.int64()),
                "issued_at": pa.array([r[2] for r in new_rows], pa.timestamp("us")),
            }
        )
        con.register("_issued", issued)
        con.execute(
            "INSERT INTO linkage.id_registry (person_id, issued_seq, issued_at) "
            "SELECT person_id, issued_seq, issued_at FROM _issued"
        )
        con.unregister("_issued")
    if retired:
        gone = pa.table(
            {
                "person_id": pa.array(retired, pa.string()),
                "retired_into": pa.array([merged_into.get(pid) for pid in retired], pa.string()),
            }
        )
        con.register("_retired", gone)
        # Deleted and inserted again, not UPDATEd: DuckDB sizes an UPDATE's commit by its
        # undo buffer, a copy of each touched 2048-row vector per column, and a few hundred
        # ids scattered over the registry (~500 vectors at 1M persons) passed the 16 MiB
        # WAL threshold: every day's assignment forced a full checkpoint (0.8 s).
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _retired_rows AS "
            "SELECT r.* REPLACE (CAST(? AS TIMESTAMP) AS retired_at, g.retired_into AS retired_into) "
            "FROM linkage.id_registry r JOIN _retired g ON g.person_id = r.person_id",
            [now],
        )
        con.unregister("_retired")
        con.execute(
            "DELETE FROM linkage.id_registry WHERE person_id IN (SELECT person_id FROM _retired_rows)"
        )
        con.execute("INSERT INTO linkage.id_registry SELECT * FROM _retired_rows")


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction for the writes, or the caller's if one is open.

    Why: the registry, the record → person rows and the change log must change together; a
    run stopped between them would leave ids issued that no record holds, and the re-run
    would salt new ids differently from a clean run.
    """
    try:
        con.begin()
    except duckdb.TransactionException:  # the caller's transaction is open: write in it
        yield
        return
    try:
        yield
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _log_changes(con: duckdb.DuckDBPyConnection, changes: list[_Change]) -> None:
    """Append ``changes`` to ``linkage.person_id_changes`` in bulk.

    Why not executemany: it cost ~4 ms a row (0.5 s for the 114 changes of a 100k day 2).
    """
    if not changes:
        return
    columns = list(zip(*changes, strict=True))
    rows = pa.table(
        {
            "old_person_id": pa.array(columns[0], pa.string()),
            "new_person_id": pa.array(columns[1], pa.string()),
            "kind": pa.array(columns[2], pa.string()),
            "run_id": pa.array(columns[3], pa.string()),
            "changed_at": pa.array(columns[4], pa.timestamp("us")),
            "records": pa.array(columns[5], pa.int64()),
            "batch_ids": pa.array(columns[6], pa.string()),
        }
    )
    con.register("_changes", rows)
    try:
        con.execute(
            "INSERT INTO linkage.person_id_changes (old_person_id, new_person_id, kind, run_id, "
            "changed_at, records, batch_ids) SELECT * FROM _changes"
        )
    finally:
        con.unregister("_changes")


def _write_person_ids(
    con: duckdb.DuckDBPyConnection, inputs: _Inputs, chosen: dict[str, str]
) -> None:
    """Rewrite the rows of ``linkage.person_ids`` that changed."""
    # Bulk, not row by row: executemany into DuckDB costs seconds per ten thousand rows.
    mapping = pa.table(
        {
            "cluster_id": pa.array([str(cluster) for cluster in chosen], pa.string()),
            "person_id": pa.array(list(chosen.values()), pa.string()),
        }
    )
    con.register("_cluster_person", mapping)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _record_person AS
        SELECT c.unique_id AS record_id, m.person_id
        FROM {inputs.clusters} c
        JOIN (SELECT * FROM _cluster_person UNION ALL SELECT * FROM _settled) m
          ON m.cluster_id = CAST(c.cluster_id AS VARCHAR)
        """
    )
    con.unregister("_cluster_person")
    if inputs.scoped:
        # the records whose person changes, came or went (for publication)
        note_unpublished(
            con,
            "SELECT o.record_id FROM _scope_ids o ANTI JOIN _record_person n "
            "ON n.record_id = o.record_id AND n.person_id = o.person_id "
            "UNION ALL SELECT n.record_id FROM _record_person n ANTI JOIN _scope_ids o "
            "ON o.record_id = n.record_id AND o.person_id = n.person_id",
        )
        # _scope_ids holds every row of these records, so neither statement scans for them
        con.execute(
            "DELETE FROM linkage.person_ids WHERE record_id IN (SELECT o.record_id FROM "
            "_scope_ids o ANTI JOIN _record_person n "
            "ON n.record_id = o.record_id AND n.person_id = o.person_id)"
        )
        con.execute(
            "INSERT INTO linkage.person_ids SELECT n.record_id, n.person_id FROM _record_person n "
            "ANTI JOIN _scope_ids o ON o.record_id = n.record_id AND o.person_id = n.person_id"
        )
        return
    # Only the rows that changed: emptying the primary-key table and refilling it cost
    # 4.3 s of a 5.7 s assignment at 100k persons, for a few thousand changed rows.
    # Weighing every cluster happens after a full linkage, which publication takes whole.
    forget_unpublished(con)
    con.execute(
        "DELETE FROM linkage.person_ids p WHERE NOT EXISTS (SELECT 1 FROM _record_person n "
        "WHERE n.record_id = p.record_id AND n.person_id = p.person_id)"
    )
    con.execute(
        "INSERT INTO linkage.person_ids SELECT n.record_id, n.person_id FROM _record_person n "
        "ANTI JOIN linkage.person_ids p ON p.record_id = n.record_id"
    )


def build_record_end_dates(con: duckdb.DuckDBPyConnection) -> int:
    """(Re)build ``linkage.record_end_dates``: when and by which batch each ended record ended.

    Why: a deregistered (注销), soft-deleted or dropped record stays in the index with its
    person — subscribers must learn of deaths and moves — and the end date is the
    ``valid_to`` of its ended version in ``staging.<feed>`` (history is kept there, not in
    ``staging.person_records``). Returns the number of ended records.
    """
    from schemas.contract import FEEDS, feed_contract

    selects = []
    for feed in FEEDS:
        if not table_exists(con, f"staging.{feed}"):
            continue
        key = feed_contract(feed).key.name
        selects.append(
            f"SELECT '{feed}:' || {key} AS record_id, record_status, valid_to AS ended_at, "
            f"batch_id AS ended_batch_id FROM staging.{feed} "
            "WHERE is_current AND record_status <> 'active'"
        )
    body = " UNION ALL ".join(selects) or (
        "SELECT NULL::VARCHAR AS record_id, NULL::VARCHAR AS record_status, "
        "NULL::TIMESTAMP AS ended_at, NULL::VARCHAR AS ended_batch_id WHERE false"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _end_dates AS {body}")
    if table_exists(con, "linkage.record_end_dates") and shape(con, "_end_dates") == shape(
        con, "linkage.record_end_dates"
    ):
        # records whose end (date, status or batch) changed: noted before the table is
        # replaced, so a failure in between only notes too many
        note_unpublished(con, """
            SELECT record_id FROM (SELECT * FROM _end_dates EXCEPT ALL SELECT * FROM linkage.record_end_dates)
            UNION ALL
            SELECT record_id FROM (SELECT * FROM linkage.record_end_dates EXCEPT ALL SELECT * FROM _end_dates)""",
                         links_only=True)
    else:
        forget_unpublished(con)
    con.execute("CREATE OR REPLACE TABLE linkage.record_end_dates AS "
                "SELECT * FROM _end_dates ORDER BY record_id")
    con.execute("DROP TABLE _end_dates")
    return int(one(con, "SELECT count(*) FROM linkage.record_end_dates")[0])
