"""The auditors' metrics on a generated district over two days.

Every day: the figures `sharehub.metrics.record` stored for the new version are exactly
what the METRIC_QUERIES return when rerun read-only (what ``sharehub report --query NAME``
prints), and the rewritten queries return exactly what their plain formulations return
(``REFERENCE_QUERIES`` in tests/unit/test_metrics.py) on real published tables: persons
merged and split by the increments, ended records, housing owners, records of every feed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from metrics_reference import REFERENCE_QUERIES, assert_same_as_reference

from sharehub import pipeline
from sharehub.generate import generate
from sharehub.metrics import METRIC_QUERIES
from sharehub.settings import Settings
from sharehub.warehouse import connect

pytestmark = pytest.mark.integration

PERSONS, SEED = 1_200, 11
DAYS = {1: datetime(2026, 11, 1, 3), 2: datetime(2026, 11, 2, 3)}  # full extracts, then deltas


def _run(root: Path, now: datetime) -> pipeline.RunSummary:
    settings = Settings.from_env(
        {}, warehouse=root / "warehouse.duckdb", landing=root / "landing",
        health_url=f"sqlite:///{root / 'health.db'}", model_path=root / "model.json", progress=False,
    )  # fmt: skip
    con = connect(settings)
    try:
        return pipeline.run(con, settings, now=now)
    finally:
        con.close()


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """Per day: the version published, the stored figures, the queries' rows, the reference check."""
    root = tmp_path_factory.mktemp("district")
    out: dict[int, dict[str, Any]] = {}
    for day, now in DAYS.items():
        generate(root, persons=PERSONS, seed=SEED, day=day)
        _run(root, now)
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
        try:
            version = con.execute("SELECT max(version) FROM audit.publish_versions").fetchall()[0][0]
            stored = {
                (metric, scope): (numerator, denominator, value)
                for metric, scope, numerator, denominator, value in con.execute(
                    "SELECT metric, scope, numerator, denominator, value FROM audit.sharing_metrics "
                    "WHERE version = ?", [version]).fetchall()
            }  # fmt: skip
            queried = {
                (name, str(scope)): tuple(None if v is None else float(v) for v in (num, den, value))
                for name, sql in METRIC_QUERIES.items()
                for scope, num, den, value in con.execute(sql).fetchall()
            }
            try:
                assert_same_as_reference(con)
                reference = None
            except AssertionError as error:
                reference = str(error)
            out[day] = {"version": version, "stored": stored, "queried": queried, "reference": reference}
        finally:
            con.close()
    return out


def test_each_day_publishes_a_new_version(days: dict[int, dict[str, Any]]) -> None:
    assert [days[d]["version"] for d in DAYS] == [1, 2]


@pytest.mark.parametrize("day", DAYS)
def test_stored_figures_are_what_the_queries_return(days: dict[int, dict[str, Any]], day: int) -> None:
    assert days[day]["stored"] == days[day]["queried"]
    assert {metric for metric, _ in days[day]["stored"]} == set(METRIC_QUERIES)


@pytest.mark.parametrize("day", DAYS)
def test_rewritten_queries_equal_their_plain_formulations(days: dict[int, dict[str, Any]], day: int) -> None:
    assert days[day]["reference"] is None, days[day]["reference"]
    # the district reaches the cases the rewrites distinguish
    queried = days[day]["queried"]
    for metric in REFERENCE_QUERIES:
        assert any(m == metric for m, _ in queried), metric
    spared, repeats, _ = queried[("repeat_entry_reduction", "all")]
    assert 0 < spared < repeats
    feeds = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")
    for metric in ("feed_records_shared", "feed_records_linked"):
        counts = [queried[(metric, feed)][:2] for feed in feeds]
        assert all(0 < n <= d for n, d in counts) and any(n < d for n, d in counts), metric
    assert {scope for metric, scope in queried if metric == "coverage"} == {"ps", "ca", "hw"}
