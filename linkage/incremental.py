"""Daily increments: link what changed against the existing index, not everything again.

A day brings a few hundred births, moves, deaths and corrections against a district of
millions of records. Re-standardising and re-scoring everything would cost the same every
day however little changed, so each record keeps two fingerprints: of the staged values
standardisation reads (``linkage.standardised_inputs``) and of the features the model
compares (``linkage.feature_hashes``, written at the end of each linkage). A run then

1. standardises only records whose staged values are new or changed;
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
run does, for the pairs scored today; the kept pairs are re-weighed in SQL for today's
frequencies (`linkage.tf_refresh`: the adjustment is additive in match weight), so their
probabilities equal a full re-link's. The components that today's weights can change are
re-clustered too: those of a kept pair crossing the threshold, and the clusters a link
above the threshold joins to another (ID splits and ambiguous attachments compare links
with each other).
`sharehub run --full-relink` re-scores everything; a changed model
file, threshold or a missing fingerprint force it (`linkage.predict.plan`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.cluster import cluster_pairs, component_closure
from linkage.constraints import Constraints, decision_edges_sql
from linkage.model import REQUIRED_COLUMNS, create_input_table, drop_input_table
from linkage.tf_refresh import apply_refresh, projected, refresh_kept_pairs, tf_levels
from linkage.train import load_model
from sharehub.errors import LinkageError
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

FEATURES = "linkage.person_features"
FEATURE_HASHES = "linkage.feature_hashes"
STANDARDISED = "linkage.standardised_inputs"
# What standardisation reads from staging.person_records (linkage.standardize.records).
INPUT_COLUMNS = (
    "record_id", "feed", "name", "id_number", "id_type", "sex_raw", "birth_raw", "phone",
    "address", "hukou_address", "record_status",
)  # fmt: skip
# What the model compares; record_status only steers clustering, so it is kept apart.
MODEL_COLUMNS = tuple(c for c in REQUIRED_COLUMNS if c != "record_status")


def fingerprint_sql(columns: tuple[str, ...], alias: str = "") -> str:
    """SQL for an md5 fingerprint of ``columns`` (NULLs included, so NULL ≠ '')."""
    prefix = f"{alias}." if alias else ""
    packed = ", ".join(f"{c} := {prefix}{c}" for c in columns)
    return f"md5(CAST(struct_pack({packed}) AS VARCHAR))"


@dataclass(frozen=True)
class StandardiseResult:
    """What one standardisation did: how many records it (re)standardised, of how many."""

    records: int
    standardised: int
    removed: int
    full: bool


def standardise(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> StandardiseResult:
    """Bring ``linkage.person_features`` up to date with ``staging.person_records``.

    Standardisation is per record (each value is standardised on its own), so only new
    or changed records need it; ``full`` (or a warehouse without fingerprints) redoes all.
    """
    from linkage.standardize import standardize_records

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _inputs AS SELECT record_id, "
        f"{fingerprint_sql(INPUT_COLUMNS)} AS input_hash FROM staging.person_records"
    )
    full = full or not (table_exists(con, STANDARDISED) and table_exists(con, FEATURES))
    todo_sql = "SELECT record_id FROM _inputs"
    if not full:
        todo_sql = (
            f"SELECT i.record_id FROM _inputs i LEFT JOIN {STANDARDISED} s USING (record_id) "
            "WHERE s.input_hash IS DISTINCT FROM i.input_hash"
        )
    records = con.execute(
        f"SELECT * FROM staging.person_records WHERE record_id IN ({todo_sql}) ORDER BY record_id"
    ).df()
    features = standardize_records(records)
    con.register("_features", features)
    con.begin()
    try:
        if full:
            con.execute(f"CREATE OR REPLACE TABLE {FEATURES} AS SELECT * FROM _features")
            removed = 0
        else:
            removed = int(con.execute(
                f"SELECT count(*) FROM {FEATURES} ANTI JOIN _inputs i ON i.record_id = unique_id"
            ).fetchall()[0][0])  # fmt: skip
            con.execute(
                f"DELETE FROM {FEATURES} WHERE unique_id IN (SELECT unique_id FROM _features) "
                "OR unique_id NOT IN (SELECT record_id FROM _inputs)"
            )
            con.execute(f"INSERT INTO {FEATURES} BY NAME SELECT * FROM _features")
        con.execute(f"CREATE OR REPLACE TABLE {STANDARDISED} AS SELECT * FROM _inputs")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_features")
        con.execute("DROP TABLE IF EXISTS _inputs")
    total = int(con.execute(f"SELECT count(*) FROM {FEATURES}").fetchall()[0][0])
    log.info("standardised %d of %d records (%s), %d removed", len(features), total,
             "full" if full else "incremental", removed)
    return StandardiseResult(total, len(features), removed, full)


def write_fingerprints(con: duckdb.DuckDBPyConnection, tf_columns: Sequence[str] = ()) -> None:
    """Remember the features the current predictions and clusters were built from, and
    the values of the term-frequency columns (whose counts the next increment compares)."""
    values = "".join(f", {projected(c)} AS {c}" for c in tf_columns)
    con.execute(
        f"CREATE OR REPLACE TABLE {FEATURE_HASHES} AS SELECT unique_id AS record_id, "
        f"{fingerprint_sql(MODEL_COLUMNS)} AS feature_hash, record_status{values} FROM {FEATURES}"
    )


@dataclass(frozen=True)
class IncrementalResult:
    """What an incremental linkage did, for the run summary and the link log."""

    records: int
    changed: int
    rescored: int  # records scored again: those whose features changed
    status_changed: int
    removed: int
    scored_pairs: int
    reclustered: int
    clusters: int
    reweighed_pairs: int = 0  # kept pairs brought up to today's term frequencies

    @property
    def predicted_pairs(self) -> int:
        """Pairs scored by the model in this run (the run summary's figure)."""
        return self.scored_pairs


def _diff(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """Temp tables ``_rescore`` (new or changed model features), ``_status`` (only the
    status changed) and ``_removed`` (gone); return their sizes."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fp AS
            SELECT f.unique_id, {fingerprint_sql(MODEL_COLUMNS, "f")} AS feature_hash,
                   f.record_status, h.feature_hash AS old_hash, h.record_status AS old_status
            FROM {FEATURES} f LEFT JOIN {FEATURE_HASHES} h ON h.record_id = f.unique_id"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rescore AS SELECT unique_id FROM _fp "
        "WHERE old_hash IS DISTINCT FROM feature_hash"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _status AS SELECT unique_id FROM _fp "
        "WHERE old_hash = feature_hash AND old_status IS DISTINCT FROM record_status"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _removed AS SELECT record_id AS unique_id "
        f"FROM {FEATURE_HASHES} ANTI JOIN _fp ON _fp.unique_id = record_id"
    )
    con.execute("DROP TABLE _fp")
    counts = con.execute(
        "SELECT (SELECT count(*) FROM _rescore), (SELECT count(*) FROM _status), "
        "(SELECT count(*) FROM _removed)"
    ).fetchall()[0]
    return int(counts[0]), int(counts[1]), int(counts[2])


def _reclustered_for_weights(
    con: duckdb.DuckDBPyConnection, threshold: float, predictions_table: str, fixes: str,
    clusters_table: str,
) -> str:
    """SQL (unique_id) of the kept records whose clusters today's weights can change:
    both records of a pair that crosses the threshold, and every record of a cluster
    that a link at or above it joins to another cluster — a split on two valid IDs or an
    ambiguous attachment, decided by comparing links with each other."""
    t = repr(threshold)
    return f"""
        SELECT unique_id_l AS unique_id FROM {fixes} f JOIN {predictions_table} p
            USING (unique_id_l, unique_id_r)
        WHERE (f.match_probability >= {t}) <> (p.match_probability >= {t})
        UNION ALL
        SELECT unique_id_r FROM {fixes} f JOIN {predictions_table} p USING (unique_id_l, unique_id_r)
        WHERE (f.match_probability >= {t}) <> (p.match_probability >= {t})
        UNION ALL
        SELECT c.unique_id FROM {clusters_table} c SEMI JOIN (
            SELECT a.cluster_id FROM {predictions_table} p
            JOIN {clusters_table} a ON a.unique_id = p.unique_id_l
            JOIN {clusters_table} b ON b.unique_id = p.unique_id_r
            WHERE p.match_probability >= {t} AND a.cluster_id <> b.cluster_id
            UNION SELECT b.cluster_id FROM {predictions_table} p
            JOIN {clusters_table} a ON a.unique_id = p.unique_id_l
            JOIN {clusters_table} b ON b.unique_id = p.unique_id_r
            WHERE p.match_probability >= {t} AND a.cluster_id <> b.cluster_id
        ) held USING (cluster_id)
    """


def tf_columns(model: dict[str, object]) -> list[str]:
    """The columns a saved model adjusts by term frequency (name_std, phone_std)."""
    columns = {
        str(level["tf_adjustment_column"])
        for comparison in model.get("comparisons", [])  # type: ignore[attr-defined]
        for level in comparison.get("comparison_levels", [])
        if level.get("tf_adjustment_column")
    }
    return sorted(columns)


def _score_changed(
    con: duckdb.DuckDBPyConnection,
    full_input: str,
    model_path: Path,
    floor: float,
    predictions_table: str,
) -> str:
    """Score ``_rescore`` records of ``full_input`` against the others and among themselves;
    return a temp table shaped like ``predictions_table`` (unique_id_l < unique_id_r)."""
    from splink import DuckDBAPI, Linker

    model = load_model(model_path)
    tag = uuid.uuid4().hex[:8]
    new_in, old_in, out = (f"__sharehub_{n}_{tag}" for n in ("new", "old", "scored"))
    con.execute(f"CREATE TEMP TABLE {new_in} AS SELECT * FROM {full_input} SEMI JOIN _rescore USING (unique_id)")
    con.execute(f"CREATE TEMP TABLE {old_in} AS SELECT * FROM {full_input} ANTI JOIN _rescore USING (unique_id)")
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {predictions_table}").fetchall()]
    select = []
    for column in columns:
        base, side = column[:-2], column[-2:]
        if side in ("_l", "_r") and {f"{base}_l", f"{base}_r"} <= set(columns):
            other = f"{base}_r" if side == "_l" else f"{base}_l"
            select.append(f"CASE WHEN unique_id_l > unique_id_r THEN {other} ELSE {column} END AS {column}")
        else:
            select.append(column)
    n_new, n_old = (int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in (new_in, old_in))
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
        for table in (new_in, old_in):
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
    constraints = constraints or Constraints()
    model = load_model(model_path)
    stored = {str(r[0]) for r in con.execute(f"DESCRIBE {FEATURE_HASHES}").fetchall()}
    missing = [c for c in tf_columns(model) if c not in stored]
    if missing:
        raise LinkageError(
            f"{FEATURE_HASHES} lacks the frequency columns {', '.join(missing)} of the model; "
            "re-link in full once (sharehub run --full-relink)"
        )
    changed, status_changed, removed = _diff(con)
    # the model's projection, as the full path clusters it (blank status = NULL, …)
    full_input = create_input_table(con, FEATURES)
    tag = uuid.uuid4().hex[:8]
    recs, pairs = f"__sharehub_recs_{tag}", f"__sharehub_pairs_{tag}"
    scored = reach = out = fixes = None
    try:
        scored = _score_changed(
            con, full_input, model_path, min(review_floor, threshold), predictions_table
        )
        touched = "(SELECT unique_id FROM _rescore UNION ALL SELECT unique_id FROM _removed)"
        fixes = refresh_kept_pairs(
            con, model, predictions_table=predictions_table, features_table=FEATURES,
            hashes_table=FEATURE_HASHES, touched_sql=touched,
        )  # fmt: skip
        decided = ", ".join("('" + u.replace("'", "''") + "')" for u in sorted(constraints.records()))
        seeds = (
            f"{touched[1:-1]} UNION ALL SELECT unique_id FROM _status UNION ALL "
            + _reclustered_for_weights(con, threshold, predictions_table, fixes, clusters_table)
            + (f" UNION ALL SELECT * FROM (VALUES {decided}) AS d(unique_id)" if decided else "")
        )
        # old links too: a component a changed record used to hold together is re-clustered
        links = " UNION ALL ".join([
            f"SELECT unique_id_l, unique_id_r FROM {t} WHERE match_probability >= {threshold!r}"
            for t in (predictions_table, fixes, scored)
        ] + [decision_edges_sql(constraints)])  # fmt: skip
        reach = component_closure(con, seeds, links)
        con.execute(f"CREATE TEMP TABLE {recs} AS SELECT * FROM {full_input} SEMI JOIN {reach} USING (unique_id)")
        con.execute(
            f"""CREATE TEMP TABLE {pairs} AS
                SELECT p.unique_id_l, p.unique_id_r,
                       coalesce(f.match_probability, p.match_probability) AS match_probability
                FROM {predictions_table} p LEFT JOIN {fixes} f USING (unique_id_l, unique_id_r)
                WHERE p.unique_id_l IN (SELECT unique_id FROM {reach})
                  AND p.unique_id_l NOT IN {touched} AND p.unique_id_r NOT IN {touched}
                UNION ALL
                SELECT unique_id_l, unique_id_r, match_probability FROM {scored}
                WHERE unique_id_l IN (SELECT unique_id FROM {reach})"""
        )
        out = cluster_pairs(con, pairs, recs, threshold=threshold, constraints=constraints)
        # pairs and clusters change together (see linkage.cluster.write_tables)
        con.begin()
        try:
            con.execute(
                f"DELETE FROM {predictions_table} WHERE unique_id_l IN {touched} OR unique_id_r IN {touched}"
            )
            apply_refresh(con, fixes, predictions_table, [lv.comparison for lv in tf_levels(model)])
            con.execute(f"INSERT INTO {predictions_table} BY NAME SELECT * FROM {scored}")
            con.execute(
                f"DELETE FROM {clusters_table} WHERE unique_id IN (SELECT unique_id FROM {reach}) "
                f"OR unique_id NOT IN (SELECT unique_id FROM {FEATURES})"
            )
            con.execute(f"INSERT INTO {clusters_table} SELECT unique_id, cluster_id FROM {out}")
            con.commit()
        except BaseException:
            con.rollback()
            raise
        counts = con.execute(
            f"SELECT (SELECT count(*) FROM {scored}), (SELECT count(*) FROM {recs}), "
            f"(SELECT count(*) FROM {clusters_table}), "
            f"(SELECT count(DISTINCT cluster_id) FROM {clusters_table}), "
            f"(SELECT count(*) FROM {fixes})"
        ).fetchall()[0]
    finally:
        for table in (reach, recs, pairs, scored, out, fixes, full_input, "_rescore", "_status", "_removed"):
            if table:
                con.execute(f"DROP TABLE IF EXISTS {table}")
    result = IncrementalResult(
        records=int(counts[2]), changed=changed, rescored=changed,
        status_changed=status_changed, removed=removed, scored_pairs=int(counts[0]),
        reclustered=int(counts[1]), clusters=int(counts[3]), reweighed_pairs=int(counts[4]),
    )  # fmt: skip
    log.info("incremental linkage: %s", result)
    return result

