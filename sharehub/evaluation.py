"""Score the published master index against a truth file (generated data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from sharehub.errors import ContractViolation
from sharehub.warehouse import require_table

TRUTH_COLUMNS = ("feed", "source_key", "true_person_id")


def read_truth(path: Path) -> pd.DataFrame:
    """Read ``feed,source_key,true_person_id``; a clear error if the columns differ."""
    truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ContractViolation(
            f"truth file {path} lacks columns {missing}; found {list(truth.columns)}, "
            f"expected {list(TRUTH_COLUMNS)}"
        )
    return truth[list(TRUTH_COLUMNS)]


def evaluate_published(con: duckdb.DuckDBPyConnection, truth_path: Path) -> Any:
    """Pairwise precision/recall/F1 of ``shared.person_xref`` against the truth file."""
    from linkage.evaluate import evaluate_clusters

    require_table(con, "shared.person_xref")
    clusters = con.execute(
        "SELECT record_id AS unique_id, person_id AS cluster_id FROM shared.person_xref"
    ).df()
    return evaluate_clusters(clusters, read_truth(truth_path))
