"""Levels that training did not observe get honest values, not Splink's defaults."""

from __future__ import annotations

from typing import Any

from linkage.train import _fill_unobserved


def model(levels: list[dict[str, Any]]) -> dict[str, Any]:
    return {"comparisons": [{"output_column_name": "id", "comparison_levels": levels}]}


def test_unseen_u_becomes_the_rule_of_three_bound() -> None:
    levels = [
        {"is_null_level": True},
        {"label_for_charts": "one edit", "m_probability": 0.02, "u_probability": None},
        {"label_for_charts": "swapped", "m_probability": None, "u_probability": 0.001},
        {"label_for_charts": "never", "m_probability": None, "u_probability": None},
        {"label_for_charts": "rare but m tiny", "m_probability": 1e-8, "u_probability": None},
    ]
    m = model(levels)
    _fill_unobserved(m, u_sample_pairs=5e6)
    one_edit, swapped, never, tiny = m["comparisons"][0]["comparison_levels"][1:]
    assert one_edit["u_probability"] == 3 / 5e6  # strong evidence (~ +12.7 bits), not zero
    assert one_edit["m_probability"] == 0.02
    assert swapped["m_probability"] == swapped["u_probability"] == 0.001  # no evidence
    assert never["m_probability"] == never["u_probability"]
    assert tiny["u_probability"] == 1e-8  # never stronger evidence than m allows
