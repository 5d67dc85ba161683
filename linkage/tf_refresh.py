"""Bring kept pairs up to today's term frequencies, without scoring them again.

An incremental run scores only the records whose features changed; every other pair
keeps the scores of the day it was scored. But a pair agreeing on a name (or a phone)
weighs that agreement by how rare the value is, and each day's records move every
value's share — so kept pairs drift from what a full re-link would give, and re-scoring
every holder of a value whose count moved re-scored a third of a 1M-person district on a
3 % day.

Splink's adjustment for a pair at a frequency-adjusted level is

    weight · (log2(u_exact) − log2(max(tf_l, tf_r, tf_min)))

(``splink.internals.comparison_level._tf_adjustment_sql``), ``tf`` being the value's
count over all non-null values of the column. It adds to the match weight, so the pair's
weight today is its stored weight plus

    weight · (log2(max(tf_then_l, tf_then_r, tf_min)) − log2(max(tf_now_l, tf_now_r, tf_min)))

with the counts of the last linkage (``linkage.feature_hashes`` keeps each record's
values) and of today. `refresh_kept_pairs` computes that for every kept pair at such a
level, in SQL; its probabilities then equal a full re-link's up to float rounding.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

log = logging.getLogger(__name__)


def projected(column: str) -> str:
    """A column as the model projection reads it (`linkage.model.create_input_table`)."""
    return f"NULLIF(trim(CAST({column} AS VARCHAR)), '')"


@dataclass(frozen=True)
class TfLevel:
    """A comparison level adjusted by term frequency, as a saved model declares it."""

    comparison: str
    column: str
    gamma: int
    weight: float
    minimum: float


def tf_levels(model: dict[str, Any]) -> list[TfLevel]:
    """The frequency-adjusted levels of a saved model, with the gamma value Splink gives
    them (non-null levels count down to 0 in order; the null level is -1)."""
    found = []
    for comparison in model.get("comparisons", []):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for i, level in enumerate(levels):
            if level.get("tf_adjustment_column") and float(level.get("tf_adjustment_weight", 1.0)):
                found.append(TfLevel(
                    str(comparison["output_column_name"]), str(level["tf_adjustment_column"]),
                    len(levels) - 1 - i, float(level.get("tf_adjustment_weight", 1.0)),
                    float(level.get("tf_minimum_u_value") or 0.0),
                ))  # fmt: skip
    return found


def refresh_kept_pairs(
    con: duckdb.DuckDBPyConnection,
    model: dict[str, Any],
    *,
    predictions_table: str,
    features_table: str,
    hashes_table: str,
    touched_sql: str,
) -> str:
    """Create a temp table of the kept pairs (neither record in ``touched_sql``) whose
    weight moves with today's frequencies: unique_id_l, unique_id_r, match_weight,
    match_probability (today's) and ``d_<comparison>`` (the change of each adjustment).

    Frequencies: today's over ``features_table``, the last linkage's over ``hashes_table``
    (record_id plus one column per adjusted column). Returns the table's name.
    """
    tag = uuid.uuid4().hex[:8]
    out = f"__sharehub_tf_fix_{tag}"
    levels = tf_levels(model)
    columns = sorted({lv.column for lv in levels})
    freq = {c: f"__sharehub_tf_{c}_{tag}" for c in columns}
    try:
        for column, table in freq.items():
            value = projected(column)
            con.execute(
                f"""CREATE TEMP TABLE {table} AS
                WITH now AS (
                    SELECT {value} AS v, count(*) / (SELECT count({value}) FROM {features_table}) AS tf
                    FROM {features_table} WHERE {value} IS NOT NULL GROUP BY 1
                ), then_ AS (
                    SELECT {column} AS v, count(*) / (SELECT count({column}) FROM {hashes_table}) AS tf
                    FROM {hashes_table} WHERE {column} IS NOT NULL GROUP BY 1
                )
                SELECT v, now.tf AS tf_now, then_.tf AS tf_then FROM now JOIN then_ USING (v)
                WHERE now.tf <> then_.tf"""
            )
        joins, deltas = [], []
        for side in ("l", "r"):
            joins.append(f"JOIN {features_table} f_{side} ON f_{side}.unique_id = p.unique_id_{side}")
        for i, lv in enumerate(levels):
            for side in ("l", "r"):
                joins.append(
                    f"LEFT JOIN {freq[lv.column]} t{i}{side} "
                    f"ON t{i}{side}.v = {projected(f'f_{side}.{lv.column}')}"
                )
            # as Splink writes it: each side's frequency, or the other's when it has none
            then_, now = (
                f"greatest(coalesce(t{i}l.{x}, t{i}r.{x}), coalesce(t{i}r.{x}, t{i}l.{x}), "
                f"{lv.minimum!r})"
                for x in ("tf_then", "tf_now")
            )
            deltas.append(
                f"CASE WHEN p.gamma_{lv.comparison} = {lv.gamma} "
                f"AND coalesce(t{i}l.v, t{i}r.v) IS NOT NULL "
                f"THEN {lv.weight!r} * (log2({then_}) - log2({now})) ELSE 0 END AS d_{lv.comparison}"
            )
        at_levels = " OR ".join(f"p.gamma_{lv.comparison} = {lv.gamma}" for lv in levels) or "false"
        total = " + ".join(f"d.d_{lv.comparison}" for lv in levels) or "0"
        con.execute(
            f"""CREATE TEMP TABLE {out} AS
            WITH d AS (
                SELECT p.unique_id_l, p.unique_id_r, p.match_weight, {", ".join(deltas) or "0 AS d_none"}
                FROM {predictions_table} p {" ".join(joins)}
                WHERE ({at_levels})
                  AND p.unique_id_l NOT IN {touched_sql} AND p.unique_id_r NOT IN {touched_sql}
            )
            SELECT d.unique_id_l, d.unique_id_r, d.match_weight + {total} AS match_weight,
                   1.0 / (1.0 + pow(2.0, -(d.match_weight + {total}))) AS match_probability,
                   {", ".join(f"d.d_{lv.comparison}" for lv in levels) or "NULL AS d_none"}
            FROM d WHERE {total} <> 0"""
        )
    finally:
        for table in freq.values():
            con.execute(f"DROP TABLE IF EXISTS {table}")
    n = int(con.execute(f"SELECT count(*) FROM {out}").fetchall()[0][0])
    log.info("%d kept pairs re-weighed for today's term frequencies", n)
    return out


def apply_refresh(
    con: duckdb.DuckDBPyConnection, fixes: str, predictions_table: str, comparisons: Sequence[str]
) -> None:
    """Write the refreshed weights into ``predictions_table`` (the caller's transaction)."""
    present = {str(r[0]) for r in con.execute(f"DESCRIBE {predictions_table}").fetchall()}
    fixed = {str(r[0]) for r in con.execute(f"DESCRIBE {fixes}").fetchall()}
    sets = ["match_weight = f.match_weight", "match_probability = f.match_probability"]
    sets += [
        f"mw_tf_adj_{c} = p.mw_tf_adj_{c} + f.d_{c}"
        for c in comparisons
        if f"mw_tf_adj_{c}" in present and f"d_{c}" in fixed
    ]
    con.execute(
        f"UPDATE {predictions_table} p SET {', '.join(sets)} FROM {fixes} f "
        "WHERE p.unique_id_l = f.unique_id_l AND p.unique_id_r = f.unique_id_r"
    )
