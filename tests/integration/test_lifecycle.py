"""The master index over two days: stable ids, increments, and reviewers' decisions.

Day 1 is generated and run once; a reviewer then decides two cases. The warehouse is
copied, day 2 is generated into both copies, and one links it incrementally while the
other re-links in full: ids must be stable, the two paths must agree, the decisions
must hold in both and after a later full re-link, and ended records must keep their
person with a status and an end date.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from linkage import review
from sharehub import pipeline
from sharehub.cli import main
from sharehub.generate import generate
from sharehub.settings import Settings
from sharehub.warehouse import connect

pytestmark = pytest.mark.integration

PERSONS, SEED = 1_500, 5
DAY1, DAY2, LATER = datetime(2026, 11, 1, 3), datetime(2026, 11, 2, 3), datetime(2026, 11, 2, 4)


def _settings(root: Path) -> Settings:
    return Settings.from_env(
        {}, warehouse=root / "warehouse.duckdb", landing=root / "landing",
        health_url=f"sqlite:///{root / 'health.db'}", model_path=root / "model.json", progress=False,
    )  # fmt: skip


def _run(root: Path, now: datetime, **flags: Any) -> pipeline.RunSummary:
    settings = _settings(root)
    con = connect(settings)
    try:
        return pipeline.run(con, settings, now=now, **flags)
    finally:
        con.close()


def _query(root: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _ids(root: Path) -> dict[str, str]:
    return dict(_query(root, "SELECT record_id, person_id FROM linkage.person_ids"))


def _partition(root: Path) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for record, person in _ids(root).items():
        groups.setdefault(person, set()).add(record)
    return {frozenset(g) for g in groups.values()}


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Day 1 run and two decisions; then day 2 incrementally (inc) and in full (full)."""
    inc = tmp_path_factory.mktemp("incremental")
    generate(inc, persons=PERSONS, seed=SEED, day=1)
    first = _run(inc, DAY1)
    day1 = _ids(inc)
    # a no-match on a link the model made, between two active people records
    split = _query(inc, """
        SELECT e.unique_id_l, e.unique_id_r FROM linkage.cluster_edges e
        JOIN staging.person_records l ON l.record_id = e.unique_id_l AND l.record_status = 'active'
        JOIN staging.person_records r ON r.record_id = e.unique_id_r AND r.record_status = 'active'
        WHERE l.feed <> 'ps_housing' AND r.feed <> 'ps_housing'
        ORDER BY e.unique_id_l, e.unique_id_r LIMIT 1""")[0]
    # a match between two persons the model kept apart
    join = _query(inc, """
        SELECT min(record_id), max(record_id) FROM (
            SELECT p.record_id, p.person_id FROM linkage.person_ids p
            JOIN staging.person_records r USING (record_id)
            WHERE r.feed = 'hw_ehr_person' AND r.record_status = 'active'
            ORDER BY p.record_id LIMIT 2)""")[0]
    assert day1[join[0]] != day1[join[1]] and day1[split[0]] == day1[split[1]]
    runner = CliRunner()
    for pair, decision in ((split, "no-match"), (join, "match")):
        result = runner.invoke(main, ["review", "decide", ",".join(pair), decision, "--by", "测试员",
                                      "--reason", "lifecycle test", "--warehouse",
                                      str(inc / "warehouse.duckdb")])  # fmt: skip
        assert result.exit_code == 0, result.output
    full = tmp_path_factory.mktemp("full")
    shutil.copytree(inc, full, dirs_exist_ok=True)
    for root in (inc, full):
        generate(root, persons=PERSONS, seed=SEED, day=2)
    golden, logger = _Captured(), logging.getLogger("sharehub.publish.golden")
    level, _ = logger.level, logger.addHandler(golden)
    logger.setLevel(logging.INFO)
    try:
        inc_run = _run(inc, DAY2)
    finally:
        logger.removeHandler(golden)
        logger.setLevel(level)
    return {"inc": inc, "full": full, "first": first, "day1": day1, "split": split, "join": join,
            "inc_run": inc_run, "full_run": _run(full, DAY2, full_relink=True),
            "inc_golden_log": golden.messages}  # fmt: skip


