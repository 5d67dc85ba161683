"""``generate()``: write one day of the synthetic district's deliveries, chunk by chunk.

Why day 2 regenerates day 1 instead of reading it back: the day-1 state (every person,
every record and its key) is a pure function of the seed, so recomputing it chunk by chunk
costs seconds and keeps memory bounded, whereas loading a million records back from the
delivered files would not — and would inherit whatever a reader did to them.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sharehub.errors import ConfigError, NotFound
from sharehub.generate.delta import day2_rows
from sharehub.generate.evolve import Day2Life
from sharehub.generate.layouts import (
    DAYS,
    FILE_FEEDS,
    FILE_NAMES,
    HEALTH,
    HOUSING,
    HOUSING_HEADER,
    POPULATION,
    POPULATION_HEADER,
    RECIPIENTS,
    RECIPIENTS_HEADER,
    batch_id,
    extracted_at,
)
from sharehub.generate.places import STREETS
from sharehub.generate.rates import ErrorRates
from sharehub.generate.records import Context, day1_state, truth_row
from sharehub.generate.world import chunk_rng
from sharehub.generate.writers import (
    CsvFeedWriter,
    FileInfo,
    HealthDbWriter,
    TruthWriter,
    XlsxFeedWriter,
    write_manifest,
)

log = logging.getLogger(__name__)

META_FILE = "generate.json"
GENERATOR_VERSION = 1
MAX_PERSONS = 50_000_000


@dataclass(frozen=True)
class GenerateSummary:
    """What one ``generate()`` call wrote.

    ``records`` counts the rows of this day's delivery per feed (for day 2: the delta rows
    of ps_population and ps_housing, the full ca_recipients roster, and every row of the
    rebuilt health table); ``changes`` breaks day-2 rows down by kind (新增/变更/注销,
    gone/停保/new, new/updated/deleted).
    """

    day: int
    seed: int
    persons: int
    records: dict[str, int]
    batch_ids: dict[str, str]
    paths: dict[str, Path]
    manifests: dict[str, Path]
    truth_rows: int
    true_persons: int
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        """A few lines for people (the CLI prints them)."""
        lines = [f"day {self.day}, seed {self.seed}, {self.persons:,} persons "
                 f"in {self.seconds:.1f} s"]
        for feed, rows in self.records.items():
            batch = self.batch_ids.get(feed, "")
            kinds = ", ".join(f"{k} {n:,}" for k, n in self.changes.get(feed, {}).items())
            detail = f"  ({kinds})" if kinds else ""
            lines.append(f"  {feed:<15} {rows:>9,} rows  {batch}{detail}")
        lines.append(f"  truth.csv       {self.truth_rows:>9,} records of "
                     f"{self.true_persons:,} true persons")
        return "\n".join(lines)


def _meta(seed: int, persons: int, rates: ErrorRates, days: list[int]) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "seed": seed, "persons": persons,
            "days": days, "rates": rates.as_dict()}


def _check_args(out: Path, persons: int, seed: int, day: int) -> None:
    if not isinstance(persons, int) or not 1 <= persons <= MAX_PERSONS:
        raise ConfigError(f"persons={persons!r}; expected an integer from 1 to {MAX_PERSONS}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r}; expected a non-negative integer")
    if day not in DAYS:
        raise ConfigError(f"day={day!r}; expected 1 (full extracts) or 2 (deltas)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={out} exists and is not a folder")


def _check_day1(out: Path, seed: int, persons: int, rates: ErrorRates) -> None:
    """Day 2 continues the district written on day 1: same seed, size and rates."""
    meta_path = out / META_FILE
    missing = [out / "landing" / feed / batch_id(1) / "manifest.json" for feed in FILE_FEEDS]
    missing = [p for p in [meta_path, out / "health.db", *missing] if not p.exists()]
    if missing:
        raise NotFound(
            f"day 2 needs the day-1 output in {out}, but {missing[0]} is missing; "
            f"run generate(out, persons, seed, day=1) first"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for name, want in (("seed", seed), ("persons", persons), ("rates", rates.as_dict())):
        if meta.get(name) != want:
            shown = "rates" if name == "rates" else f"{name}={meta.get(name)!r}"
            raise ConfigError(
                f"day 1 in {out} was generated with {shown}, which differs from this call; "
                f"day 2 must use the same seed, persons and rates (or regenerate day 1)"
            )


def _titles(seed: int, day: int) -> list[str]:
    """One or two title rows above the roster header, as sub-district exports carry."""
    rng = random.Random(f"sharehub:{seed}:{day}:titles")
    street = rng.choice(STREETS)
    titles = [f"{street}{DAYS[day]:%Y年%m月}服务对象花名册".replace("年0", "年")]
    if rng.random() < 0.5:
        titles.append(f"制表单位：{street}社会事务办公室　　制表日期：{DAYS[day]:%Y-%m-%d}")
    return titles


def _batch_folder(out: Path, feed: str, day: int) -> Path:
    folder = out / "landing" / feed / batch_id(day)
    if folder.exists():
        shutil.rmtree(folder)  # a re-run replaces its own earlier delivery whole
    folder.mkdir(parents=True)
    return folder


def generate(out: Path, persons: int, seed: int, day: int = 1,
             rates: ErrorRates | None = None) -> GenerateSummary:
    """Write day ``day`` of a synthetic district of ``persons`` residents into ``out``.

    Day 1 writes full extracts of ps_population, ps_housing and ca_recipients under
    ``out/landing``, the health table ``out/health.db`` and ``out/truth.csv``. Day 2 needs
    day 1 in ``out`` (same seed, persons and rates) and writes population/housing deltas,
    a new full roster, the health table with new and updated rows, and a truth.csv
    covering the records of both days. Same arguments → byte-identical files.
    """
    started = time.perf_counter()
    out = Path(out)
    rates = rates or ErrorRates()
    _check_args(out, persons, seed, day)
    if day == 2:
        _check_day1(out, seed, persons, rates)
    else:
        for feed in FILE_FEEDS:
            stale = out / "landing" / feed / batch_id(2)
            if stale.exists():
                log.warning("removing %s: day 1 is being regenerated", stale)
                shutil.rmtree(stale)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(seed, persons, rates)
    batch = batch_id(day)
    folders = {feed: _batch_folder(out, feed, day) for feed in FILE_FEEDS}
    paths = {feed: folders[feed] / FILE_NAMES[feed] for feed in FILE_FEEDS}
    paths[HEALTH], paths["truth"] = out / "health.db", out / "truth.csv"
    pop = CsvFeedWriter(paths[POPULATION], POPULATION_HEADER)
    house = CsvFeedWriter(paths[HOUSING], HOUSING_HEADER)
    roster = XlsxFeedWriter(paths[RECIPIENTS], RECIPIENTS_HEADER, _titles(seed, day),
                            datetime(DAYS[day].year, DAYS[day].month, DAYS[day].day, 9, 0))
    health = HealthDbWriter(paths[HEALTH])
    truth = TruthWriter(paths["truth"])
    writers: dict[str, CsvFeedWriter | XlsxFeedWriter | HealthDbWriter] = {
        POPULATION: pop, HOUSING: house, RECIPIENTS: roster, HEALTH: health}
    changes: dict[str, dict[str, int]] = {}
    true_persons = 0
    log.info("generating day %d of %d persons (seed %d) in %d chunks into %s",
             day, persons, seed, ctx.chunks, out)
    for k in range(ctx.chunks):
        state = day1_state(ctx, k)
        if day == 1:
            truth_rows = state.truth()
            delivered = state.records
        else:
            events = Day2Life(state.chunk, ctx, chunk_rng(seed, k, "day2")).run()
            rows = day2_rows(state, events, ctx, chunk_rng(seed, k, "day2-rows"))
            delivered = rows.records
            truth_rows = state.truth(rows.stale_names)
            truth_rows += [truth_row(f, r) for f, r in zip(rows.new_feeds, rows.new, strict=True)]
            for feed, kinds in rows.changes.items():
                for kind, n in kinds.items():
                    changes.setdefault(feed, {})[kind] = changes.get(feed, {}).get(kind, 0) + n
        for feed, writer in writers.items():
            writer.write(r.row for r in delivered[feed])
        truth.write(truth_rows)
        true_persons += len({row[2] for row in truth_rows})
        if (k + 1) % 50 == 0:
            log.info("chunk %d/%d written", k + 1, ctx.chunks)
    infos: dict[str, FileInfo] = {POPULATION: pop.close(), HOUSING: house.close(),
                                  RECIPIENTS: roster.close()}
    health.close()
    truth.close()
    manifests = {}
    for feed in FILE_FEEDS:
        kind = "delta" if day == 2 and feed != RECIPIENTS else "full"
        manifests[feed] = write_manifest(folders[feed], feed, batch, kind,
                                         extracted_at(feed, day), [infos[feed]])
    meta = _meta(seed, persons, rates, [1] if day == 1 else [1, 2])
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                 encoding="utf-8")
    summary = GenerateSummary(
        day=day, seed=seed, persons=persons,
        records={POPULATION: pop.rows, HOUSING: house.rows, RECIPIENTS: roster.rows,
                 HEALTH: health.rows},
        batch_ids=dict.fromkeys(FILE_FEEDS, batch), paths=paths, manifests=manifests,
        truth_rows=truth.rows, true_persons=true_persons, changes=changes,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info("day %d written in %.1f s: %s", day, summary.seconds, summary.records)
    return summary
