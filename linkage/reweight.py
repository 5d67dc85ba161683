"""Kept pairs brought to today's term frequencies by arithmetic, not by scoring them again.

A name (or phone) held by more records today than yesterday weighs less as evidence: every
pair agreeing on it exactly gets a smaller term-frequency adjustment. The daily increment
used to score every holder of such a value again among themselves — at 1M persons a 3 %
delivery moved the counts of names held by 370k records, and re-scoring them was the
largest piece of the day-2 link stage. But the adjustment of a stored pair is a closed
formula of the value's frequency (Splink: ``w · (log2 u_exact − log2 tf)`` on the level
that carries it), and a pair's match weight is the prior plus its per-comparison weights.
So a stored pair is brought up to date by recomputing just that term and the sum, with
the SQL Splink itself generates for them (:func:`weight_parts`), from the value's count
now; the result is what a full re-score computes (the tests compare them).

What arithmetic cannot do is find pairs that were *not* stored: a pair below the review
floor yesterday whose weight rose above it. A weight rises only when a frequency falls, so
`linkage.incremental` still scores the holders of values whose count fell among
themselves; a count that rose only lowers weights, and a pair below the floor stays there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

REWEIGHTED = "_reweighted"
# (col, v, cur_n): values whose count moved, whose kept pairs are re-weighted
MOVED_VALUES = "_tf_values"


@dataclass(frozen=True)
class TfLevel:
    """The comparison level that a term-frequency column adjusts."""

    comparison: str  # output column name: gamma_<comparison>, mw_tf_adj_<comparison>
    column: str  # the adjusted input column (name_std, phone_std)
    gamma: int  # the level's comparison vector value
    adjustment_sql: str  # CASE … END AS mw_tf_adj_<comparison>, reading tf_<column>_l/_r


@dataclass(frozen=True)
class WeightParts:
    """The SQL Splink computes a pair's weight with, for a saved model."""

    levels: tuple[TfLevel, ...]
    match_weight_sql: str  # prior + every mw_* and mw_tf_adj_* column, in Splink's order
    match_probability_sql: str
    floor_weight: float  # a pair is kept when its match weight is at least this


def weight_parts(model: Mapping[str, Any], floor: float) -> WeightParts:
    """Splink's own SQL for the term-frequency adjustments and the combined weight.

    Why Splink's generator and not a formula written here: the result must be bit for bit
    what ``predict`` gives a pair (the same float operations in the same order), or a
    re-weighted pair and a freshly scored one could round differently when published.
    """
    from splink.internals.dialects import SplinkDialect
    from splink.internals.misc import threshold_args_to_match_weight
    from splink.internals.predict import _combine_prior_and_mws
    from splink.internals.settings_creator import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(dict(model)).get_settings("duckdb")
    levels = []
    terms: list[str] = []
    for comparison in settings.comparisons:
        terms += comparison._match_weight_columns_to_sum
        for level in comparison.comparison_levels:
            if not level._has_tf_adjustments or level._tf_adjustment_weight == 0:
                continue
            cases = "\n".join(
                cl._tf_adjustment_sql(comparison._gamma_column_name, comparison.comparison_levels)
                for cl in comparison.comparison_levels
            )
            levels.append(TfLevel(
                comparison=comparison.output_column_name,
                column=level._tf_adjustment_input_column_name,
                gamma=int(level.comparison_vector_value),
                adjustment_sql=f"CASE\n{cases}\nEND",
            ))  # fmt: skip
    weight, probability = _combine_prior_and_mws(
        settings._probability_two_random_records_match, terms, SplinkDialect.from_string("duckdb")
    )
    floor_weight = threshold_args_to_match_weight(floor, None)
    assert floor_weight is not None  # a probability given, a weight returned
    return WeightParts(tuple(levels), weight, probability, float(floor_weight))


def reweight_kept_pairs(
    con: duckdb.DuckDBPyConnection,
    parts: WeightParts,
    *,
    predictions_table: str,
    holders_table: str,
    totals: Mapping[str, int],
    excluded: str,
) -> int:
    """Temp table ``REWEIGHTED``: every pair of ``predictions_table`` (but those matching
    the condition ``excluded``: pairs scored afresh) that agrees exactly on a value of
    ``MOVED_VALUES``, with its adjustments, weight and probability as a full re-score
    gives them, plus ``old_match_probability``. Returns the number of such pairs.

    ``holders_table`` holds each record's values of the adjusted columns
    (``linkage.feature_hashes``: record_id and one column per adjusted column);
    ``totals`` the non-null values of each adjusted column now (the frequencies'
    denominator, as Splink counts it). A pair agrees exactly on the value when it sits on
    the adjusting level, so the left record's value is the pair's.
    """
    # a fingerprint table written without a column's values has no moved values of it
    held = {str(r[0]) for r in con.execute(f"DESCRIBE {holders_table}").fetchall()}
    levels = [lv for lv in parts.levels if lv.column in totals and lv.column in held]
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {predictions_table}").fetchall()]
    if not levels or not all(f"mw_tf_adj_{lv.comparison}" in columns for lv in levels):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {REWEIGHTED} AS "
                    f"SELECT *, match_probability AS old_match_probability "
                    f"FROM {predictions_table} WHERE false")  # fmt: skip
        return 0
    joins, found, frequencies, adjusted = [], [], [], []
    for i, lv in enumerate(levels):
        joins.append(
            f"LEFT JOIN {MOVED_VALUES} t{i} ON t{i}.col = '{lv.column}' "
            f"AND t{i}.v = h.{lv.column} AND p.gamma_{lv.comparison} = {lv.gamma}"
        )
        found.append(f"t{i}.v IS NOT NULL")
        tf = f"CAST(t{i}.cur_n AS DOUBLE) / {int(totals[lv.column])}"
        frequencies.append(f"{tf} AS tf_{lv.column}_l, {tf} AS tf_{lv.column}_r, "
                           f"t{i}.v IS NOT NULL AS _moved_{i}")  # fmt: skip
        adjusted.append(
            f"CASE WHEN _moved_{i} THEN ({lv.adjustment_sql}) "
            f"ELSE mw_tf_adj_{lv.comparison} END AS mw_tf_adj_{lv.comparison}"
        )
    keep = [c for c in columns if c not in {f"mw_tf_adj_{lv.comparison}" for lv in levels}
            and c not in ("match_weight", "match_probability")]  # fmt: skip
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {REWEIGHTED} AS
        WITH moved AS (
            SELECT p.*, {", ".join(frequencies)}
            FROM {predictions_table} p
            JOIN {holders_table} h ON h.record_id = p.unique_id_l
            {" ".join(joins)}
            WHERE ({" OR ".join(found)}) AND NOT ({excluded})
        ),
        adjusted AS (SELECT {", ".join(keep)}, match_probability AS old_match_probability,
                            {", ".join(adjusted)} FROM moved)
        SELECT {", ".join(c for c in columns if c not in ("match_weight", "match_probability"))},
               {parts.match_weight_sql} AS match_weight,
               {parts.match_probability_sql} AS match_probability,
               old_match_probability
        FROM adjusted"""
    )
    return int(con.execute(f"SELECT count(*) FROM {REWEIGHTED}").fetchall()[0][0])