class _Captured(logging.Handler):
    """The messages of one logger during a run (the fixture is module-scoped; caplog is not)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_day2_links_incrementally_and_full_relink_when_asked(days: dict[str, Any]) -> None:
    assert days["first"].link_mode == "full" and days["first"].trained
    inc, full = days["inc_run"], days["full_run"]
    assert inc.link_mode == "incremental" and full.link_mode == "full"
    assert 0 < inc.rescored_records < full.rescored_records / 10
    assert inc.reclustered_records < full.reclustered_records / 4


def test_ids_are_stable_for_persons_present_on_both_days(days: dict[str, Any]) -> None:
    day1, day2 = days["day1"], _ids(days["inc"])
    persons: dict[str, bool] = {}
    for record, person in day1.items():
        if record in day2:
            persons[person] = persons.get(person, True) and day2[record] == person
    kept = sum(persons.values()) / len(persons)
    assert kept >= 0.995, f"{kept:.4f} of {len(persons)} persons kept their id"


def test_every_id_change_is_logged_for_subscribers(days: dict[str, Any]) -> None:
    inc = days["inc"]
    day1, day2 = days["day1"], _ids(inc)
    run_id = days["inc_run"].run_id
    moved = {(day1[r], day2[r]) for r in day1.keys() & day2.keys() if day1[r] != day2[r]}
    # Published for subscribers, causes included (batch_ids).
    logged = _query(inc, "SELECT old_person_id, new_person_id, kind, batch_ids FROM "
                         "shared.person_id_changes WHERE run_id = ?", [run_id])  # fmt: skip
    assert moved <= {(old, new) for old, new, _, _ in logged}
    kinds = {kind for _, _, kind, _ in logged}
    assert {"merge", "split"} <= kinds  # the reviewer's join and split at least
    causes = ",".join(c for *_, c in logged)
    assert "ps_population/" in causes and "review:" in causes


def test_incremental_and_full_relink_agree(days: dict[str, Any]) -> None:
    inc, full = days["inc"], days["full"]
    assert _ids(inc) == _ids(full)  # same clusters, and the same ids carried forward
    pairs = "SELECT unique_id_l, unique_id_r, match_probability FROM linkage.predictions"
    a = {(x, y): p for x, y, p in _query(inc, pairs)}
    b = {(x, y): p for x, y, p in _query(full, pairs)}
    assert a.keys() == b.keys()
    # pairs scored on day 1 keep day 1's term frequencies (see linkage.incremental)
    assert max(abs(a[k] - b[k]) for k in a) < 0.01


def test_decisions_hold_after_increment_and_full_relink(days: dict[str, Any]) -> None:
    (x, y), (u, v) = days["split"], days["join"]
    for root in (days["inc"], days["full"]):
        ids = _ids(root)
        assert ids[x] != ids[y] and ids[u] == ids[v]
    inc = days["inc"]
    again = _run(inc, LATER)
    assert not again.relinked  # decisions already applied, nothing new: nothing to do
    forced = _run(inc, LATER, full_relink=True)
    assert forced.link_mode == "full"
    ids = _ids(inc)
    assert ids[x] != ids[y] and ids[u] == ids[v]
    assert _partition(inc) == _partition(days["full"])


def test_ended_records_keep_their_person_with_status_and_end_date(days: dict[str, Any]) -> None:
    inc = days["inc"]
    rows = _query(inc, """
        SELECT x.record_id, x.person_id, x.record_status, e.ended_at
        FROM shared.person_xref x JOIN staging.person_records r USING (record_id)
        LEFT JOIN linkage.record_end_dates e USING (record_id)
        WHERE r.record_status <> 'active'""")
    assert {status for _, _, status, _ in rows} >= {"deregistered", "deleted"}
    assert all(person and ended for _, person, _, ended in rows)
    day1 = days["day1"]
    kept = [day1[r] == p for r, p, _, _ in rows if r in day1]
    assert kept and sum(kept) / len(kept) >= 0.99


def test_review_show_writes_a_waterfall_chart(days: dict[str, Any], tmp_path: Path) -> None:
    inc = days["inc"]
    listed = CliRunner().invoke(main, ["review", "list", "--status", "all", "--warehouse",
                                       str(inc / "warehouse.duckdb")])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    x, y = days["split"]
    out = tmp_path / "chart.html"
    shown = CliRunner().invoke(main, ["review", "show", f"{x},{y}", "--out", str(out),
                                      "--warehouse", str(inc / "warehouse.duckdb"),
                                      "--model", str(inc / "model.json")])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "no-match" in shown.output and "match weight" in shown.output
    page = out.read_text(encoding="utf-8")
    assert x in page and y in page and "<html" in page.lower()
    assert review.review_id(x, y) in page


def _differing_rows(root: Path, table: str, select: str) -> int:
    return int(_query(root, f"""SELECT count(*) FROM (
        (SELECT * FROM {table} EXCEPT ALL ({select}))
        UNION ALL (({select}) EXCEPT ALL SELECT * FROM {table}))""")[0][0])


def test_published_rows_equal_their_selects_after_the_increment(days: dict[str, Any]) -> None:
    """Day 2's publication recomputed only the rows of records the stages noted as changed
    (`linkage.unpublished`; a reviewer's decisions, moves, deaths and new records among
    them); every published row is still what the whole SELECT gives."""
    from sharehub.publish.golden import golden_person_sql
    from sharehub.publish.tables import person_xref_sql

    recomputed = [m for m in days["inc_golden_log"] if "persons recomputed, the rest kept" in m]
    assert len(recomputed) == 1, days["inc_golden_log"]  # the scoped path was taken
    persons = int(_query(days["inc"], "SELECT count(*) FROM shared.person")[0][0])
    assert 0 < int(recomputed[0].split()[2]) < persons / 5
    for root in (days["inc"], days["full"]):
        assert _differing_rows(root, "shared.person_xref", person_xref_sql()) == 0
        assert _differing_rows(root, "shared.person", golden_person_sql()) == 0
        assert _query(root, "SELECT count(*) FROM linkage.unpublished")[0][0] == 0
