"""Daily increments: link what changed against the existing index, not everything again.

A day brings a few hundred births, moves, deaths and corrections against a district of
millions of records. Re-standardising and re-scoring everything would cost the same every
day however little changed, so each record keeps two fingerprints: of the staged values
standardisation reads (``linkage.standardised_inputs``) and of the features the model
compares (``linkage.feature_hashes``, written at the end of each linkage). A run then

1. standardises only records whose staged values are new or changed (`linkage.changes`);
2. scores the records whose model features are new or changed against the rest with the
   same model and blocking rules (Splink 5 ``predict_between``) and among themselves
   (``predict_within``), and replaces every pair that involves them in
   ``linkage.predictions``;
3. re-clusters only the connected components that hold a changed, removed or
   reviewer-decided record — over old and new links, so a component that a changed
   record used to hold together is re-clustered too — with the same rules as a full run
   (`linkage.cluster.cluster_pairs`). Clustering is per component, so the other clusters
   are exactly what a full run would give.

Term frequencies (of names and phones) are computed from all current records, as a full
run does. A name whose count changed changes the weight of every pair agreeing on it:
when it rose by more than ``TF_TOLERANCE_BITS``, stored pairs agreeing on it are brought
to today's frequency by arithmetic (`linkage.reweight`, the SQL Splink itself uses); when
it *fell* by more than that — so that pairs below the review floor may rise above it,
which arithmetic on stored pairs cannot find — its holders are scored again among
themselves.
A re-weighted link re-clusters its records only when it crosses the match threshold.
Pairs kept from earlier days still see the old *total* count — a drift of
|log2(total now / total then)| + ``TF_TOLERANCE_BITS`` bits per adjusted column at most —
so the records of pairs within that drift of the match threshold or the review threshold
are scored again as well: no kept pair can land on the other side of a threshold than a
full re-link would put it. Clustering also compares links with each other (ID splits,
ambiguous attachments), so the records of clusters that a link above the threshold joins
to another cluster are scored afresh too. Match probabilities of the other kept pairs
differ from a full re-link by at most that drift (< 0.01). `sharehub run --full-relink` re-scores everything; a changed model
file, threshold or a missing fingerprint force it (`linkage.predict.plan`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.changes import (
    FEATURE_HASHES,
    FEATURES,
    FINGERPRINT_CHANGES,
    MODEL_COLUMNS,
    fingerprint_sql,
    tf_columns,
    value_sql,
)
from linkage.cluster import cluster_pairs, component_closure
from linkage.constraints import Constraints, decision_edges_sql, held_apart_sql
from linkage.edges import reweigh_edges
from linkage.model import create_input_table, drop_input_table
from linkage.reweight import MOVED_VALUES, REWEIGHTED, reweight_kept_pairs, weight_parts
from linkage.train import load_model
from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

# A frequency that moved by less than this (about 1.4 %: a name held by 72 records gaining
# one) neither re-weights nor re-scores its holders' pairs; the kept pairs' weights are
# then off by at most this much, which the boundary re-scoring allows for. Without it a
# 3 % day-2 change touched a third of a 1M-person district: every common name's count moves.
TF_TOLERANCE_BITS = 0.02


@dataclass(frozen=True)
class IncrementalResult:
    """What an incremental linkage did, for the run summary and the link log."""

    records: int
    changed: int
    rescored: int  # changed, and unchanged records whose name/phone frequency fell
    status_changed: int
    removed: int
    scored_pairs: int
    reclustered: int
    clusters: int
    reweighted_pairs: int = 0  # kept pairs brought to today's frequencies (linkage.reweight)

    @property
    def predicted_pairs(self) -> int:
        """Pairs scored by the model in this run (the run summary's figure)."""
        return self.scored_pairs


def _diff(
    con: duckdb.DuckDBPyConnection,
    tf_cols: Sequence[str] = (),
    boundaries: Sequence[float] = (),
    predictions_table: str = "linkage.predictions",
) -> tuple[int, int, int, int]:
    """`_diff_and_totals` without the totals: (changed, rescored otherwise, status, removed)."""
    return _diff_and_totals(con, tf_cols, boundaries, predictions_table)[0]


def _diff_and_totals(
    con: duckdb.DuckDBPyConnection,
    tf_cols: Sequence[str],
    boundaries: Sequence[float],
    predictions_table: str,
) -> tuple[tuple[int, int, int, int], dict[str, int]]:
    """Temp tables ``_rescore`` (new or changed model features, and records of pairs
    whose scores may have drifted across one of the ``boundaries``), ``_tf`` (holders of a
    name or phone whose count fell, not in ``_rescore``), `linkage.reweight.MOVED_VALUES`
    (values whose count rose), ``_status`` (only the status changed) and ``_removed``
    (gone); return (changed, rescored otherwise, status, removed) and, per adjusted
    column stored with the fingerprints, its non-null values now (the frequencies'
    denominator, derived from the stored counts: no second scan of the features).

    Why ``_tf`` apart: a frequency adjusts only pairs that agree exactly on the value
    (`linkage.model`), and both records of such a pair hold it, so only pairs among the
    holders are scored again (`_score_changed`), not each holder against the district.

    Also leaves `linkage.changes.FINGERPRINT_CHANGES` (the new fingerprint rows of new,
    changed and status-changed records, and the ids of removed ones) for
    `linkage.changes.write_fingerprints` to apply once the linkage is written.
    """
    stored = {str(r[0]) for r in con.execute(f"DESCRIBE {FEATURE_HASHES}").fetchall()}
    _fingerprint_changes(con, tf_cols)
    for table, rows in (
        ("_rescore", "features_changed AND feature_hash IS NOT NULL"),
        ("_status", "NOT features_changed"),
        ("_removed", "feature_hash IS NULL"),
    ):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT record_id AS unique_id "
            f"FROM {FINGERPRINT_CHANGES} WHERE {rows}"
        )
    changed = int(con.execute("SELECT count(*) FROM _rescore").fetchall()[0][0])
    con.execute("CREATE OR REPLACE TEMP TABLE _tf (unique_id VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {MOVED_VALUES} (col VARCHAR, v VARCHAR, cur_n BIGINT)")
    adjusted = [c for c in tf_cols if c in stored]
    totals = _tf_moved(con, adjusted)
    _rescore_near_boundaries(con, totals, boundaries, predictions_table)
    if boundaries:
        _rescore_held_apart(con, boundaries[0], predictions_table)
    con.execute("DELETE FROM _tf WHERE unique_id IN (SELECT unique_id FROM _rescore)")
    counts = con.execute(
        "SELECT (SELECT count(*) FROM _rescore) + (SELECT count(*) FROM _tf), "
        "(SELECT count(*) FROM _status), (SELECT count(*) FROM _removed)"
    ).fetchall()[0]
    now = {c: n for c, (_, n) in totals.items()}
    return (changed, int(counts[0]) - changed, int(counts[1]), int(counts[2])), now


