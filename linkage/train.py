"""Train the linkage model reproducibly and save it as JSON.

Training is a separate step from prediction on purpose: a model is trained once,
reviewed (its m/u values are readable in the JSON), versioned, and then loaded by every
linkage run, so that two runs over the same records give the same links.

Reproducibility: u probabilities come from a hash-based sample of records keyed by
``seed``; the EM sessions are deterministic given their blocked pairs (their optional
down-sampling is hash-based too); the model uid is fixed; and parameters are rounded to
``SIGNIFICANT_DIGITS`` before saving, so that float sums computed in a different order
on another thread cannot change a byte of the JSON.

Two guards run on the trained parameters before they are saved: no learned m may fall
below ``LEARNED_M_FLOOR`` (clean training data must not turn a mis-keyed field into a
veto), and a level the data never showed gets m = u, i.e. no evidence, rather than
Splink's generic defaults.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import duckdb

from linkage.blocking import (
    deterministic_rules,
    release_blocking_analysis_views,
    training_blocking_rules,
)
from linkage.model import (
    DIFFERENT_VALID_IDS_M,
    create_input_table,
    drop_input_table,
    settings_creator,
)
from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

# Share of true matches the deterministic rules (same ID and surname; same name, birth
# date and room) are assumed to find; used only for the prior match probability.
DETERMINISTIC_RECALL = 0.7
SIGNIFICANT_DIGITS = 10
# Smallest m a learned level may keep (see `_floor_m`); ten times DIFFERENT_VALID_IDS_M.
LEARNED_M_FLOOR = 10 * DIFFERENT_VALID_IDS_M


def train_model(
    con: duckdb.DuckDBPyConnection,
    features_table: str,
    *,
    seed: int,
    model_path: Path,
    u_max_pairs: float = 5e6,
    em_max_pairs: float | None = 5e6,
) -> dict[str, Any]:
    """Estimate the model on ``features_table`` and write it to ``model_path``.

    Steps: the prior from deterministic rules, u probabilities by seeded random
    sampling, then m probabilities by EM on each training blocking rule. Returns the
    saved settings dict (the JSON content).
    """
    from splink import DuckDBAPI, Linker

    model_path = Path(model_path)
    input_table = create_input_table(con, features_table)
    db_api = DuckDBAPI(connection=con)
    try:
        linker = Linker(db_api.register(input_table), settings_creator(), log_level=None)
        fit(linker, deterministic=deterministic_rules(), em_rules=training_blocking_rules(),
            seed=seed, u_max_pairs=u_max_pairs, em_max_pairs=em_max_pairs)
        model = linker.misc.save_model_to_json(None)
    except LinkageError:
        raise
    except Exception as exc:  # splink and duckdb raise many unrelated types
        raise LinkageError(f"training on {features_table} failed: {exc}") from exc
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        release_blocking_analysis_views(con)
        drop_input_table(con, input_table)

    model = _rounded(model)
    _floor_m(model)
    untrained = untrained_levels(model)
    if untrained:
        _fill_unobserved(model, u_sample_pairs=u_max_pairs)
        log.warning(
            "levels not observed in training data: %s (u unseen among %.0f random pairs "
            "-> u = 3/pairs; m unseen -> no evidence)",
            "; ".join(untrained),
            u_max_pairs,
        )
    _write_json(model, model_path)
    log.info(
        "trained linkage model on %s (seed %d): prior %.3g, written to %s",
        features_table,
        seed,
        model["probability_two_random_records_match"],
        model_path,
    )
    return model


def fit(
    linker: Any,
    *,
    deterministic: Any,
    em_rules: Any,
    seed: int,
    u_max_pairs: float,
    em_max_pairs: float | None,
) -> None:
    """The training recipe, shared with the plain-Splink baseline so both are trained alike:
    prior from near-certain rules, u from seeded random sampling, m from one EM session per
    rule."""
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(deterministic), recall=DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    for rule in em_rules:
        training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=em_max_pairs)


def untrained_levels(model: dict[str, Any]) -> list[str]:
    """``comparison: level`` for each non-null level lacking a numeric m or u."""
    missing = []
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            for key in ("m_probability", "u_probability"):
                value = level.get(key)
                if not isinstance(value, int | float) or value <= 0:
                    label = level.get("label_for_charts", level.get("sql_condition"))
                    missing.append(f"{comparison['output_column_name']}: {label} ({key})")
    return missing


def _floor_m(model: dict[str, Any]) -> None:
    """Keep learned m probabilities at or above ``LEARNED_M_FLOOR``.

    EM on clean data drives the m of a level it only saw among non-matches towards zero
    (a sex mismatch, when the training data has no mis-keyed sex), which would make that
    level veto any link. Real feeds do carry such slips, so no learned level may be as
    decisive as two different valid IDs, whose m is fixed by design below this floor.
    """
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            m = level.get("m_probability")
            if level.get("fix_m_probability") or not isinstance(m, int | float):
                continue
            if 0 <= m < LEARNED_M_FLOOR:
                level["m_probability"] = LEARNED_M_FLOOR


def _fill_unobserved(model: dict[str, Any], *, u_sample_pairs: float) -> None:
    """Give levels that training did not observe an honest value instead of Splink's defaults.

    Splink would otherwise fill them with generic defaults at prediction time, which can
    be strong evidence either way for a situation the data never showed.

    - m learned, u never seen among ``u_sample_pairs`` random pairs: the level is rarer
      than the sample can resolve among non-matches (two strangers' IDs one edit apart —
      impossible between two *valid* IDs, whose check digit catches any single change).
      Its u is set to the rule-of-three upper bound ``3 / u_sample_pairs``: conservative,
      yet strong evidence. Setting u = m instead (no evidence) threw away every ID typo
      once the district was large enough for the random sample to miss them, and recall
      fell at 100k persons (docs/accuracy.md).
    - m never seen (the data had no matches at that level): no evidence, m = u.
    """
    bound = 3.0 / max(u_sample_pairs, 1.0)
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            m_ok, u_ok = isinstance(m, int | float) and m > 0, isinstance(u, int | float) and u > 0
            if m_ok and not u_ok:
                level["u_probability"] = min(float(m), bound)
            elif u_ok and not m_ok:
                level["m_probability"] = u
            elif not m_ok and not u_ok:
                level["m_probability"] = level["u_probability"] = 1e-6


def load_model(model_path: Path) -> dict[str, Any]:
    """Read a saved model, failing clearly if it is absent or not a trained model."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise LinkageError(
            f"model file {model_path} does not exist; train one with "
            "linkage.train.train_model first"
        )
    try:
        model = json.loads(model_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LinkageError(f"model file {model_path} is not readable JSON: {exc}") from exc
    if not isinstance(model, dict) or "comparisons" not in model:
        raise LinkageError(f"model file {model_path} is not a Splink settings dict")
    trained = any(
        isinstance(level.get("m_probability"), int | float)
        for comparison in model["comparisons"]
        for level in comparison.get("comparison_levels", [])
        if not level.get("is_null_level")
    )
    if not trained:
        raise LinkageError(f"model file {model_path} holds no trained m probabilities")
    return model


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def _rounded(model: dict[str, Any]) -> dict[str, Any]:
    model = json.loads(json.dumps(model))
    model["probability_two_random_records_match"] = _round(
        float(model["probability_two_random_records_match"])
    )
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            for key in ("m_probability", "u_probability"):
                if isinstance(level.get(key), float):
                    level[key] = _round(level[key])
    return model


def _write_json(model: dict[str, Any], model_path: Path) -> None:
    """Write atomically: a reader sees the old model or the new one, never half."""
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(model_path.name + ".tmp")
    tmp.write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, model_path)
