"""Two days of the real generator's deliveries, pulled into a real DuckDB file.

The generator writes what the departments deliver (GB18030 CSVs, an XLSX roster with
title rows, a SQLite health table, manifests) and ``truth.csv``, the record list the hub
must end up with. Day 1 is pulled, then day 2 is generated into the same folder and
pulled. Expectations are computed from the delivered files themselves (read here with
the standard library and openpyxl, not with the hub's readers), so a reader bug cannot
hide behind itself.

Rates: at 500 persons the default rates give, for seed 3, no malformed 出生日期 and no
recipient leaving the roll, and the test would check nothing there; ``pop_bad_birth``
and ``day2_ca_leave`` are raised so both occur, everything else is the default.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pytest

from schemas.staging import PersonRecords
from sharehub import warehouse
from sharehub.feeds import FEEDS, BatchResult, build_person_records, check_ledger, pull_pending
from sharehub.generate import ErrorRates, GenerateSummary, generate
from sharehub.settings import Settings

pytestmark = pytest.mark.integration

POP, HOUSE, CA, HW = FEEDS
DAY1, DAY2 = "20261101-001", "20261102-001"
RATES = ErrorRates(pop_bad_birth=0.02, day2_ca_leave=0.15)


@dataclass
class Run:
    """Everything the tests look at: the generator's output and what the pull did."""

    out: Path
    con: duckdb.DuckDBPyConnection
    settings: Settings
    summaries: dict[int, GenerateSummary]
    results: dict[int, list[BatchResult]]
    health_max: dict[int, datetime]  # newest updated_at in health.db after each day
    roster: dict[int, set[str]]  # 对象编号 in each day's civil-affairs roster

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()


def _health_max(path: Path) -> datetime:
    with closing(sqlite3.connect(path)) as db:
        stamps = [r[0] for r in db.execute("SELECT updated_at FROM hw_ehr_person")]
    return pd.to_datetime(pd.Series(stamps), format="ISO8601", errors="coerce").max().to_pydatetime()


def _roster_keys(path: Path) -> set[str]:
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book["服务对象"].iter_rows(values_only=True))
    book.close()
    header_at = next(i for i, r in enumerate(rows) if "对象编号" in r)
    at = rows[header_at].index("对象编号")
    return {str(r[at]).strip() for r in rows[header_at + 1:] if r and r[at] is not None}


