"""What the ingest DAGs decide before and after a pull: pending, loaded, refused.

These are the library calls behind ``wait_for_delivery`` and ``pull``; testing them on
hand-built deliveries keeps the DAG tests for the wiring (skips, Asset events).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sharehub import tasks
from sharehub.errors import DeliveryRejected, NotFound, SourceUnavailable
from sharehub.feeds import pull_health, pull_pending
from sharehub.feeds.pending import pending_batches
from sharehub.settings import Settings
from sharehub.warehouse import connect

Deliver = Callable[..., Path]
HealthDb = Callable[[list[dict[str, Any]]], Path]


def _pull(settings: Settings, feeds: list[str]) -> list[Any]:
    con = connect(settings)
    try:
        return pull_pending(con, settings, feeds=feeds)
    finally:
        con.close()


def test_file_feed_pending_is_every_unloaded_folder_in_order(
    settings: Settings, deliver: Deliver, samples: Any
) -> None:
    assert pending_batches(settings, "ps_population") == []  # no landing folder yet
    deliver("ps_population", "20261102-001", samples.rows("ps_population", 2))
    deliver("ps_population", "20261101-001", samples.rows("ps_population", 3))
    assert pending_batches(settings, "ps_population") == ["20261101-001", "20261102-001"]
    assert not settings.warehouse.exists(), "the check must not create the warehouse"

    _pull(settings, ["ps_population"])
    assert pending_batches(settings, "ps_population") == []
    deliver("ps_population", "20261103-001", samples.rows("ps_population", 1), extract_type="delta")
    assert pending_batches(settings, "ps_population") == ["20261103-001"]


def test_a_refused_delivery_stays_pending_and_fails_the_pull(
    settings: Settings, deliver: Deliver, samples: Any
) -> None:
    deliver("ps_population", "20261101-001", samples.rows("ps_population", 2), rows_declared=5)
    assert pending_batches(settings, "ps_population") == ["20261101-001"]
    results = tasks.ingest("ps_population", settings=settings)
    assert [r["status"] for r in results] == ["rejected"]
    assert pending_batches(settings, "ps_population") == ["20261101-001"]
    with pytest.raises(DeliveryRejected) as caught:
        tasks.loaded(results)
    assert (caught.value.feed, caught.value.batch) == ("ps_population", "20261101-001")


def test_loaded_lists_what_loaded_and_tolerates_a_later_refusal() -> None:
    results = [
        {"feed": "ps_housing", "batch_id": "b1", "status": "loaded"},
        {"feed": "ps_housing", "batch_id": "b2", "status": "rejected", "reason": "bad"},
    ]
    assert tasks.loaded(results) == ["b1"]
    assert tasks.loaded([{"feed": "ps_housing", "batch_id": "b1", "status": "skipped"}]) == []
    assert tasks.loaded([]) == []


def test_rerun_of_one_batch(settings: Settings, deliver: Deliver, samples: Any) -> None:
    deliver("ps_housing", "20261101-001", samples.rows("ps_housing", 2))
    deliver("ps_housing", "20261102-001", samples.rows("ps_housing", 2, start=3))
    assert tasks.pending("ps_housing", batch_id="20261102-001", settings=settings) == ["20261102-001"]
    _pull(settings, ["ps_housing"])
    assert tasks.pending("ps_housing", batch_id="20261102-001", settings=settings) == []
    with pytest.raises(NotFound, match="no delivery folder"):
        tasks.pending("ps_housing", batch_id="20261109-001", settings=settings)


def test_health_pending_compares_the_newest_update_with_the_watermark(
    settings: Settings, health_db: HealthDb, samples: Any
) -> None:
    health_db([samples.row("hw_ehr_person", updated_at="2026-11-01 08:00:00"),
               samples.row("hw_ehr_person", record_id="E0002", updated_at="2026-11-01 09:30:00")])
    assert pending_batches(settings, "hw_ehr_person") == ["20261101T093000000000"]
    con = connect(settings)
    try:
        loaded = pull_health(con, settings)
    finally:
        con.close()
    assert loaded is not None and loaded.batch_id == "20261101T093000000000"
    assert pending_batches(settings, "hw_ehr_person") == []

    health_db([samples.row("hw_ehr_person", record_id="E0003", updated_at="2026-11-02 07:00:00")])
    assert pending_batches(settings, "hw_ehr_person") == ["20261102T070000000000"]


def test_a_quiet_health_source_is_still_recorded_as_checked(
    settings: Settings, health_db: HealthDb, samples: Any
) -> None:
    health_db([samples.row("hw_ehr_person")])
    con = connect(settings)
    try:
        pull_health(con, settings)
        before = con.execute("SELECT checked_at FROM raw.watermarks").fetchall()[0][0]
    finally:
        con.close()
    assert tasks.pending("hw_ehr_person", settings=settings) == []
    con = connect(settings, read_only=True)
    try:
        after = con.execute("SELECT checked_at FROM raw.watermarks").fetchall()[0][0]
    finally:
        con.close()
    assert after > before, "freshness must see that the source was read"


def test_an_unreachable_health_source_is_an_error_not_quiet(settings: Settings) -> None:
    with pytest.raises(SourceUnavailable):
        pending_batches(settings.with_(health_url=f"sqlite:///{settings.landing}/none.db"),
                        "hw_ehr_person")


def test_unknown_feed() -> None:
    with pytest.raises(ValueError, match="unknown feed"):
        pending_batches(Settings(), "ps_cars")
