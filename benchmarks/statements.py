"""Where a day-2 run's time goes, statement by statement: rerun day 2 from a snapshot
with every SQL statement on the warehouse connection timed.

Issue 8, item 2 ("profile, say where the time goes"). The stage timer of
``benchmarks/pipeline.py`` says which stage is slow; this says which statement, and from
which function of sharehub or linkage it was sent:

    .venv/bin/python benchmarks/pipeline.py --persons 1000000 --seed 42 --snapshot --work W
    .venv/bin/python benchmarks/statements.py --work W --out W/statements.json

The connection is wrapped in a proxy that times ``execute``/``sql``/``query`` (Splink's
own statements go through the same connection) and records the stage, the nearest
calling function in the repository, and the statement's first words. The proxy costs a
little (a stack walk per statement), so compare its totals only with each other, not
with ``pipeline.py``'s. Python time between statements is reported per stage as "other".
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path
from typing import Any

import pipeline as bench  # beside this script

from sharehub import pipeline
from sharehub.warehouse import connect

log = logging.getLogger("benchmarks.statements")

ROOT = Path(__file__).resolve().parent.parent
_OWN = (str(ROOT / "sharehub"), str(ROOT / "linkage"))


def _caller() -> str:
    """The innermost frame in sharehub/ or linkage/ (not this proxy): module:function."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_OWN):
            module = Path(name).relative_to(ROOT).with_suffix("").as_posix()
            return f"{module}:{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "(outside)"


class Timings:
    """Statement timings, keyed by (stage, caller, statement head)."""

    def __init__(self) -> None:
        self.stage = "(before)"
        self.seconds: dict[tuple[str, str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str, str], int] = defaultdict(int)

    def add(self, sql: object, seconds: float) -> None:
        head = " ".join(str(sql).split())[:140]
        key = (self.stage, _caller(), head)
        self.seconds[key] += seconds
        self.calls[key] += 1


class TimedConnection:
    """A DuckDB connection whose statements are timed; everything else is delegated."""

    def __init__(self, con: Any, timings: Timings) -> None:
        self._con, self._timings = con, timings

    def _timed(self, method: str, sql: object, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = getattr(self._con, method)(sql, *args, **kwargs)
        finally:
            self._timings.add(sql, time.perf_counter() - started)
        return self if result is self._con else result

    def execute(self, sql: object, *args: Any, **kwargs: Any) -> Any:
        return self._timed("execute", sql, *args, **kwargs)

    def sql(self, sql: object, *args: Any, **kwargs: Any) -> Any:
        return self._timed("sql", sql, *args, **kwargs)

    def query(self, sql: object, *args: Any, **kwargs: Any) -> Any:
        return self._timed("query", sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _unwrap_for_splink() -> None:
    """Splink's DuckDBAPI accepts only a real connection: give it the wrapped one, then
    let it send its statements through the proxy so that they are timed too."""
    from splink.internals.duckdb.database_api import DuckDBAPI

    original = DuckDBAPI.__init__

    def init(self: Any, connection: Any = ":memory:", *args: Any, **kwargs: Any) -> None:
        proxy = connection if isinstance(connection, TimedConnection) else None
        original(self, proxy._con if proxy else connection, *args, **kwargs)
        if proxy is not None:
            self._con = proxy

    DuckDBAPI.__init__ = init  # type: ignore[method-assign]


def profile(work: Path, seed: int, top: int) -> dict[str, Any]:
    """Restore ``work``'s snapshot, run day 2 through the timing proxy, summarise."""
    bench._restore(work)
    settings = bench._settings(work, seed)
    timings = Timings()
    stage_seconds: dict[str, float] = {}

    def callback(event: str, text: str) -> None:
        if event == "start":
            timings.stage = text
        elif text.endswith(" s)"):
            name, _, rest = text.rpartition(" (")
            stage_seconds[name] = float(rest.split()[0])
        log.info("%s: %s", event, text)

    _unwrap_for_splink()
    started = time.perf_counter()
    with closing(connect(settings)) as con:
        pipeline.run(TimedConnection(con, timings), settings, callback=callback)  # type: ignore[arg-type]
    total = time.perf_counter() - started
    per_stage: dict[str, float] = defaultdict(float)
    for (stage, _, _), seconds in timings.seconds.items():
        per_stage[stage] += seconds
    ranked = sorted(timings.seconds.items(), key=lambda item: -item[1])
    return {
        "total_seconds": round(total, 2),
        "stages": {
            name: {"seconds": seconds, "sql_seconds": round(per_stage.get(name, 0.0), 2),
                   "other_seconds": round(seconds - per_stage.get(name, 0.0), 2)}
            for name, seconds in stage_seconds.items()
        },
        "statements": [
            {"stage": stage, "caller": caller, "sql": head, "calls": timings.calls[(stage, caller, head)],
             "seconds": round(seconds, 3)}
            for (stage, caller, head), seconds in ranked[:top]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True,
                        help="folder of a pipeline.py --snapshot run (WORK/before-day2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--top", type=int, default=60, help="statements to keep (slowest first)")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = profile(args.work, args.seed, args.top)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    log.info("day 2 under the proxy: %.1f s; statements in %s", result["total_seconds"], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
