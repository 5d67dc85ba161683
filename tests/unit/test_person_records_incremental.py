"""``staging.person_records`` updated in place gives exactly the table a rebuild gives.

Deliveries are pulled through the real feed code (tests/conftest.py builds them) over four
days: updates, ends (注销, soft delete, off the rolls), reactivations, a dwelling whose
owner is emptied (its record drops out) and given back, and a day with nothing new. After
every day the incrementally updated table is compared, as a multiset and column by
column, with a from-scratch rebuild of the same staging tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sharehub.feeds import build_person_records, pull_health, pull_pending
from sharehub.feeds.person_records import TABLE
from sharehub.settings import Settings

Con = duckdb.DuckDBPyConnection
POP, HOUSE, CA, HW = "ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"


def _rows(con: Con, relation: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()


def _columns(con: Con, relation: str) -> list[tuple[Any, ...]]:
    return [tuple(r[:2]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _pull(con: Con, settings: Settings) -> None:
    pull_pending(con, settings)
    pull_health(con, settings)


SCOPED = "only the records of new batches rewritten"


def _update_and_compare(
    con: Con, caplog: pytest.LogCaptureFixture, *, scoped: bool = True
) -> list[tuple[Any, ...]]:
    """Update the table incrementally, check it against a rebuild, and keep the update."""
    caplog.clear()
    with caplog.at_level("INFO", logger="sharehub.feeds.person_records"):
        count = build_person_records(con)
    assert f"updated {TABLE}" in caplog.text  # the incremental path, not a rebuild
    assert (SCOPED in caplog.text) == scoped, caplog.text  # only the new batches' records
    con.execute(f"CREATE OR REPLACE TEMP TABLE _incremental AS SELECT * FROM {TABLE}")
    columns = _columns(con, TABLE)
    incremental = _rows(con, "_incremental")
    assert build_person_records(con, full=True) == count == len(incremental)
    assert _rows(con, TABLE) == incremental
    assert _columns(con, TABLE) == columns
    # Carry on from the incremental table (same rows, its own physical order).
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM _incremental")
    return incremental


def _statuses(rows: list[tuple[Any, ...]]) -> dict[str, str]:
    return {r[0]: r[13] for r in rows}


def test_incremental_updates_equal_a_rebuild_over_several_deliveries(
    con: Con,
    settings: Settings,
    deliver: Callable[..., Path],
    health_db: Callable[..., Path],
    samples: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deliver(POP, "20261101-001", samples.rows(POP, 4))
    deliver(HOUSE, "20261101-001", [
        samples.row(HOUSE),
        samples.row(HOUSE, 房屋编码="H0002", 产权人姓名=None, 产权人证件号码=None),
        samples.row(HOUSE, 房屋编码="H0003", 产权人姓名="李娜", 产权人证件号码="110105198001010028"),
    ])  # fmt: skip
    deliver(CA, "20261101-001", samples.rows(CA, 3))
    health_db(samples.rows(HW, 3))
    _pull(con, settings)
    with caplog.at_level("INFO", logger="sharehub.feeds.person_records"):
        first = build_person_records(con)
    assert f"built {TABLE}" in caplog.text and first == 12
    sorted_first = con.execute(f"SELECT feed, source_key FROM {TABLE}").fetchall()
    assert sorted_first == sorted(sorted_first)  # a first build is written sorted

    # Day 2: updates, ends of every kind, new records, an owner emptied and one added.
    deliver(POP, "20261102-001", [
        samples.row(POP, 人员编号="P0001", 变动类型="变更", 居住地址="新居3-2-501",
                    更新时间="2026-11-02 10:00:00"),
        samples.row(POP, 人员编号="P0002", 变动类型="注销", 更新时间="2026-11-02 11:00:00"),
        samples.row(POP, 人员编号="P0005", 姓名="王芳", 性别="女", 更新时间="2026-11-02 12:00:00"),
    ], extract_type="delta")  # fmt: skip
    deliver(HOUSE, "20261102-001", [
        samples.row(HOUSE, 变动类型="变更", 产权人姓名=None, 产权人证件号码=None,
                    更新时间="2026-11-02 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0002", 变动类型="变更", 产权人姓名="赵强",
                    更新时间="2026-11-02 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0003", 变动类型="注销", 更新时间="2026-11-02 02:00:00"),
    ], extract_type="delta")  # fmt: skip
    deliver(CA, "20261102-001", [samples.row(CA, 对象编号="M0001"),
                                 samples.row(CA, 对象编号="M0002", 家庭住址="阳光花园1-1-101"),
                                 samples.row(CA, 对象编号="M0004")])  # fmt: skip
    health_db([samples.row(HW, record_id="E0002", is_deleted=1, updated_at="2026-11-02 09:00:00"),
               samples.row(HW, record_id="E0001", gender_code=2, updated_at="2026-11-02 09:30:00"),
               samples.row(HW, record_id="E0004", updated_at="2026-11-02 10:00:00")])  # fmt: skip
    _pull(con, settings)
    day2 = _statuses(_update_and_compare(con, caplog))
    assert "ps_housing:H0001" not in day2 and day2["ps_housing:H0002"] == "active"
    assert day2["ps_housing:H0003"] == day2["ps_population:P0002"] == "deregistered"
    assert day2["ca_recipients:M0003"] == "inactive"
    assert day2["hw_ehr_person:E0002"] == "deleted"

    # Day 3: everything that ended comes back; the emptied owner is named again.
    deliver(POP, "20261103-001", [
        samples.row(POP, 人员编号="P0002", 变动类型="变更", 更新时间="2026-11-03 10:00:00"),
        samples.row(POP, 人员编号="P0003", 姓名="张卫", 变动类型="变更", 更新时间="2026-11-03 11:00:00"),
    ], extract_type="delta")  # fmt: skip
    deliver(HOUSE, "20261103-001", [
        samples.row(HOUSE, 变动类型="变更", 更新时间="2026-11-03 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0003", 变动类型="新增", 产权人姓名="李娜",
                    产权人证件号码="110105198001010028", 更新时间="2026-11-03 02:00:00"),
    ], extract_type="delta")  # fmt: skip
    deliver(CA, "20261103-001", samples.rows(CA, 4))
    health_db([samples.row(HW, record_id="E0002", is_deleted=0, updated_at="2026-11-03 09:00:00")])
    _pull(con, settings)
    day3 = _statuses(_update_and_compare(con, caplog))
    assert day3["ps_housing:H0001"] == day3["ps_housing:H0003"] == "active"
    assert day3["ps_population:P0002"] == day3["ca_recipients:M0003"] == "active"
    assert day3["hw_ehr_person:E0002"] == "active"

    # Day 4: nothing new. Nothing is rewritten, so not even the physical order moves.
    before = con.execute(f"SELECT * FROM {TABLE}").fetchall()
    caplog.clear()
    with caplog.at_level("INFO", logger="sharehub.feeds.person_records"):
        assert build_person_records(con) == len(before)
    assert "0 rewritten" in caplog.text and SCOPED in caplog.text
    assert con.execute(f"SELECT * FROM {TABLE}").fetchall() == before


def test_a_table_of_another_shape_is_rebuilt(
    con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    deliver(POP, "20261101-001", samples.rows(POP, 2))
    pull_pending(con, settings)
    build_person_records(con)
    expected = _rows(con, TABLE)
    columns = _columns(con, TABLE)
    con.execute(f"ALTER TABLE {TABLE} DROP COLUMN phone")  # as an older version wrote it
    with caplog.at_level("INFO", logger="sharehub.feeds.person_records"):
        assert build_person_records(con) == 2
    assert f"built {TABLE}" in caplog.text
    assert (_rows(con, TABLE), _columns(con, TABLE)) == (expected, columns)


def test_history_rewritten_by_hand_is_compared_in_full(
    con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Marks trust staging to grow only; a version deleted by hand (a record back to its
    previous one) or a table written by hand makes the next update compare everything."""
    deliver(POP, "20261101-001", samples.rows(POP, 3))
    pull_pending(con, settings)
    build_person_records(con)
    deliver(POP, "20261102-001", [samples.row(POP, 人员编号="P0002", 姓名="王芳", 变动类型="变更",
                                              更新时间="2026-11-02 10:00:00")],
            extract_type="delta")  # fmt: skip
    pull_pending(con, settings)
    _update_and_compare(con, caplog)
    con.execute("DELETE FROM staging.ps_population WHERE batch_id = '20261102-001'")
    con.execute("UPDATE staging.ps_population SET is_current = true WHERE person_no = 'P0002'")
    rows = _update_and_compare(con, caplog, scoped=False)
    assert [r[4] for r in rows if r[0] == "ps_population:P0002"] == ["张伟"]
    con.execute(f"DELETE FROM {TABLE} WHERE record_id = 'ps_population:P0001'")
    assert len(_update_and_compare(con, caplog, scoped=False)) == 3
    _update_and_compare(con, caplog)  # in step again
