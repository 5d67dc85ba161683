"""Measure linkage accuracy against both baselines on a generated district; write JSON.

Why a script and not only `sharehub evaluate`: the figures in docs/accuracy.md must be
reproducible by one command that runs the whole flow (generate → run → evaluate with
baselines) with nothing left to the reader, and must record how long each step took on
the machine that produced them.

    .venv/bin/python benchmarks/accuracy.py --persons 10000 --seed 42
    # → benchmarks/results/accuracy-10000.json

The working files (deliveries, warehouse, model) go to ``--work`` (default: a new
temporary folder, removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import harness  # beside this script

from linkage.baselines import EXACT_ID, PLAIN_SPLINK
from sharehub import pipeline
from sharehub.evaluation import SHAREHUB, evaluate_with_baselines
from sharehub.generate import generate
from sharehub.settings import Settings
from sharehub.warehouse import connect

log = logging.getLogger("benchmarks.accuracy")

RESULTS = harness.RESULTS
# Issue 4's targets for sharehub on generated data.
TARGETS = {"precision": 0.999, "recall": 0.995, "twin_pairs_merged_share": 0.005}


def _targets(methods: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    ours = methods[SHAREHUB]
    share = ours.get("twin_pairs_merged_share")
    return {
        "precision >= 0.999": ours["precision"] >= TARGETS["precision"],
        "recall >= 0.995": ours["recall"] >= TARGETS["recall"],
        "twin pairs merged <= 0.5%": None if share is None
        else share <= TARGETS["twin_pairs_merged_share"],
        "F1 above exact-ID join": ours["f1"] > methods[EXACT_ID]["f1"],
        "F1 above plain Splink": ours["f1"] > methods[PLAIN_SPLINK]["f1"],
    }


def measure(persons: int, seed: int, work: Path) -> dict[str, Any]:
    """Run the flow once in ``work`` and return every figure docs/accuracy.md cites."""
    load_before = os.getloadavg()[0]
    seconds: dict[str, Any] = {}
    started = time.perf_counter()
    district = work / "district"
    summary = generate(district, persons, seed)
    seconds["generate"] = round(time.perf_counter() - started, 1)

    settings = Settings(
        warehouse=work / "warehouse.duckdb",
        landing=district / "landing",
        health_url=f"sqlite:///{(district / 'health.db').resolve()}",
        model_path=work / "model.json",
        seed=seed,
        progress=False,
    )
    step = time.perf_counter()
    con = connect(settings)
    try:
        run = pipeline.run(con, settings)
    finally:
        con.close()
    seconds["run"] = round(time.perf_counter() - step, 1)
    seconds["run_stages"] = dict(run.seconds)

    step = time.perf_counter()
    con = connect(settings, read_only=True)
    try:
        comparison = evaluate_with_baselines(con, district / "truth.csv", seed=settings.seed,
                                             threshold=settings.match_threshold)
    finally:
        con.close()
    seconds["evaluate_with_baselines"] = round(time.perf_counter() - step, 1)
    seconds["baselines"] = comparison.seconds
    seconds["total"] = round(time.perf_counter() - started, 1)

    methods = comparison.to_dict()["methods"]
    return {
        "persons": persons,
        "seed": seed,
        "measured_on": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    # other work on a shared machine stretches wall times; this says how much
                    "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "commands": [
            f"sharehub generate --persons {persons} --seed {seed} --out DIR",
            "sharehub run --landing DIR/landing --health-url sqlite:///DIR/health.db",
            "sharehub evaluate --truth DIR/truth.csv --baselines",
        ],
        "records_delivered": summary.records,
        "truth_records": summary.truth_rows,
        "true_persons": summary.true_persons,
        "records_linked": run.records,
        "persons_in_index": run.persons,
        "match_threshold": settings.match_threshold,
        "seconds": seconds,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "methods": methods,
        "targets": _targets(methods),
    }


def _report(result: dict[str, Any]) -> str:
    """A few lines for the person who ran the script (written to stdout)."""
    lines = [f"{result['persons']:,} persons, seed {result['seed']}: "
             f"{result['seconds']['total']} s in all",
             f"{'method':<14}{'precision':>10}{'recall':>10}{'F1':>10}{'clusters':>10}"
             f"{'twins merged':>16}"]
    for name, m in result["methods"].items():
        twins = f"{m['twin_pairs_merged']}/{m['twin_pairs']}"
        lines.append(f"{name:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}"
                     f"{m['clusters_predicted']:>10,}{twins:>16}")
    lines += [f"  {'met' if met else 'NOT met'}: {target}"
              for target, met in result["targets"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = harness.parser(__doc__.splitlines()[0], "accuracy",
                          work_holds="deliveries, warehouse and model").parse_args(argv)
    harness.quiet_logging()
    out = harness.out_path(args, "accuracy")
    with harness.work_folder(args, "sharehub-accuracy-") as work:
        result = measure(args.persons, args.seed, work)
    result["note"] = args.note
    harness.write_json(result, out)
    sys.stdout.write(_report(result) + f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
