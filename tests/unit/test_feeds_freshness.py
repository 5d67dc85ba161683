"""Freshness against the contracts' latency SLA, on ledger rows written by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from schemas.contract import FEEDS, feed_contract
from sharehub.feeds import Freshness, freshness, ledger

NOW = datetime(2026, 11, 5, 12, 0)


@pytest.fixture
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    ledger.ensure_ledger(con)
    yield con
    con.close()


def _loaded(con: duckdb.DuckDBPyConnection, feed: str, batch: str, extracted: datetime | None,
            received: datetime) -> None:
    ledger.record_loaded(
        con, feed=feed, batch_id=batch, extract_type="full", checksum=batch, rows_declared=1,
        rows_landed=1, rows_staged=1, rows_quarantined=0, received_at=received, loaded_at=received,
        extracted_at=extracted,
    )


def _by_feed(con: duckdb.DuckDBPyConnection, now: datetime = NOW) -> dict[str, Freshness]:
    return {f.feed: f for f in freshness(con, now)}


def test_the_slas_come_from_the_contracts() -> None:
    assert feed_contract("ps_population").latency == timedelta(days=2)
    assert feed_contract("ca_recipients").latency == timedelta(days=9)
    assert feed_contract("hw_ehr_person").latency == timedelta(days=1)


def test_a_feed_never_loaded_is_stale(db: duckdb.DuckDBPyConnection) -> None:
    result = freshness(db, NOW)
    assert [f.feed for f in result] == list(FEEDS)
    assert all(f.stale and f.as_of is None for f in result)
    assert "nothing loaded yet" in result[0].describe()


def test_file_feeds_are_measured_on_the_extract_time_of_their_newest_delivery(db: duckdb.DuckDBPyConnection) -> None:
    received = NOW - timedelta(hours=1)  # pulled just now, but the extract is old
    _loaded(db, "ps_population", "20261101-001", datetime(2026, 11, 1, 2), received)
    _loaded(db, "ps_population", "20261103-001", datetime(2026, 11, 3, 2), received)
    _loaded(db, "ca_recipients", "20261101-001", datetime(2026, 11, 1, 9, 30), received)
    feeds = _by_feed(db)
    pop = feeds["ps_population"]
    assert (pop.last_batch, pop.as_of) == ("20261103-001", datetime(2026, 11, 3, 2))
    assert pop.age == timedelta(days=2, hours=10) and pop.stale  # SLA 2 d
    assert "STALE" in pop.describe() and "20261103-001" in pop.describe()
    assert not feeds["ca_recipients"].stale  # 4 days old, SLA 9 d
    assert not _by_feed(db, datetime(2026, 11, 5, 1, 0))["ps_population"].stale


def test_a_rejected_batch_does_not_make_a_feed_fresh(db: duckdb.DuckDBPyConnection) -> None:
    ledger.record_rejected(db, feed="ps_housing", batch_id="20261105-001", extract_type="delta",
                           checksum="x", rows_declared=3, reason="bad", received_at=NOW)
    assert _by_feed(db)["ps_housing"].stale


def test_health_is_measured_on_the_last_successful_read(db: duckdb.DuckDBPyConnection) -> None:
    old = NOW - timedelta(days=3)
    _loaded(db, "hw_ehr_person", "20261102T080000000000", datetime(2026, 11, 2, 8), old)
    ledger.set_watermark(db, "hw_ehr_person", datetime(2026, 11, 2, 8), "20261102T080000000000", old)
    assert _by_feed(db)["hw_ehr_person"].stale
    ledger.mark_checked(db, "hw_ehr_person", NOW - timedelta(hours=2))  # read, nothing new
    health = _by_feed(db)["hw_ehr_person"]
    assert not health.stale and health.age == timedelta(hours=2)


def test_timezone_aware_now_is_compared_in_local_time(db: duckdb.DuckDBPyConnection) -> None:
    _loaded(db, "ps_population", "20261105-001", datetime(2026, 11, 5, 2), NOW)
    utc_now = datetime(2026, 11, 5, 4, 0, tzinfo=UTC)  # 12:00 in UTC+8
    assert _by_feed(db, utc_now)["ps_population"].age == timedelta(hours=10)


def test_a_warehouse_from_before_the_extract_time_column_uses_the_receipt_time() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("""CREATE TABLE raw.batches (feed VARCHAR, batch_id VARCHAR, extract_type VARCHAR,
                   checksum VARCHAR, rows_declared BIGINT, rows_landed BIGINT, rows_staged BIGINT,
                   rows_quarantined BIGINT, status VARCHAR, reason VARCHAR, received_at TIMESTAMP,
                   loaded_at TIMESTAMP)""")
    con.execute("INSERT INTO raw.batches VALUES ('ps_population', 'b1', 'full', 'c', 1, 1, 1, 0, "
                "'loaded', NULL, ?, ?)", [NOW - timedelta(hours=5), NOW])
    assert _by_feed(con)["ps_population"].age == timedelta(hours=5)
