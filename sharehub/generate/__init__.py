"""Synthetic district generator: the four department feeds of one district, with truth.

The hub's linkage accuracy is measured on this output, so it is made as hard as the feed
README says the real deliveries are (twins, homophones, Excel-damaged IDs, name changes,
newborns before naming, owners living elsewhere), deterministic per seed, and streamed
chunk by chunk so that a 1M-person district fits in bounded memory.

    from sharehub.generate import generate, ErrorRates
    generate(Path("data/gen"), persons=10_000, seed=42)          # day 1: full extracts
    generate(Path("data/gen"), persons=10_000, seed=42, day=2)   # day 2: deltas
"""

from __future__ import annotations

from sharehub.generate.layouts import (
    FEEDS,
    FILE_NAMES,
    HOUSING_HEADER,
    POPULATION_HEADER,
    RECIPIENTS_HEADER,
)
from sharehub.generate.rates import ErrorRates
from sharehub.generate.run import GenerateSummary, generate

__all__ = [
    "FEEDS",
    "FILE_NAMES",
    "HOUSING_HEADER",
    "POPULATION_HEADER",
    "RECIPIENTS_HEADER",
    "ErrorRates",
    "GenerateSummary",
    "generate",
]
