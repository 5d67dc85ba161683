"""Time every pipeline stage on a generated district (day 1, then the day-2 increment),
record peak memory and accuracy, and time plain Splink on the same records; write JSON.

Issue 8, item 1. One command per size:

    .venv/bin/python benchmarks/pipeline.py --persons 100000 --seed 42
    # → benchmarks/results/pipeline-100000.json and a row in benchmarks/results/README.md

Phases: generate day 1 → ``sharehub.pipeline.run`` (trains the model) → plain Splink
(same blocking and comparisons on naively cleaned columns) on a copy of the day-1
records, and both scored against day 1's truth → generate day 2 → in a fresh child
process, as a scheduled run starts, run again (incremental) and score the published index
against the two-day truth.

``--snapshot`` copies the state before day 2 aside (``WORK/before-day2``);
``--day2-only --work WORK --out FILE`` then reruns just the increment from it, for
profiling a change to the day-2 path without repeating day 1.

Wall time per stage comes from the pipeline's own stage timer; inside ``link`` and
``publish`` a few library functions are wrapped to split train from predict + cluster and
to time the Great Expectations validation. Memory: ``ru_maxrss`` after each stage (the
process peak so far) and the peak of ``VmRSS`` sampled every 0.1 s while the stage ran.
The JSON is rewritten after every phase, so an aborted large run still leaves figures.

The working files go to ``--work`` (default: a new temporary folder, removed afterwards
unless ``--keep``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness  # beside this script

from sharehub import pipeline
from sharehub.evaluation import copy_records, evaluate_published, read_truth
from sharehub.generate import generate
from sharehub.settings import Settings
from sharehub.warehouse import connect

log = logging.getLogger("benchmarks.pipeline")

RESULTS = harness.RESULTS
TABLE = RESULTS / "README.md"
# Issue 8, item 2: targets on a 2-core, 24 GiB machine at 1M persons.
TARGET_DAY1_SECONDS = 20 * 60
TARGET_PEAK_MIB = 8 * 1024
TARGET_DAY2_SHARE = 0.10
TARGET_LINK_RATIO = 1.5
SNAPSHOT = "before-day2"

# Library functions timed inside a stage: (module, attribute, label). The pipeline
# imports them at call time (``from linkage.train import train_model`` inside
# ``pipeline.link``), so replacing the module attribute is enough.
INNER = (
    ("linkage.train", "train_model", "train"),
    ("linkage.predict", "link", "predict + cluster (full)"),
    ("linkage.incremental", "link_incremental", "predict + cluster (incremental)"),
    ("linkage.changes", "standardise", "standardise records"),
    ("sharehub.publish.expectations", "check", "GE validation"),
    ("sharehub.metrics", "record", "metrics"),
)


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _maxrss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class Sampler:
    """Samples the process's resident memory in a thread; ``peak(scope)`` since the last
    ``reset(scope)``. Phases and stages nest, so each scope keeps its own peak (one shared
    peak, reset at every stage, made a phase report only its last stage's)."""

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._peaks: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            rss = _rss_mib()
            with self._lock:
                for scope, peak in self._peaks.items():
                    self._peaks[scope] = max(peak, rss)

    def reset(self, scope: str = "phase") -> None:
        with self._lock:
            self._peaks[scope] = _rss_mib()

    def peak(self, scope: str = "phase") -> int:
        with self._lock:
            return round(max(self._peaks.get(scope, 0.0), _rss_mib()))


class Recorder:
    """The pipeline's stage callback: per stage, peak RSS while it ran and ru_maxrss after."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.memory: dict[str, dict[str, int]] = {}
        self.inner: dict[str, float] = {}
        self._stage: str | None = None

    def __call__(self, event: str, text: str) -> None:
        if event == "start":
            self._stage = text
            self.sampler.reset("stage")
            log.info("stage %s started (RSS %.0f MiB)", text, _rss_mib())
        elif event == "done" and self._stage and text.startswith(self._stage):
            self.memory[self._stage] = {"peak_rss_mib": self.sampler.peak("stage"),
                                        "maxrss_after_mib": _maxrss_mib()}
            log.info("stage %s, peak RSS %d MiB", text, self.memory[self._stage]["peak_rss_mib"])
            self._stage = None
        else:
            log.info("%s", text)

    def reset(self) -> None:
        self.memory, self.inner = {}, {}


@contextmanager
def _wrapped(recorder: Recorder) -> Iterator[None]:
    """Replace the INNER functions with timed versions for the duration."""
    saved: list[tuple[Any, str, Callable[..., Any]]] = []

    def timed(function: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                recorder.inner[label] = round(
                    recorder.inner.get(label, 0.0) + time.perf_counter() - started, 2)

        return wrapper

    for module_name, attribute, label in INNER:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)
        saved.append((module, attribute, original))
        setattr(module, attribute, timed(original, label))
    try:
        yield
    finally:
        for module, attribute, original in saved:
            setattr(module, attribute, original)


@contextmanager
def _phase(result: dict[str, Any], name: str, sampler: Sampler) -> Iterator[dict[str, Any]]:
    """Time one phase of the benchmark; its figures go to ``result['phases'][name]``."""
    log.info("phase %s", name)
    sampler.reset()
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    yield figures
    figures["seconds"] = round(time.perf_counter() - started, 2)
    figures["peak_rss_mib"] = sampler.peak()
    figures["maxrss_after_mib"] = _maxrss_mib()
    result["phases"][name] = figures
    log.info("phase %s: %.1f s, peak RSS %d MiB", name, figures["seconds"],
             figures["peak_rss_mib"])


def _report_dict(report: Any) -> dict[str, Any]:
    keep = ("precision", "recall", "f1", "true_pairs", "predicted_pairs", "clusters_predicted",
            "true_persons", "records_evaluated", "records_missing_from_clusters",
            "twin_pairs", "twin_pairs_merged")
    data = report.to_dict()
    return {key: data.get(key) for key in keep}


def _run_day(con: Any, settings: Settings, recorder: Recorder) -> dict[str, Any]:
    recorder.reset()
    with _wrapped(recorder):
        summary = pipeline.run(con, settings, callback=recorder)
    stages = dict(summary.seconds)
    return {
        "stages_seconds": stages,
        "total_seconds": round(sum(stages.values()), 2),
        "inner_seconds": dict(recorder.inner),
        "stages_memory": dict(recorder.memory),
        "records": summary.records,
        "persons": summary.persons,
        "link_mode": summary.link_mode,
        "link_reason": summary.link_reason,
        "trained": summary.trained,
        "rescored_records": summary.rescored_records,
        "reclustered_records": summary.reclustered_records,
        "predicted_pairs": summary.predicted_pairs,
        "version": summary.version,
    }


def _plain_splink(con: Any, settings: Settings, truth: Path) -> dict[str, Any]:
    """Plain Splink on a copy of the published records, as evaluate_with_baselines does."""
    from linkage.baselines import plain_splink_clusters
    from linkage.evaluate import evaluate_clusters

    started = time.perf_counter()
    memory = copy_records(con)
    copied = round(time.perf_counter() - started, 2)
    try:
        records = memory.execute("SELECT count(*) FROM person_records").fetchall()[0][0]
        started = time.perf_counter()
        plain = plain_splink_clusters(memory, "person_records", seed=settings.seed,
                                      threshold=settings.match_threshold)
        seconds = round(time.perf_counter() - started, 2)
    finally:
        memory.close()
    report = evaluate_clusters(plain.clusters, read_truth(truth))
    return {"seconds": seconds, "copy_seconds": copied, "records": records,
            "scored_pairs": plain.scored_pairs, "linked_pairs": plain.linked_pairs,
            "accuracy": _report_dict(report)}


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sharehub", "linkage"],
                               cwd=root, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty.strip() else "")


def _targets(result: dict[str, Any]) -> dict[str, bool | None]:
    day1 = result.get("day1", {}).get("total_seconds")
    day2 = result.get("day2", {}).get("total_seconds")
    ratio = result.get("link_vs_plain_splink")
    ours = result.get("day1_accuracy", {}).get("f1")
    plain = result.get("plain_splink", {}).get("accuracy", {}).get("f1")
    peak = result.get("peak_rss_mib")
    return {
        "day 1 <= 20 min": None if day1 is None else day1 <= TARGET_DAY1_SECONDS,
        "peak RSS <= 8 GiB": None if peak is None else peak <= TARGET_PEAK_MIB,
        "day 2 <= 10% of day 1": None if day1 is None or day2 is None
        else day2 <= TARGET_DAY2_SHARE * day1,
        "link <= 1.5x plain Splink": None if ratio is None else ratio <= TARGET_LINK_RATIO,
        "F1 above plain Splink": None if ours is None or plain is None else ours > plain,
    }


def _evaluate(settings: Settings, truth: Path) -> dict[str, Any]:
    """The published index scored against the truth, on a read-only connection."""
    with closing(connect(settings, read_only=True)) as con:
        return _report_dict(evaluate_published(con, truth))


def peak_rss(result: dict[str, Any]) -> int | None:
    """Highest RSS over the phases (plain Splink excluded) and the days' stages.

    The stages are included because files written before 2026-11-27 evening under-report
    phase peaks (the sampler was reset at every stage)."""
    phases = [p["peak_rss_mib"] for p in result.get("phases", {}).values() if not p.get("baseline")]
    stages = [m["peak_rss_mib"] for day in ("day1", "day2")
              for m in result.get(day, {}).get("stages_memory", {}).values()]  # fmt: skip
    return max(phases + stages, default=None)


def _write(result: dict[str, Any], out: Path) -> None:
    result["peak_rss_mib"] = peak_rss(result)
    result["targets"] = _targets(result)
    harness.write_json(result, out)


def _settings(work: Path, seed: int) -> Settings:
    district = work / "district"
    return Settings.from_env(
        {}, warehouse=work / "warehouse.duckdb", landing=district / "landing",
        health_url=f"sqlite:///{(district / 'health.db').resolve()}",
        model_path=work / "model.json", seed=seed, progress=False,
    )  # fmt: skip


# Everything a day-2 run reads or writes; copied aside by --snapshot so that --day2-only
# can rerun the increment from the same starting point.
_STATE = ("warehouse.duckdb", "model.json", "district")


def _snapshot(work: Path) -> None:
    target = work / SNAPSHOT
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for name in _STATE:
        source = work / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        elif source.exists():
            shutil.copy2(source, target / name)
    log.info("state before day 2 copied to %s", target)


def _restore(work: Path) -> None:
    source = work / SNAPSHOT
    if not source.is_dir():
        raise SystemExit(f"--day2-only: no snapshot in {source}; run once with --snapshot")
    for name in _STATE:
        target = work / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (source / name).is_dir():
            shutil.copytree(source / name, target)
        elif (source / name).exists():
            shutil.copy2(source / name, target)
    for stale in work.glob("warehouse.duckdb.wal"):
        stale.unlink()
    log.info("state before day 2 restored from %s", source)


def measure_day2(seed: int, work: Path, out: Path) -> dict[str, Any]:
    """Run the day-2 increment and score it, in this process, on the state in ``work``.

    ``measure`` calls this in a fresh child process so that day 2's memory is that of a
    scheduled run (Airflow task, ``sharehub run``), not day 2 on top of day 1's heap.
    """
    settings = _settings(work, seed)
    result: dict[str, Any] = {"phases": {}}
    with Sampler() as sampler:
        recorder = Recorder(sampler)
        with _phase(result, "run day 2", sampler), closing(connect(settings)) as con:
            result["day2"] = _run_day(con, settings, recorder)
        harness.write_json(result, out)
        with _phase(result, "evaluate day 2", sampler):
            result["day2_accuracy"] = _evaluate(settings, work / "district" / "truth.csv")
    harness.write_json(result, out)
    return result


def _day2_in_child(persons: int, seed: int, work: Path) -> dict[str, Any]:
    out = work / "day2.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--day2-only", "--in-place",
               "--work", str(work), "--persons", str(persons), "--seed", str(seed),
               "--out", str(out)]
    subprocess.run(command, check=True)
    return dict(json.loads(out.read_text(encoding="utf-8")))


def measure(persons: int, seed: int, work: Path, out: Path, note: str = "",
            snapshot: bool = False) -> dict[str, Any]:
    """Run the whole benchmark in ``work``; rewrite ``out`` after every phase."""
    district = work / "district"
    settings = _settings(work, seed)
    result: dict[str, Any] = {
        "persons": persons, "seed": seed, "complete": False, "note": note,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_1min_before": round(os.getloadavg()[0], 2)},
        "command": f"benchmarks/pipeline.py --persons {persons} --seed {seed}",
        "day2_process": "separate",
        "phases": {},
    }
    with Sampler() as sampler:
        recorder = Recorder(sampler)
        with _phase(result, "generate day 1", sampler) as figures:
            day1 = generate(district, persons, seed, 1)
            figures["records"] = dict(day1.records)
        result["records_delivered_day1"] = sum(day1.records.values())
        _write(result, out)

        with _phase(result, "run day 1", sampler), closing(connect(settings)) as con:
            result["day1"] = _run_day(con, settings, recorder)
        _write(result, out)

        with _phase(result, "evaluate day 1", sampler):
            result["day1_accuracy"] = _evaluate(settings, district / "truth.csv")
        _write(result, out)

        with _phase(result, "plain Splink day 1", sampler) as figures:
            figures["baseline"] = True
            with closing(connect(settings, read_only=True)) as con:
                result["plain_splink"] = _plain_splink(con, settings, district / "truth.csv")
        link = result["day1"]["stages_seconds"]["link"]
        result["link_vs_plain_splink"] = round(link / result["plain_splink"]["seconds"], 2)
        _write(result, out)

        with _phase(result, "generate day 2", sampler) as figures:
            day2 = generate(district, persons, seed, 2)
            figures["records"] = dict(day2.records)
        _write(result, out)
    if snapshot:
        _snapshot(work)

    child = _day2_in_child(persons, seed, work)
    result["phases"].update(child["phases"])
    result["day2"] = child["day2"]
    result["day2_accuracy"] = child["day2_accuracy"]
    result["day2_share_of_day1"] = round(
        result["day2"]["total_seconds"] / result["day1"]["total_seconds"], 3)
    result["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    result["complete"] = True
    _write(result, out)
    return result


# --- the markdown table -------------------------------------------------------------------

_STAGES = ("pull + validate", "stage", "standardise", "link", "identify", "houses", "publish")


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _row(r: dict[str, Any]) -> str:
    day1 = r.get("day1", {})
    stages, inner = day1.get("stages_seconds", {}), day1.get("inner_seconds", {})
    day2 = r.get("day2", {})
    plain = r.get("plain_splink", {})
    f1 = r.get("day1_accuracy", {}).get("f1")
    f1_2 = r.get("day2_accuracy", {}).get("f1")
    pf1 = plain.get("accuracy", {}).get("f1")
    share = r.get("day2_share_of_day1")
    cells = [
        f"{r['persons']:,}" + ("" if r.get("complete") else " (partial)"),
        f"{day1.get('records', r.get('records_delivered_day1', 0)):,}",
        _s(stages.get("pull + validate")),
        _s(stages.get("standardise")),
        _s(inner.get("train")),
        _s(inner.get("predict + cluster (full)")),
        _s(stages.get("link")),
        _s(sum(stages.get(s, 0) for s in ("stage", "identify", "houses"))) if stages else "–",
        _s(stages.get("publish")) + (f" ({inner['GE validation']:.0f} GE)"
                                     if "GE validation" in inner else ""),
        _s(day1.get("total_seconds")),
        _s(day2.get("total_seconds")) + ("" if share is None else f" ({share:.0%})"),
        "–" if peak_rss(r) is None else f"{peak_rss(r):,}",
        "–" if f1 is None else f"{f1:.4f}" + ("" if f1_2 is None else f" / {f1_2:.4f}"),
        _s(plain.get("seconds")),
        "–" if r.get("link_vs_plain_splink") is None else f"{r['link_vs_plain_splink']:.2f}",
        "–" if pf1 is None else f"{pf1:.4f}",
        r.get("measured_at", "")[:10],
        r.get("commit", ""),
        r.get("note", ""),
    ]
    return "| " + " | ".join(cells) + " |"


def write_table() -> str:
    """Rebuild benchmarks/results/README.md from every pipeline-*.json."""
    runs = []
    for path in sorted(RESULTS.glob("pipeline-*.json")):
        try:
            runs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    # pipeline-<persons>-<label>.json files (e.g. a "-before" run) get rows of their own.
    runs.sort(key=lambda r: (r.get("persons", 0), r.get("measured_at", "")))
    header = ("| persons | records day 1 | pull + validate s | standardise s | train s "
              "| predict + cluster s | link s | stage + identify + houses s | publish s "
              "| day 1 total s | day 2 total s (share) | peak RSS MiB | F1 day 1 / day 2 "
              "| plain Splink s | link ÷ plain | plain F1 | date | commit | note |")
    lines = [
        "# Benchmark results",
        "",
        "`accuracy-*.json`: `benchmarks/accuracy.py` (accuracy against both baselines).",
        "`pipeline-*.json`: `benchmarks/pipeline.py` (per-stage wall time and memory, day 1 "
        "and the day-2 increment, plain Splink on the same day-1 records). This table is "
        "rebuilt from the `pipeline-*.json` files by every run of that script; see "
        "docs/performance.md for what the figures mean.",
        "",
        "## Pipeline (day 1 per stage, day 2 total)",
        "",
        header,
        "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|",
    ]
    lines += [_row(r) for r in runs]
    lines += [
        "",
        "Seconds are wall time on the machine in each JSON (`machine`); stage times are the "
        "pipeline's own (`RunSummary.seconds`). train and predict + cluster are inside link. "
        "Peak RSS is the highest resident memory sampled during generate + both runs + "
        "evaluation (plain Splink excluded; since the third round day 2 runs in its own "
        "process, so this is day 1's peak unless day 2's is higher). link ÷ plain: day-1 link "
        "stage (train + predict + "
        "cluster) over plain Splink (train + predict + cluster) on a copy of the same records.",
        "",
    ]
    text = "\n".join(lines)
    TABLE.write_text(text, encoding="utf-8")
    return text


def _report(result: dict[str, Any]) -> str:
    lines = [f"{result['persons']:,} persons, seed {result['seed']}"]
    for name, phase in result["phases"].items():
        lines.append(f"  {name:<22}{phase['seconds']:>10.1f} s{phase['peak_rss_mib']:>8,} MiB")
    for day in ("day1", "day2"):
        if day in result:
            stages = ", ".join(f"{k} {v:.1f}" for k, v in result[day]["stages_seconds"].items())
            lines.append(f"  {day} stages: {stages}")
            inner = ", ".join(f"{k} {v:.1f}" for k, v in result[day]["inner_seconds"].items())
            lines.append(f"  {day} inside: {inner}")
    lines += [f"  {'met' if met else 'NOT met' if met is not None else 'n/a'}: {target}"
              for target, met in result["targets"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__.splitlines()[0], "pipeline",
                       work_holds="deliveries, warehouse and model")
    p.add_argument("--snapshot", action="store_true",
                   help=f"copy the state before day 2 to WORK/{SNAPSHOT} (for --day2-only)")
    p.add_argument("--day2-only", action="store_true",
                   help=f"rerun only day 2 from WORK/{SNAPSHOT} (needs --work and --out)")
    p.add_argument("--in-place", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    harness.quiet_logging()
    if args.day2_only:
        if args.work is None or args.out is None:
            p.error("--day2-only needs --work (a folder run with --snapshot) and --out")
        if not args.in_place:
            _restore(Path(args.work))
        result = measure_day2(args.seed, Path(args.work), Path(args.out))
        sys.stdout.write(json.dumps({"day2": result["day2"]["stages_seconds"],
                                     "total": result["day2"]["total_seconds"]}) + "\n")
        return 0
    out = harness.out_path(args, "pipeline")
    try:
        with harness.work_folder(args, "sharehub-pipeline-") as work:
            result = measure(args.persons, args.seed, work, out, args.note, args.snapshot)
    finally:
        if out.parent == RESULTS:
            write_table()
    sys.stdout.write(_report(result) + f"wrote {out} and {TABLE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
