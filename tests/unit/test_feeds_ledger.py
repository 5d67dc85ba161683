"""The batch ledger: idempotent bookkeeping and loud failure when rows go missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb
import pytest

from schemas.contract import feed_contract
from sharehub.errors import ContractViolation
from sharehub.feeds import ledger
from sharehub.feeds.staging import ensure_feed_tables

T0 = datetime(2026, 11, 1, 2, 0)


@pytest.fixture
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    ledger.ensure_ledger(con)
    ledger.ensure_ledger(con)  # idempotent
    ensure_feed_tables(con, feed_contract("ps_population"))
    yield con
    con.close()


def _loaded(con: duckdb.DuckDBPyConnection, batch: str, landed: int, staged: int, quarantined: int) -> None:
    ledger.record_loaded(
        con, feed="ps_population", batch_id=batch, extract_type="full", checksum="c1",
        rows_declared=landed, rows_landed=landed, rows_staged=staged, rows_quarantined=quarantined,
        received_at=T0, loaded_at=T0,
    )


def _raw_rows(con: duckdb.DuckDBPyConnection, batch: str, count: int) -> None:
    for i in range(1, count + 1):
        con.execute("INSERT INTO raw.ps_population (batch_id, row_number) VALUES (?, ?)", [batch, i])


def test_loaded_batches_and_checksums(db: duckdb.DuckDBPyConnection) -> None:
    assert ledger.loaded_checksum(db, "ps_population", "b1") is None
    _raw_rows(db, "b1", 2)
    _loaded(db, "b1", 2, 2, 0)
    assert ledger.loaded_checksum(db, "ps_population", "b1") == "c1"
    assert ledger.loaded_batches(db, "ps_population") == {"b1"}
    ledger.check_ledger(db)


def test_repeated_rejection_of_the_same_content_is_one_row(db: duckdb.DuckDBPyConnection) -> None:
    for reason in ("first", "second"):
        ledger.record_rejected(
            db, feed="ps_population", batch_id="b1", extract_type="full", checksum="c9",
            rows_declared=3, reason=reason, received_at=T0,
        )
    ledger.record_rejected(
        db, feed="ps_population", batch_id="b1", extract_type=None, checksum=None,
        rows_declared=None, reason="no manifest", received_at=T0,
    )
    rows = db.execute("SELECT checksum, status, reason FROM raw.batches ORDER BY checksum").fetchall()
    assert rows == [("", "rejected", "no manifest"), ("c9", "rejected", "second")]
    assert ledger.loaded_batches(db, "ps_population") == set()


@pytest.mark.parametrize(
    ("raw_rows", "landed", "staged", "quarantined"),
    [(3, 3, 2, 0), (2, 3, 3, 0), (3, 3, 2, 1)],
)
def test_check_ledger_fails_loudly_when_rows_do_not_add_up(
    db: duckdb.DuckDBPyConnection, raw_rows: int, landed: int, staged: int, quarantined: int
) -> None:
    _raw_rows(db, "b1", raw_rows)
    _loaded(db, "b1", landed, staged, quarantined)  # the last case: no quarantine row exists
    with pytest.raises(ContractViolation, match="ps_population/b1") as info:
        ledger.check_ledger(db)
    assert "rows landed must equal staged + quarantined" in str(info.value)


def test_watermark_advances(db: duckdb.DuckDBPyConnection) -> None:
    assert ledger.get_watermark(db, "hw_ehr_person") is None
    ledger.set_watermark(db, "hw_ehr_person", T0, "b1", T0)
    ledger.set_watermark(db, "hw_ehr_person", datetime(2026, 11, 2), "b2", T0)
    assert ledger.get_watermark(db, "hw_ehr_person") == datetime(2026, 11, 2)
    assert db.execute("SELECT count(*) FROM raw.watermarks").fetchone() == (1,)
