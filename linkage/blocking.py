"""Blocking rules: which record pairs the model is allowed to score.

Blocking decides the cost of linkage. At district scale, blocking on the full name alone
never finishes: common names (张伟, 王芳 …) form blocks of thousands, whose pairs grow with
the square of the block. Every rule here therefore pairs a name-like key with a key that
splits it (a birth date or month, a dwelling), or uses a key that is nearly unique on its
own (the resident ID). Each rule's block size is then bounded by a household or by the
people born in one month with one name, so the number of comparisons grows roughly
linearly with the number of records; `count_comparisons` measures it before a run.

The rules are data (Splink `block_on` creators), so the same list serves DuckDB now and
Spark later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
from splink import block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.blocking_rule_creator import BlockingRuleCreator

from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

BlockingRuleLike = BlockingRuleCreator | str | dict[str, Any]


def prediction_blocking_rules() -> list[BlockingRuleCreator]:
    """The rules whose union of pairs is scored at prediction time.

    Why each rule exists (the failure it recovers):

    1. ``id_norm``: same resident ID; recovers name changes (曾用名) and typed names.
    2. ``birth_date, surname_pinyin``: a damaged or missing ID with a typo in the given
       name. Twins land here too and are told apart by the comparisons.
    3. ``name_pinyin, birth_ym``: homophone or traditional-character names in the
       civil-affairs roll, which only knows the birth year and month.
    4. ``phone_std, birth_ym``: the same phone and birth month when the name is mangled
       and the ID missing; a relative's phone shared by a household stays bounded because
       the birth month splits it.
    5. ``addr_key, given_pinyin``: same room and given name when the surname was mistyped
       (or read with another surname reading) and the birth is missing.
    6. ``addr_key, birth_ym``: same room and birth month; recovers newborns registered
       before they were named (张丽之子) and changed names without an ID.
    7. ``name_pinyin`` and the ID's first ten characters (region and birth year), and
    8. ``name_pinyin`` and its last eight (birth month and day, sequence, check digit):
       a mistyped ID keeps one of the two halves intact. Housing owners carry only a
       name and an ID, so for them this is the only way in when the ID was mistyped.
    """
    return [
        block_on("id_norm"),
        block_on("birth_date", "surname_pinyin"),
        block_on("name_pinyin", "birth_ym"),
        block_on("phone_std", "birth_ym"),
        block_on("addr_key", "given_pinyin"),
        block_on("addr_key", "birth_ym"),
        block_on("name_pinyin", "substr(id_norm, 1, 10)"),
        block_on("name_pinyin", "substr(id_norm, 11, 8)"),
    ]


def training_blocking_rules() -> list[BlockingRuleCreator]:
    """Blocking rules for the EM sessions, chosen so every comparison is estimated.

    EM cannot estimate a comparison whose columns are in its blocking rule. Blocking on
    the ID estimates name, birth, sex and contact; on name and birth month, the ID (and
    sex and contact); on room and birth month, name and ID again from pairs that include
    twins and civil-affairs rows without IDs, where homophone names and two different
    valid IDs actually occur. Each block holds mostly true matches, as EM needs, and
    each is small.
    """
    return [
        block_on("id_norm"),
        block_on("name_pinyin", "birth_ym"),
        block_on("addr_key", "birth_ym"),
    ]


def deterministic_rules() -> list[BlockingRuleCreator]:
    """Near-certain match rules used only to estimate the prior match probability."""
    return [
        block_on("id_norm", "surname_pinyin"),
        block_on("name_std", "birth_date", "addr_key"),
    ]


def release_blocking_analysis_views(con: duckdb.DuckDBPyConnection) -> None:
    """Unregister the ``result_df`` view Splink's blocking analysis leaves on the
    connection (splink 5.0.0), so the caller's connection is as it was given."""
    try:
        con.unregister("result_df")
    except duckdb.Error:
        log.debug("no result_df view to unregister")


@dataclass(frozen=True)
class RuleCount:
    """Comparisons one blocking rule generates, alone and after the rules before it."""

    blocking_rule: str
    marginal_comparisons: int
    cumulative_comparisons: int
    total_possible_comparisons: int
    is_estimate: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_comparisons(
    con: duckdb.DuckDBPyConnection,
    features_table: str,
    blocking_rules: Sequence[BlockingRuleLike] | None = None,
    *,
    record_sample_proportion: float = 1.0,
) -> list[RuleCount]:
    """Count the comparisons each blocking rule adds, through Splink's blocking analysis.

    Run this before a model at a new scale: it is the cheap way to learn that a rule
    explodes. Counts are exact with ``record_sample_proportion=1.0``; at millions of
    records pass e.g. 0.05 to estimate from a 5 % sample on each side of the join.
    """
    from splink import DuckDBAPI

    from linkage.model import create_input_table, drop_input_table

    rules = list(blocking_rules) if blocking_rules is not None else prediction_blocking_rules()
    if not rules:
        raise LinkageError("count_comparisons needs at least one blocking rule; got none")
    input_table = create_input_table(con, features_table)
    try:
        db_api = DuckDBAPI(connection=con)
        sdf = db_api.register(input_table)
        try:
            records = count_comparisons_from_blocking_rules(
                sdf,
                blocking_rules=rules,
                link_type="dedupe_only",
                unique_id_column_name="unique_id",
                record_sample_proportion=record_sample_proportion,
            )
        except Exception as exc:  # splink raises bare ValueError / duckdb errors
            raise LinkageError(f"blocking analysis on {features_table} failed: {exc}") from exc
        finally:
            db_api.delete_tables_created_by_splink_from_db()
            release_blocking_analysis_views(con)
    finally:
        drop_input_table(con, input_table)
    counts = [
        RuleCount(
            blocking_rule=str(r["blocking_rule"]),
            marginal_comparisons=int(r["marginal_comparison_count"]),
            cumulative_comparisons=int(r["cumulative_comparison_count"]),
            total_possible_comparisons=int(r["total_possible_comparison_count"]),
            is_estimate=bool(r["is_estimate"]),
        )
        for r in records
    ]
    for c in counts:
        log.info(
            "blocking rule %s: %d comparisons (cumulative %d)",
            c.blocking_rule,
            c.marginal_comparisons,
            c.cumulative_comparisons,
        )
    return counts
