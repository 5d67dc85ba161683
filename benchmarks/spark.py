"""Score the same features with the same model on DuckDB and on Spark; compare and time.

Issue 8, item 3 ("Beyond one machine"). One command per size:

    .venv/bin/python benchmarks/spark.py --persons 100000 --seed 42
    # → benchmarks/results/spark-100000.json and a row in benchmarks/results/spark.md

Phases, in one process: generate day 1 → ``sharehub.pipeline.run`` on DuckDB (trains the
model, publishes) → `linkage.predict.link` on DuckDB → start Spark → the same call with
``backend="spark"`` → compare the two. Both links read the same
``linkage.person_features`` with the same model file and write to tables of their own,
so the comparison is of scoring alone: pairs only one side found, the largest
difference in match probability, and whether the clusters are the same partition.

Times: "score" is the scoring step alone (until the scored pairs are a DuckDB table;
for Spark this includes the Parquet round trip), "link" adds clustering and writing,
which both backends share. Spark's start (JVM, jar) is timed on its own. The working
files go to ``--work`` (default: a new temporary folder, removed unless ``--keep``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import harness  # beside this script

from linkage import predict, spark_backend
from linkage.review import constraints
from sharehub import pipeline
from sharehub.generate import generate
from sharehub.settings import Settings, parse_spark_conf
from sharehub.warehouse import connect

log = logging.getLogger("benchmarks.spark")

RESULTS = harness.RESULTS
TABLE = RESULTS / "spark.md"
FEATURES = "linkage.person_features"
NOTE = (
    "score: the scoring step alone, until the scored pairs are a DuckDB table (for Spark "
    "including the Parquet export of the input and the read-back of the pairs); link: "
    "score + clustering + writing linkage tables, the part both backends share; Spark "
    "start: the JVM and session, paid once per process."
)


@contextmanager
def _timed_scoring(module: Any, name: str, into: dict[str, float], key: str) -> Iterator[None]:
    """Time the scoring context manager ``module.name`` up to the moment it yields."""
    original: Callable[..., Any] = getattr(module, name)

    @contextmanager
    def timed(*args: Any, **kwargs: Any) -> Iterator[str]:
        started = time.perf_counter()
        with original(*args, **kwargs) as table:
            into[key] = round(time.perf_counter() - started, 2)
            yield table

    setattr(module, name, timed)
    try:
        yield
    finally:
        setattr(module, name, original)


def _link(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    backend: str,
    config: spark_backend.SparkConfig,
    seconds: dict[str, float],
) -> predict.LinkResult:
    module, name = ((spark_backend, "scored_on_spark") if backend == "spark"
                    else (predict, "_scored_on_duckdb"))  # fmt: skip
    started = time.perf_counter()
    with _timed_scoring(module, name, seconds, f"{backend} score"):
        result = predict.link(
            con, FEATURES, model_path=settings.model_path, threshold=settings.match_threshold,
            constraints=constraints(con), predictions_table=f"bench.{backend}_predictions",
            clusters_table=f"bench.{backend}_clusters", backend=backend, spark=config,
        )  # fmt: skip
    seconds[f"{backend} link"] = round(time.perf_counter() - started, 2)
    log.info("%s: %s", backend, result)
    return result


def _compare(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Pairs on one side only, largest |difference| per pair, and the clusters' partitions."""
    one_side, dp, dw = con.execute(
        """
        SELECT count(*) FILTER (WHERE d.unique_id_l IS NULL OR s.unique_id_l IS NULL),
               max(abs(d.match_probability - s.match_probability)),
               max(abs(d.match_weight - s.match_weight))
        FROM bench.duckdb_predictions d
        FULL JOIN bench.spark_predictions s USING (unique_id_l, unique_id_r)
        """
    ).fetchall()[0]
    members = "SELECT list(unique_id ORDER BY unique_id) FROM bench.{}_clusters GROUP BY cluster_id"
    only_duckdb, only_spark = (
        con.execute(
            f"SELECT count(*) FROM ({members.format(a)} EXCEPT {members.format(b)})"
        ).fetchall()[0][0]
        for a, b in (("duckdb", "spark"), ("spark", "duckdb"))
    )
    return {
        "pairs_on_one_side_only": one_side,
        "max_probability_difference": dp,
        "max_match_weight_difference": dw,
        "clusters_only_on_duckdb": only_duckdb,
        "clusters_only_on_spark": only_spark,
        "identical_clusters": only_duckdb == 0 and only_spark == 0,
    }


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty", "--abbrev=8"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure(
    persons: int, seed: int, work: Path, config: spark_backend.SparkConfig
) -> dict[str, Any]:
    """Run every phase in ``work`` and return the figures for the JSON."""
    district = work / "district"
    # The health front-end defaults to <landing>/../health.db, where generate writes it.
    settings = Settings(
        warehouse=work / "warehouse.duckdb", landing=district / "landing",
        model_path=work / "model.json", seed=seed,
    )  # fmt: skip
    seconds: dict[str, float] = {}
    result: dict[str, Any] = {
        "persons": persons, "seed": seed,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_1min_before": round(os.getloadavg()[0], 2)},
        "command": f"benchmarks/spark.py --persons {persons} --seed {seed}",
        "spark": {"master": config.master, "conf": dict(spark_backend.DEFAULT_CONF, **dict(config.conf))},
        "seconds": seconds,
    }  # fmt: skip
    started = time.perf_counter()
    generate(district, persons, seed, 1)
    seconds["generate"] = round(time.perf_counter() - started, 2)
    con = connect(settings)
    try:
        started = time.perf_counter()
        summary = pipeline.run(con, settings)
        seconds["hub run on DuckDB (trains the model)"] = round(time.perf_counter() - started, 2)
        result["records"] = summary.records
        duck = _link(con, settings, "duckdb", config, seconds)
        started = time.perf_counter()
        session = spark_backend.spark_session(config)
        seconds["spark start"] = round(time.perf_counter() - started, 2)
        result["spark"]["version"] = session.version
        spark = _link(con, settings, "spark", config, seconds)
        result["pairs"] = {"duckdb": duck.scored_pairs, "spark": spark.scored_pairs}
        result["clusters"] = {"duckdb": duck.clusters, "spark": spark.clusters}
        result["comparison"] = _compare(con)
        session.stop()
    finally:
        con.close()
    result["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    return result


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def write_table() -> str:
    """Rebuild benchmarks/results/spark.md from every spark-*.json."""
    runs = sorted(
        (json.loads(p.read_text(encoding="utf-8")) for p in RESULTS.glob("spark-*.json")),
        key=lambda r: (r["persons"], r["measured_at"]),
    )
    header = (
        "| persons | records | pairs | DuckDB score s | DuckDB link s | Spark start s "
        "| Spark score s | Spark link s | identical clusters | max abs Δ probability "
        "| pairs on one side only | master | date | commit |"
    )
    lines = [
        "# Spark backend against DuckDB",
        "",
        "Rebuilt from `spark-*.json` by every run of `benchmarks/spark.py`; what the columns "
        "mean is in docs/scaling.md. Same features, same model file, same machine.",
        "",
        header,
        "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|",
    ]
    for r in runs:
        s, c = r["seconds"], r["comparison"]
        lines.append("| " + " | ".join([
            f"{r['persons']:,}", f"{r['records']:,}", f"{r['pairs']['spark']:,}",
            _cell(s.get("duckdb score")), _cell(s.get("duckdb link")), _cell(s.get("spark start")),
            _cell(s.get("spark score")), _cell(s.get("spark link")),
            "yes" if c["identical_clusters"] else "no", f"{c['max_probability_difference']:.1e}",
            f"{c['pairs_on_one_side_only']:,}", r["spark"]["master"], r["measured_at"][:10],
            r["commit"],
        ]) + " |")  # fmt: skip
    text = "\n".join([*lines, "", NOTE, ""])
    TABLE.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__.splitlines()[0], "spark", note=False,
                            work_holds="deliveries, warehouse, model and Parquet")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument(
        "--conf", default=None, help="extra Spark conf, as SHAREHUB_SPARK_CONF: key=value,key=value"
    )
    args = parser.parse_args(argv)
    harness.quiet_logging("py4j")
    out = harness.out_path(args, "spark")
    with harness.work_folder(args, "sharehub-spark-") as work:
        config = spark_backend.SparkConfig(args.master, work / "spark", parse_spark_conf(args.conf))
        result = measure(args.persons, args.seed, work, config)
    harness.write_json(result, out)
    if out.parent == RESULTS:
        write_table()
    c = result["comparison"]
    sys.stdout.write(
        f"{args.persons:,} persons, {result['records']:,} records, {result['pairs']['spark']:,} "
        f"pairs; seconds {result['seconds']}; identical clusters: {c['identical_clusters']}, "
        f"max |Δp| {c['max_probability_difference']:.1e}, pairs on one side only "
        f"{c['pairs_on_one_side_only']}\nwrote {out}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
