"""Score the published master index against a truth file (generated data), with baselines.

Why baselines in the same run: an F1 of 0.998 means little on its own. Scored on the
same records and the same truth, the exact-ID join (what departments do today) and a
plain Splink model (no Chinese standardisation) show what the hub adds, and on which
kinds of damage. The baselines never write into the published warehouse: the records
they need are copied into an in-memory DuckDB first, so the warehouse can stay open
read-only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from sharehub.errors import ContractViolation
from sharehub.warehouse import require_table

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ("feed", "source_key", "true_person_id")
OPTIONAL_TRUTH_COLUMNS = ("twin_of", "damage")  # written by the generator since issue 4
SHAREHUB = "sharehub"

# The records every method is scored on: those the published index lists. Sorted: plain
# Splink samples rows for training, so its result depends on their order, and the
# physical order of staging.person_records is not fixed (a daily update appends changes).
_RECORDS_SQL = """
    SELECT record_id, name, id_number, sex_raw, birth_raw, phone, address
    FROM staging.person_records
    WHERE record_id IN (SELECT record_id FROM shared.person_xref)
    ORDER BY feed, source_key
"""


def read_truth(path: Path) -> pd.DataFrame:
    """Read ``feed,source_key,true_person_id`` plus ``twin_of`` and ``damage`` when present.

    Older truth files have the first three columns only and are accepted as they are;
    the twin and error-by-cause figures are then left out.
    """
    truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ContractViolation(
            f"truth file {path} lacks columns {missing}; found {list(truth.columns)}, "
            f"expected {list(TRUTH_COLUMNS)}"
        )
    return truth[[*TRUTH_COLUMNS, *(c for c in OPTIONAL_TRUTH_COLUMNS if c in truth.columns)]]


def _published_clusters(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    require_table(con, "shared.person_xref")
    return con.execute(
        "SELECT record_id AS unique_id, person_id AS cluster_id FROM shared.person_xref"
    ).df()


def evaluate_published(con: duckdb.DuckDBPyConnection, truth_path: Path) -> Any:
    """Pairwise precision/recall/F1 of ``shared.person_xref`` against the truth file,
    with twin pairs merged and errors by cause when the truth carries them."""
    from linkage.evaluate import evaluate_clusters

    return evaluate_clusters(_published_clusters(con), read_truth(truth_path))


@dataclass(frozen=True)
class Comparison:
    """sharehub and the baselines scored on the same records against the same truth."""

    reports: dict[str, Any]  # method → linkage.evaluate.EvaluationReport
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": {name: report.to_dict() for name, report in self.reports.items()},
            "seconds": dict(self.seconds),
        }


def copy_records(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding ``person_records``: the published index's records
    with the columns the baselines read, copied from the warehouse."""
    require_table(con, "staging.person_records")
    require_table(con, "shared.person_xref")
    records = con.sql(_RECORDS_SQL).to_arrow_table()  # noqa: F841  (read by duckdb)
    memory = duckdb.connect()
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    memory.execute(f"SET threads = {int(threads)}")
    memory.execute("CREATE TABLE person_records AS SELECT * FROM records")
    return memory


def evaluate_with_baselines(
    con: duckdb.DuckDBPyConnection, truth_path: Path, *, seed: int, threshold: float
) -> Comparison:
    """Score sharehub, the exact-ID join and plain Splink on the published records.

    ``seed`` and ``threshold`` are the hub's own (``SHAREHUB_SEED``,
    ``SHAREHUB_MATCH_THRESHOLD``), so the plain model is trained and cut the same way.
    """
    from linkage.baselines import (
        EXACT_ID,
        PLAIN_SPLINK,
        exact_id_clusters,
        plain_splink_clusters,
    )
    from linkage.evaluate import evaluate_clusters

    truth = read_truth(truth_path)
    reports: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    reports[SHAREHUB] = evaluate_clusters(_published_clusters(con), truth)
    memory = copy_records(con)
    try:
        started = time.perf_counter()
        records = memory.execute("SELECT record_id, id_number FROM person_records").df()
        reports[EXACT_ID] = evaluate_clusters(exact_id_clusters(records), truth)
        seconds[EXACT_ID] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        plain = plain_splink_clusters(memory, "person_records", seed=seed, threshold=threshold)
        reports[PLAIN_SPLINK] = evaluate_clusters(plain.clusters, truth)
        seconds[PLAIN_SPLINK] = round(time.perf_counter() - started, 2)
    finally:
        memory.close()
    for name, report in reports.items():
        log.info("%s: precision %.4f recall %.4f F1 %.4f", name, report.precision,
                 report.recall, report.f1)
    return Comparison(reports, seconds)