def _population_rows(out: Path, batch: str) -> list[dict[str, str]]:
    with (out / "landing" / POP / batch / "population.csv").open(encoding="gb18030", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    out = tmp_path_factory.mktemp("generated")
    settings = Settings(warehouse=out / "warehouse.duckdb", landing=out / "landing",
                        health_url=f"sqlite:///{out / 'health.db'}")
    con = warehouse.connect(settings)
    summaries, results, health_max, roster = {}, {}, {}, {}
    for day in (1, 2):
        summaries[day] = generate(out, persons=500, seed=3, day=day, rates=RATES)
        health_max[day] = _health_max(out / "health.db")
        roster[day] = _roster_keys(out / "landing" / CA / (DAY1 if day == 1 else DAY2) / "recipients.xlsx")
        results[day] = pull_pending(con, settings, feeds=FEEDS)
    build_person_records(con)
    yield Run(out, con, settings, summaries, results, health_max, roster)
    con.close()


def test_every_delivery_of_both_days_is_loaded(run: Run) -> None:
    for day, batch in ((1, DAY1), (2, DAY2)):
        results = run.results[day]
        assert [(r.feed, r.status) for r in results] == [(f, "loaded") for f in FEEDS]
        assert [r.batch_id for r in results[:3]] == [batch] * 3
        assert run.summaries[day].batch_ids == dict.fromkeys((POP, HOUSE, CA), batch)
        for r in results[:3]:  # the files: as many rows as the generator wrote
            assert r.rows_declared == r.rows_landed == run.summaries[day].records[r.feed]
    assert run.results[1][3].rows_landed == run.summaries[1].records[HW]
    ledger = run.rows("SELECT feed, batch_id, status FROM raw.batches ORDER BY loaded_at")
    assert len(ledger) == 8 and {s for _, _, s in ledger} == {"loaded"}


def test_rows_in_equal_staged_plus_quarantined_for_every_batch(run: Run) -> None:
    ledger = run.rows("""SELECT feed, batch_id, rows_declared, rows_landed, rows_staged, rows_quarantined
                         FROM raw.batches""")
    for feed, batch, declared, landed, staged, quarantined in ledger:
        assert declared == landed == staged + quarantined, (feed, batch)
        assert run.rows(f"SELECT count(*) FROM raw.{feed} WHERE batch_id = ?", batch) == [(landed,)]
        assert run.rows("SELECT count(*) FROM quarantine.rows WHERE feed = ? AND batch_id = ?",
                        feed, batch) == [(quarantined,)]
    for day in (1, 2):
        for r in run.results[day]:
            assert r.rows_landed == r.rows_staged + r.rows_quarantined
    check_ledger(run.con)


def test_quarantined_rows_are_visible_with_their_reasons(run: Run) -> None:
    quarantined = run.rows("""SELECT q.feed, q.batch_id, q.row_number, q.source_key, q.column_name,
                                     q.check_name, q.failure_value, q.reason, r.birth_date, r.person_no
                              FROM quarantine.rows q JOIN raw.ps_population r
                                ON q.feed = 'ps_population' AND r.batch_id = q.batch_id
                               AND r.row_number = q.row_number""")
    assert len(quarantined) >= 3
    assert run.rows("SELECT count(*) FROM quarantine.rows") == [(len(quarantined),)]
    delivered = {(DAY1, i): row for i, row in enumerate(_population_rows(run.out, DAY1), start=1)}
    delivered |= {(DAY2, i): row for i, row in enumerate(_population_rows(run.out, DAY2), start=1)}
    for _, batch, row, key, column, check, value, reason, raw_birth, raw_key in quarantined:
        assert (column, check) == ("出生日期", "format")
        assert value == raw_birth and key == raw_key  # the row number points at the raw row
        assert delivered[(batch, row)]["出生日期"] == value  # …and at the delivered file's row
        assert delivered[(batch, row)]["人员编号"] == key
        assert reason.startswith("出生日期: ") and "yyyyMMdd" in reason
    keys = {k for *_, k in run.rows("SELECT source_key FROM quarantine.rows")}
    assert not run.rows("SELECT person_no FROM staging.ps_population WHERE list_contains(?, person_no) "
                        "AND batch_id = ?", sorted(keys), DAY1)


def test_day_two_deltas_end_deregistered_records_with_a_valid_to(run: Run) -> None:
    rows = _population_rows(run.out, DAY2)
    bad = {k for (k,) in run.rows("SELECT source_key FROM quarantine.rows WHERE batch_id = ?", DAY2)}
    ended = {r["人员编号"] for r in rows if r["变动类型"] == "注销"} - bad
    changed = {r["人员编号"] for r in rows if r["变动类型"] == "变更"} - bad
    assert ended and changed
    current = {k: (s, vt, b) for k, s, vt, b in run.rows(
        "SELECT person_no, record_status, valid_to, batch_id FROM staging.ps_population WHERE is_current")}
    for key in ended:
        status, valid_to, batch = current[key]
        assert (status, batch) == ("deregistered", DAY2) and valid_to is not None
        history = run.rows("SELECT record_status, valid_to FROM staging.ps_population "
                           "WHERE person_no = ? AND NOT is_current", key)
        assert [s for s, _ in history] == ["active"] and history[0][1] == valid_to
    assert {k for k, (s, _, _) in current.items() if s == "deregistered"} == ended
    records = dict(run.rows("SELECT source_key, record_status FROM staging.person_records WHERE feed = ?", POP))
    assert {k for k, s in records.items() if s == "deregistered"} == ended
    housing = run.results[2][1]
    assert housing.changes.get("update", 0) + housing.changes.get("unchanged", 0) > 0


def test_the_civil_affairs_full_extract_makes_missing_recipients_inactive(run: Run) -> None:
    gone = run.roster[1] - run.roster[2]
    assert gone, "the generator should drop some recipients on day 2"
    assert run.results[2][2].changes["inactivate"] == len(gone)
    current = dict(run.rows("SELECT recipient_no, record_status FROM staging.ca_recipients WHERE is_current"))
    assert {k for k, s in current.items() if s == "inactive"} == gone
    assert {k for k, s in current.items() if s == "active"} == run.roster[2]
    for key in sorted(gone)[:3]:
        versions = run.rows("""SELECT record_status, valid_from, valid_to, is_current FROM staging.ca_recipients
                               WHERE recipient_no = ? ORDER BY valid_from, is_current""", key)
        assert [(s, c) for s, _, _, c in versions] == [("active", False), ("inactive", True)]
        assert str(versions[0][2]) == "2026-11-02 09:30:00" == str(versions[1][2])  # kept, ended
    statuses = dict(run.rows("SELECT source_key, record_status FROM staging.person_records WHERE feed = ?", CA))
    assert {k for k, s in statuses.items() if s == "inactive"} == gone


def test_the_health_watermark_advanced_with_each_successful_load(run: Run) -> None:
    first, second = run.results[1][3], run.results[2][3]
    assert first.batch_id == f"{run.health_max[1]:%Y%m%dT%H%M%S%f}"
    assert second.batch_id == f"{run.health_max[2]:%Y%m%dT%H%M%S%f}"
    assert run.health_max[2] > run.health_max[1]
    assert run.rows("SELECT watermark, batch_id FROM raw.watermarks") == [(run.health_max[2], second.batch_id)]
    with closing(sqlite3.connect(run.out / "health.db")) as db:
        stamps = pd.to_datetime(pd.Series([r[0] for r in db.execute("SELECT updated_at FROM hw_ehr_person")]),
                                format="ISO8601")
    assert second.rows_landed == int((stamps > run.health_max[1]).sum())  # only what changed
    assert run.rows("SELECT count(DISTINCT record_id) FROM staging.hw_ehr_person") == [(len(stamps),)]


def test_person_records_cover_every_true_record_that_was_not_quarantined(run: Run) -> None:
    truth = pd.read_csv(run.out / "truth.csv", dtype=str)
    expected = set(truth["feed"] + ":" + truth["source_key"])
    found = {r for (r,) in run.rows("SELECT record_id FROM staging.person_records")}
    quarantined = {f"{f}:{k}" for f, k in run.rows("SELECT feed, source_key FROM quarantine.rows")}
    assert quarantined and quarantined <= expected
    assert expected - found == quarantined - found  # all that is missing was quarantined
    assert found <= expected  # and nothing is invented
    assert len(found) >= len(expected) - len(quarantined)
    PersonRecords.validate(run.con.execute("SELECT * FROM staging.person_records").df(), lazy=True)


def test_pulling_both_days_again_changes_nothing(run: Run) -> None:
    before = run.rows("SELECT count(*), sum(hash(COLUMNS(*))) FROM staging.ps_population")
    ledger = run.rows("SELECT count(*) FROM raw.batches")
    assert pull_pending(run.con, run.settings, feeds=FEEDS) == []
    assert run.rows("SELECT count(*), sum(hash(COLUMNS(*))) FROM staging.ps_population") == before
    assert run.rows("SELECT count(*) FROM raw.batches") == ledger