def _fingerprint_changes(con: duckdb.DuckDBPyConnection, tf_cols: Sequence[str]) -> None:
    """Temp table `FINGERPRINT_CHANGES`: the fingerprint row (as
    `linkage.changes.write_fingerprints` writes it) of every record whose model features
    or status differ from the stored fingerprints, the id (alone) of every record gone,
    and whether its features changed (true for new and gone records).

    Why only those rows, in one pass: the next steps and the fingerprints' update need
    nothing else, and writing the two million unchanged ones to a temp table, then
    joining them again to find the removed, was most of the cost.
    """
    raw = "".join(f", f.{c}" for c in tf_cols)
    values = "".join(f", {value_sql(c)} AS {c}" for c in tf_cols)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {FINGERPRINT_CHANGES} AS
            SELECT record_id, CASE WHEN NOT gone THEN feature_hash END AS feature_hash,
                   record_status{values},
                   gone OR old_hash IS DISTINCT FROM feature_hash AS features_changed
            FROM (
                SELECT coalesce(f.unique_id, h.record_id) AS record_id,
                       f.unique_id IS NULL AS gone,
                       {fingerprint_sql(MODEL_COLUMNS, "f")} AS feature_hash,
                       f.record_status{raw}, h.feature_hash AS old_hash,
                       h.record_status AS old_status
                FROM {FEATURES} f FULL JOIN {FEATURE_HASHES} h ON h.record_id = f.unique_id
            )
            WHERE gone OR old_hash IS DISTINCT FROM feature_hash
               OR old_status IS DISTINCT FROM record_status"""
    )


def _tf_moved(
    con: duckdb.DuckDBPyConnection, tf_cols: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Fill ``_tf`` with the holders of a value of ``tf_cols`` whose count fell by more
    than ``TF_TOLERANCE_BITS``, and `linkage.reweight.MOVED_VALUES` with the values whose
    count rose by more than that (col, v, cur_n); return per column (non-null values then,
    now).

    A name (or phone) whose count changed changes the term-frequency adjustment of every
    pair agreeing on it by |log2(count now / count then)| bits. Stored pairs are
    re-weighted by arithmetic (`linkage.reweight`); but when a count fell, pairs below the
    review floor rise and may cross it, and arithmetic cannot find pairs that were not
    stored, so the holders of such a value are scored again among themselves — unless
    the rise is within TF_TOLERANCE_BITS, which `_rescore_near_boundaries` allows for. A
    count that rose only lowers weights: a pair below the floor stays below it.

    Why the stored values and not all current features: a record whose fingerprint is
    unchanged holds the values stored with it, so a count now is the count then, less
    the stored values of changed and removed records, plus the changed records' new
    values. Only those few values are counted, and holders are looked up among the
    stored values, instead of grouping every record's values twice per column.
    """
    if not tf_cols:
        return {}
    touched = f"(SELECT record_id FROM {FINGERPRINT_CHANGES} WHERE features_changed)"
    deltas = " UNION ALL ".join(
        f"""SELECT '{c}' AS col, {c} AS v, 1 AS d FROM {FINGERPRINT_CHANGES}
            WHERE features_changed AND feature_hash IS NOT NULL
            UNION ALL SELECT '{c}', h.{c}, -1 FROM {FEATURE_HASHES} h
            SEMI JOIN {touched} t ON t.record_id = h.record_id"""
        for c in tf_cols
    )
    olds = " UNION ALL ".join(
        f"SELECT '{c}' AS col, {c} AS v, count(*) AS n FROM {FEATURE_HASHES} "
        f"WHERE {c} IN (SELECT v FROM _tf_delta WHERE col = '{c}') GROUP BY {c}"
        for c in tf_cols
    )
    holders = " OR ".join(
        f"h.{c} IN (SELECT v FROM _tf_counts WHERE col = '{c}' AND moved)" for c in tf_cols
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _tf_delta AS SELECT col, v, sum(d) AS d "
            f"FROM ({deltas}) WHERE v IS NOT NULL GROUP BY col, v"
        )
        # only values held before and now have holders whose fingerprint is unchanged
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _tf_counts AS
                SELECT col, v, d, old.n AS old_n,
                       NULLIF(CAST(coalesce(old.n, 0) + d AS BIGINT), 0) AS cur_n,
                       d < 0 AND cur_n IS NOT NULL
                       AND log2(old_n / cur_n) > {TF_TOLERANCE_BITS!r} AS moved
                FROM _tf_delta LEFT JOIN ({olds}) old USING (col, v)"""
        )
        # within the tolerance a kept weight is left as is (the boundaries allow for it)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {MOVED_VALUES} AS SELECT col, v, cur_n FROM _tf_counts "
            "WHERE d <> 0 AND old_n IS NOT NULL AND cur_n IS NOT NULL AND NOT moved "
            f"AND abs(log2(cur_n / old_n)) > {TF_TOLERANCE_BITS!r}"
        )
        con.execute(
            f"""INSERT INTO _tf SELECT h.record_id FROM {FEATURE_HASHES} h
                WHERE ({holders}) AND h.record_id NOT IN {touched}"""
        )
        then = con.execute(
            "SELECT " + ", ".join(f"count({c})" for c in tf_cols) + f" FROM {FEATURE_HASHES}"
        ).fetchall()[0]
        moved = dict(con.execute("SELECT col, sum(d) FROM _tf_delta GROUP BY col").fetchall())
    finally:
        con.execute("DROP TABLE IF EXISTS _tf_delta")
        con.execute("DROP TABLE IF EXISTS _tf_counts")
    return {
        c: (int(n), int(n) + int(moved.get(c) or 0)) for c, n in zip(tf_cols, then, strict=True)
    }


def _rescore_held_apart(
    con: duckdb.DuckDBPyConnection, threshold: float, predictions_table: str
) -> None:
    """Add to ``_rescore`` every record of a cluster that a link at or above ``threshold``
    joins to another cluster (a split on two valid IDs, an ambiguous attachment).

    Those decisions compare links with each other (strongest first; best against
    runner-up within a margin), not with a threshold, so a kept pair's drift could tip
    them; these few hundred records are scored afresh instead.
    """
    con.execute(
        f"""INSERT INTO _rescore
        WITH held AS ({held_apart_sql(predictions_table, "linkage.clusters", threshold)}),
        touched AS (SELECT cluster_l AS cluster_id FROM held UNION SELECT cluster_r FROM held)
        SELECT DISTINCT c.unique_id FROM linkage.clusters c
        SEMI JOIN touched USING (cluster_id)
        SEMI JOIN {FEATURES} f ON f.unique_id = c.unique_id
        ANTI JOIN _rescore r ON r.unique_id = c.unique_id"""
    )


def _rescore_near_boundaries(
    con: duckdb.DuckDBPyConnection,
    totals: dict[str, tuple[int, int]],
    boundaries: Sequence[float],
    predictions_table: str,
) -> None:
    """Add to ``_rescore`` the records of pairs whose weight lies within the drift of a
    boundary (the match threshold, the review threshold); ``totals`` gives per
    term-frequency column the non-null values then and now (`_tf_moved`).

    Every frequency is a count over all non-null values, so a day's new records shift
    every frequency-adjusted weight by up to |log2(total now / total then)| bits per
    column — far too little to matter, except for a pair that close to a threshold. Such
    pairs are scored again, so no pair kept from an earlier day can land on the other
    side of a threshold than a full re-link would put it.
    """
    drift = 0.0
    for then, now in totals.values():
        if now and then:
            drift += abs(math.log2(now / then)) + TF_TOLERANCE_BITS
    weights = [math.log2(p / (1 - p)) for p in boundaries if 0 < p < 1]
    if not drift or not weights:
        return
    near = " OR ".join(f"abs(match_weight - ({w!r})) <= {drift + 1e-9!r}" for w in weights)
    con.execute(
        f"""INSERT INTO _rescore
        SELECT DISTINCT uid FROM (
            SELECT unique_id_l AS uid FROM {predictions_table} WHERE {near}
            UNION ALL SELECT unique_id_r FROM {predictions_table} WHERE {near}
        ) SEMI JOIN {FEATURES} f ON f.unique_id = uid
        WHERE uid NOT IN (SELECT unique_id FROM _rescore)"""
    )


def _score_changed(
    con: duckdb.DuckDBPyConnection,
    full_input: str,
    model_path: Path,
    floor: float,
    predictions_table: str,
) -> str:
    """Score ``_rescore`` records of ``full_input`` against the others and among themselves,
    and ``_tf`` records among themselves; return a temp table shaped like
    ``predictions_table`` (unique_id_l < unique_id_r).

    Why the others are a view and the scored records tables: Splink reads the others
    (all but a few thousand records) twice, joining them to a few candidate pairs, which
    cost less than copying them; the few scored records it reads many times.
    """
    from splink import DuckDBAPI, Linker

    model = load_model(model_path)
    tag = uuid.uuid4().hex[:8]
    new_in, old_in, tf_in, out = (f"__sharehub_{n}_{tag}" for n in ("new", "old", "tf", "scored"))
    con.execute(f"CREATE TEMP TABLE {new_in} AS SELECT * FROM {full_input} SEMI JOIN _rescore USING (unique_id)")
    con.execute(
        f"CREATE TEMP VIEW {old_in} AS SELECT * FROM {full_input} ANTI JOIN _rescore USING (unique_id)"
    )
    con.execute(f"CREATE TEMP TABLE {tf_in} AS SELECT * FROM {full_input} SEMI JOIN _tf USING (unique_id)")
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {predictions_table}").fetchall()]
    select = []
    for column in columns:
        base, side = column[:-2], column[-2:]
        if side in ("_l", "_r") and {f"{base}_l", f"{base}_r"} <= set(columns):
            other = f"{base}_r" if side == "_l" else f"{base}_l"
            select.append(f"CASE WHEN unique_id_l > unique_id_r THEN {other} ELSE {column} END AS {column}")
        else:
            select.append(column)
    # whether any record is not scored again (a LIMIT, not a count of the whole view)
    n_new, n_old, n_tf = (
        int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
        for t in (new_in, f"(SELECT 1 FROM {old_in} LIMIT 1)", tf_in)
    )
    db_api = DuckDBAPI(connection=con)
    try:
        # validated when this model last linked in full; validating costs ~0.5 s a day
        linker = Linker(db_api.register(full_input), model, log_level=None, validate_settings=False)
        for column in tf_columns(model):
            # frequencies of all current records, as a full prediction computes them
            linker.table_management.compute_tf_table(column)
        parts = []
        if n_new and n_old:
            parts.append(linker.inference.predict_between(
                db_api.register(new_in), db_api.register(old_in),
                threshold_match_probability=floor, warning_mode="never"))  # fmt: skip
        if n_new >= 2:
            parts.append(linker.inference.predict_within(
                db_api.register(new_in), threshold_match_probability=floor, warning_mode="never"))  # fmt: skip
        if n_tf >= 2:
            parts.append(linker.inference.predict_within(
                db_api.register(tf_in), threshold_match_probability=floor, warning_mode="never"))  # fmt: skip
        union = " UNION ALL ".join(f"SELECT {', '.join(select)} FROM {p.physical_name}" for p in parts)
        con.execute(
            f"CREATE TEMP TABLE {out} AS "
            + (union or f"SELECT * FROM {predictions_table} WHERE false")
        )
    except LinkageError:
        raise
    except Exception as exc:  # splink and duckdb raise many unrelated types
        raise LinkageError(f"incremental prediction with {model_path} failed: {exc}") from exc
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        con.execute(f"DROP VIEW IF EXISTS {old_in}")
        for table in (new_in, tf_in):
            drop_input_table(con, table)
    return out


def link_incremental(
    con: duckdb.DuckDBPyConnection,
    *,
    model_path: Path,
    threshold: float,
    review_floor: float,
    review_threshold: float | None = None,
    constraints: Constraints | None = None,
    predictions_table: str = "linkage.predictions",
    clusters_table: str = "linkage.clusters",
) -> IncrementalResult:
    """Score the records whose features changed since the last linkage, merge their pairs
    into ``predictions_table`` and re-cluster only the components they touch.

    ``review_floor`` is the lowest match probability kept (as in `linkage.predict.link`);
    ``review_threshold`` the lower bound of the review queue's grey zone.
    """
    from linkage.reclustered import note_reclustered
    from linkage.review import REVIEW_THRESHOLD

    constraints = constraints or Constraints()
    boundaries = (threshold, REVIEW_THRESHOLD if review_threshold is None else review_threshold)
    model = load_model(model_path)
    tf_cols = tf_columns(model)
    (changed, for_tf, status_changed, removed), totals = _diff_and_totals(
        con, tf_cols, boundaries, predictions_table
    )
    # the model's projection, as the full path clusters it (blank status = NULL, …)
    full_input = create_input_table(con, FEATURES, view=True)
    tag = uuid.uuid4().hex[:8]
    recs, pairs = f"__sharehub_recs_{tag}", f"__sharehub_pairs_{tag}"
    scored = reach = out = None
    floor = min(review_floor, threshold)
    parts = weight_parts(model, floor)
    try:
        scored = _score_changed(con, full_input, model_path, floor, predictions_table)
        touched = "(SELECT unique_id FROM _rescore UNION ALL SELECT unique_id FROM _removed)"
        # pairs scored again: any with a touched record, and those between two _tf records
        redone = (f"(unique_id_l IN {touched} OR unique_id_r IN {touched} OR "
                  "(unique_id_l IN (SELECT unique_id FROM _tf) "
                  "AND unique_id_r IN (SELECT unique_id FROM _tf)))")  # fmt: skip
        # kept pairs agreeing on a value whose count moved: today's frequency, by arithmetic
        reweighted = reweight_kept_pairs(
            con, parts, predictions_table=predictions_table,
            holders_table=FEATURE_HASHES, totals=totals, excluded=redone,
        )  # fmt: skip
        decided = ", ".join("('" + u.replace("'", "''") + "')" for u in sorted(constraints.records()))
        # A re-weighted link that crosses the threshold changes the links clustering sees.
        # One that stays above it changes no cluster: weights steer clustering only in a
        # component with a link held apart (an ID split, an ambiguous attachment), whose
        # clusters `_rescore_held_apart` sent to be scored afresh (so it is no re-weighted
        # pair, and its component is re-clustered); its cluster edge is updated below.
        crossing = " UNION ALL ".join(
            f"SELECT {side} FROM {REWEIGHTED} WHERE (match_probability >= {threshold!r}) "
            f"<> (old_match_probability >= {threshold!r})"
            for side in ("unique_id_l", "unique_id_r")
        )
        seeds = (f"{touched[1:-1]} UNION ALL SELECT unique_id FROM _tf UNION ALL "
                 f"SELECT unique_id FROM _status UNION ALL {crossing}") + (
            f" UNION ALL SELECT * FROM (VALUES {decided}) AS d(unique_id)" if decided else ""
        )
        # old links too: a component a changed record used to hold together is re-clustered
        links = " UNION ALL ".join([
            f"SELECT unique_id_l, unique_id_r FROM {t} WHERE match_probability >= {threshold!r}"
            for t in (predictions_table, scored, REWEIGHTED)
        ] + [decision_edges_sql(constraints)])  # fmt: skip
        reach = component_closure(con, seeds, links)
        con.execute(f"CREATE TEMP TABLE {recs} AS SELECT * FROM {full_input} SEMI JOIN {reach} USING (unique_id)")
        con.execute(
            f"""CREATE TEMP TABLE {pairs} AS
                SELECT unique_id_l, unique_id_r, match_probability FROM {predictions_table} p
                WHERE unique_id_l IN (SELECT unique_id FROM {reach}) AND NOT {redone}
                AND NOT EXISTS (SELECT 1 FROM {REWEIGHTED} w WHERE w.unique_id_l = p.unique_id_l
                                AND w.unique_id_r = p.unique_id_r)
                UNION ALL
                SELECT unique_id_l, unique_id_r, match_probability FROM {REWEIGHTED}
                WHERE unique_id_l IN (SELECT unique_id FROM {reach}) AND match_weight >= ?
                UNION ALL
                SELECT unique_id_l, unique_id_r, match_probability FROM {scored}
                WHERE unique_id_l IN (SELECT unique_id FROM {reach})""",
            [parts.floor_weight],
        )
        out = cluster_pairs(con, pairs, recs, threshold=threshold, constraints=constraints)
        # pairs and clusters change together (see linkage.cluster.write_tables)
        con.begin()
        try:
            con.execute(f"DELETE FROM {predictions_table} WHERE {redone}")
            con.execute(
                f"DELETE FROM {predictions_table} p WHERE EXISTS (SELECT 1 FROM {REWEIGHTED} w "
                "WHERE w.unique_id_l = p.unique_id_l AND w.unique_id_r = p.unique_id_r)"
            )
            con.execute(f"INSERT INTO {predictions_table} BY NAME SELECT * FROM {scored}")
            # a pair that fell below the floor is not kept, as a full run does not keep it
            con.execute(
                f"INSERT INTO {predictions_table} BY NAME SELECT * EXCLUDE (old_match_probability) "
                f"FROM {REWEIGHTED} WHERE match_weight >= ?",
                [parts.floor_weight],
            )
            con.execute(
                f"DELETE FROM {clusters_table} WHERE unique_id IN (SELECT unique_id FROM {reach}) "
                f"OR unique_id NOT IN (SELECT unique_id FROM {FEATURES})"
            )
            con.execute(f"INSERT INTO {clusters_table} SELECT unique_id, cluster_id FROM {out}")
            reweigh_edges(con, REWEIGHTED, threshold)
            # for identify, the review queue and cluster edges: who may have moved
            note_reclustered(con, f"SELECT unique_id FROM {reach} UNION SELECT unique_id FROM _removed")
            con.commit()
        except BaseException:
            con.rollback()
            raise
        counts = con.execute(
            f"SELECT (SELECT count(*) FROM {scored}), (SELECT count(*) FROM {recs}), "
            f"(SELECT count(*) FROM {clusters_table}), "
            f"(SELECT count(DISTINCT cluster_id) FROM {clusters_table})"
        ).fetchall()[0]
    finally:
        drop_input_table(con, full_input)
        for table in (reach, recs, pairs, scored, out, "_rescore", "_tf", "_status",
                      "_removed", REWEIGHTED, MOVED_VALUES):  # fmt: skip
            if table:
                con.execute(f"DROP TABLE IF EXISTS {table}")
    result = IncrementalResult(
        records=int(counts[2]), changed=changed, rescored=changed + for_tf,
        status_changed=status_changed, removed=removed, scored_pairs=int(counts[0]),
        reclustered=int(counts[1]), clusters=int(counts[3]), reweighted_pairs=reweighted,
    )  # fmt: skip
    log.info("incremental linkage: %s", result)
    return result

