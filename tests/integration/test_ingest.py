"""Pull → raw → quarantine → staging → person_records on a real DuckDB file.

Deliveries are built by hand (tests/conftest.py); test_ingest_generated.py pulls the
generator's two days, test_ingest_inputs.py the hostile and broken inputs one by one.
Every test ends by recounting the ledger: rows in = staged + quarantined.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schemas.staging import PersonRecords
from sharehub.errors import DeliveryRejected, ManifestError, SourceUnavailable
from sharehub.feeds import (
    BatchResult,
    build_person_records,
    check_ledger,
    pull_batch,
    pull_health,
    pull_pending,
)
from sharehub.settings import Settings

pytestmark = pytest.mark.integration

Con = duckdb.DuckDBPyConnection
POP, HOUSE, CA, HW = "ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"


def _rows(con: Con, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def _count(con: Con, table: str, where: str = "true", *params: Any) -> int:
    return int(_rows(con, f"SELECT count(*) FROM {table} WHERE {where}", *params)[0][0])


def _accounted(result: BatchResult) -> None:
    assert result.rows_landed == result.rows_staged + result.rows_quarantined


def _records(con: Con) -> dict[str, dict[str, Any]]:
    build_person_records(con)
    PersonRecords.validate(con.execute("SELECT * FROM staging.person_records").df(), lazy=True)
    cursor = con.execute("SELECT * FROM staging.person_records")
    names = [d[0] for d in cursor.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}


# --- well-formed deliveries --------------------------------------------------------------


def test_full_then_delta_keeps_history_and_ended_records(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(POP, "20261101-001", samples.rows(POP, 3))
    deliver(HOUSE, "20261101-001", [samples.row(HOUSE), samples.row(HOUSE, 房屋编码="H0002", 产权人姓名=None, 产权人证件号码=None)])
    deliver(POP, "20261102-001", [
        samples.row(POP, 人员编号="P0001", 变动类型="变更", 居住地址="新居3-2-501", 更新时间="2026-11-01 10:00:00"),
        samples.row(POP, 人员编号="P0002", 变动类型="注销", 更新时间="2026-11-01 11:00:00"),
        samples.row(POP, 人员编号="P0004", 姓名="王芳", 性别="女", 更新时间="2026-11-01 12:00:00"),
        samples.row(POP, 人员编号="P0003", 变动类型="变更"),  # same values: no new version
    ], extract_type="delta")

    results = pull_pending(con, settings)
    assert [(r.feed, r.batch_id, r.status) for r in results] == [
        (POP, "20261101-001", "loaded"), (POP, "20261102-001", "loaded"), (HOUSE, "20261101-001", "loaded")]
    for result in results:
        _accounted(result)
    assert results[1].changes == {"update": 1, "delete": 1, "insert": 1, "unchanged": 1}

    history = _rows(con, """SELECT person_no, record_status, valid_from, valid_to, is_current, batch_id,
                                   change_type, residence_address
                            FROM staging.ps_population ORDER BY person_no, valid_from, is_current""")
    p1 = [h for h in history if h[0] == "P0001"]
    assert [(h[1], h[4], h[6]) for h in p1] == [("active", False, "insert"), ("active", True, "update")]
    assert p1[0][3] == p1[1][2]  # the old version closes when the new one opens
    assert p1[1][7] == "新居3-2-501" and p1[1][3] is None
    p2 = [h for h in history if h[0] == "P0002"]
    assert [(h[1], h[4]) for h in p2] == [("active", False), ("deregistered", True)]
    assert str(p2[1][3]) == "2026-11-01 11:00:00"  # kept, with its end date
    assert len([h for h in history if h[0] == "P0003"]) == 1

    records = _records(con)
    assert records["ps_population:P0002"]["record_status"] == "deregistered"
    assert records["ps_population:P0001"]["address"] == "新居3-2-501"
    assert records["ps_population:P0001"]["batch_id"] == "20261102-001"
    assert records["ps_population:P0003"]["batch_id"] == "20261101-001"
    assert records["ps_population:P0001"]["birth_raw"] == "19480312"
    assert records["ps_population:P0001"]["id_type"] == "01"
    owner = records["ps_housing:H0001"]
    assert (owner["name"], owner["house_code"], owner["address"]) == ("张伟", "H0001", None)
    assert "ps_housing:H0002" not in records  # a dwelling without an owner is no person
    assert len(records) == 5
    check_ledger(con)


def test_civil_affairs_full_extract_replaces_the_previous_one(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(CA, "20261101-001", samples.rows(CA, 3))
    deliver(CA, "20261108-001", [samples.row(CA, 对象编号="M0001"), samples.row(CA, 对象编号="M0003", 状态="停保"),
                                 samples.row(CA, 对象编号="M0004", 姓名="")])  # M0004 quarantined
    deliver(CA, "20261115-001", [samples.row(CA, 对象编号="M0001"), samples.row(CA, 对象编号="M0002")])
    _, second, third = pull_pending(con, settings, feeds=[CA])
    assert second.changes == {"unchanged": 1, "update": 1, "inactivate": 1}
    assert second.rows_quarantined == 1
    _accounted(second)
    current = dict(_rows(con, "SELECT recipient_no, record_status FROM staging.ca_recipients WHERE is_current"))
    assert current == {"M0001": "active", "M0002": "active", "M0003": "inactive"}
    m2 = _rows(con, """SELECT record_status, valid_from, valid_to, is_current, change_type
                       FROM staging.ca_recipients WHERE recipient_no = 'M0002' ORDER BY batch_id""")
    assert [(s, cur, change) for s, _, _, cur, change in m2] == [
        ("active", False, "insert"), ("inactive", False, "inactivate"), ("active", True, "reactivate")]
    assert str(m2[1][2]) == "2026-11-08 02:00:00"  # valid_to set when it left the rolls
    assert third.changes["inactivate"] == 1  # M0003 left
    records = _records(con)
    assert records["ca_recipients:M0003"]["record_status"] == "inactive"
    assert records["ca_recipients:M0001"]["birth_raw"] == "1948-03"
    assert records["ca_recipients:M0001"]["updated_at"] is None
    check_ledger(con)


def test_health_incremental_pull_by_watermark(con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any) -> None:
    health_db(samples.rows(HW, 3))
    first = pull_health(con, settings)
    assert first is not None and (first.status, first.rows_staged) == ("loaded", 3)
    assert first.batch_id == "20261101T080000000000"
    assert pull_health(con, settings) is None  # nothing newer than the watermark

    health_db([samples.row(HW, record_id="E0002", is_deleted=1, updated_at="2026-11-02 09:00:00"),
               samples.row(HW, record_id="E0004", gender_code=2, updated_at="2026-11-02T10:00:00"),
               samples.row(HW, record_id="E0005", gender_code=7, updated_at="2026-11-02 11:00:00")])
    second = pull_health(con, settings)
    assert second is not None and (second.rows_landed, second.rows_staged, second.rows_quarantined) == (3, 2, 1)
    assert _rows(con, "SELECT watermark FROM raw.watermarks")[0][0].isoformat() == "2026-11-02T11:00:00"
    records = _records(con)
    assert records["hw_ehr_person:E0002"]["record_status"] == "deleted"
    assert records["hw_ehr_person:E0004"]["sex_raw"] == "女"
    assert records["hw_ehr_person:E0001"]["sex_raw"] == "男"
    assert records["hw_ehr_person:E0001"]["birth_raw"] == "1948-03-12"
    assert "hw_ehr_person:E0005" not in records
    assert pull_health(con, settings) is None
    check_ledger(con)


def test_health_rows_committed_late_behind_the_watermark_are_still_pulled(con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any) -> None:
    health_db(samples.rows(HW, 3))
    assert pull_health(con, settings) is not None  # watermark 2026-11-01 08:00
    # a clinic's transaction commits after that pull, dated a minute before the watermark
    health_db([samples.row(HW, record_id="E0009", name="迟到", updated_at="2026-11-01 07:59:00")])
    late = pull_health(con, settings)
    assert late is not None and (late.status, late.rows_landed, late.rows_staged) == ("loaded", 1, 1)
    assert late.batch_id.startswith("20261101T075900000000-late-")
    assert _rows(con, "SELECT max(watermark) FROM raw.watermarks")[0][0].isoformat() == "2026-11-01T08:00:00"
    assert _records(con)["hw_ehr_person:E0009"]["name"] == "迟到"
    assert pull_health(con, settings) is None  # the overlap holds nothing not landed
    # beyond the overlap window (SHAREHUB_HEALTH_OVERLAP_SECONDS, 600 s) a late row is missed
    health_db([samples.row(HW, record_id="E0010", updated_at="2026-11-01 07:40:00")])
    assert pull_health(con, settings) is None
    assert pull_health(con, settings.with_(health_overlap_seconds=3600)) is not None
    check_ledger(con)


def test_health_row_changed_in_the_overlap_without_a_newer_time_is_rejected(con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any) -> None:
    health_db(samples.rows(HW, 3))
    pull_health(con, settings)
    landed = _rows(con, "SELECT record_id, updated_at FROM raw.hw_ehr_person ORDER BY updated_at DESC")[0]
    health_db([samples.row(HW, record_id=landed[0], name="改名", updated_at=landed[1])])
    rejected = pull_health(con, settings)
    assert rejected is not None and rejected.status == "rejected"
    assert "changed without a newer updated_at" in str(rejected.error)
    assert f"health record {landed[0]}" in str(rejected.error)


def test_unreachable_health_database_is_retried_then_reported(con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any) -> None:
    health_db(samples.rows(HW, 1))
    pull_health(con, settings)
    before = _rows(con, "SELECT * FROM raw.watermarks")
    missing = settings.with_(health_url=f"sqlite:///{settings.landing.parent / 'gone' / 'health.db'}")
    with pytest.raises(SourceUnavailable, match="after 3 attempts") as info:
        pull_health(con, missing, backoff=0.001)
    assert info.value.feed == HW
    assert _rows(con, "SELECT * FROM raw.watermarks") == before
    assert not (settings.landing.parent / "gone").exists()


def test_pulling_again_changes_nothing(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    folder = deliver(POP, "20261101-001", samples.rows(POP, 2))
    deliver(CA, "20261101-001", samples.rows(CA, 2))
    pull_pending(con, settings)
    tables = ["raw.batches", "raw.ps_population", "staging.ps_population", "staging.ca_recipients", "quarantine.rows"]
    snapshot = {t: _rows(con, f"SELECT * EXCLUDE ({'received_at, loaded_at' if t == 'raw.batches' else 'batch_id'}) FROM {t} ORDER BY ALL") for t in tables}
    assert pull_pending(con, settings) == []
    again = pull_batch(con, settings, POP, folder)
    assert (again.status, again.rows_declared) == ("skipped", 2)
    assert {t: _rows(con, f"SELECT * EXCLUDE ({'received_at, loaded_at' if t == 'raw.batches' else 'batch_id'}) FROM {t} ORDER BY ALL") for t in tables} == snapshot
    assert build_person_records(con) == build_person_records(con) == 4


def test_same_batch_id_with_different_content_is_rejected(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(POP, "20261101-001", samples.rows(POP, 2))
    assert [r.status for r in pull_pending(con, settings)] == ["loaded"]
    folder = deliver(POP, "20261101-001", samples.rows(POP, 3))
    result = pull_batch(con, settings, POP, folder)
    assert result.status == "rejected" and isinstance(result.error, DeliveryRejected)
    assert (result.error.feed, result.error.batch) == (POP, "20261101-001")
    assert "already loaded" in (result.reason or "")
    statuses = _rows(con, "SELECT status FROM raw.batches ORDER BY status")
    assert statuses == [("loaded",), ("rejected",)]
    assert _count(con, "raw.ps_population") == 2 and _count(con, "staging.ps_population") == 2
    check_ledger(con)


# --- bad rows and bad deliveries ---------------------------------------------------------


def test_bad_rows_are_quarantined_and_accounted(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    rows = [
        samples.row(POP, 人员编号="P0001"),
        samples.row(POP, 人员编号="P0002", 出生日期="19481340"),
        samples.row(POP, 人员编号="P0003", 变动类型="修改"),
        samples.row(POP, 人员编号="P0004", 公民身份号码="110105194803120019"),  # wrong check digit: kept
        samples.row(POP, 人员编号="P0001"),  # duplicate key: both copies quarantined
        samples.row(POP, 人员编号=None),
    ]
    deliver(POP, "20261101-001", rows)
    [result] = pull_pending(con, settings)
    assert (result.status, result.rows_landed, result.rows_staged, result.rows_quarantined) == ("loaded", 6, 1, 5)
    quarantined = _rows(con, """SELECT row_number, source_key, column_name, check_name, failure_value
                                FROM quarantine.rows ORDER BY row_number""")
    assert quarantined == [
        (1, "P0001", "人员编号", "field_uniqueness", "P0001"),
        (2, "P0002", "出生日期", "format", "19481340"),
        (3, "P0003", "变动类型", "valid_values", "修改"),
        (5, "P0001", "人员编号", "field_uniqueness", "P0001"),
        (6, None, "人员编号", "not_nullable", None),
    ]
    row = json.loads(_rows(con, "SELECT row_json FROM quarantine.rows WHERE row_number = 2")[0][0])
    assert row["出生日期"] == "19481340" and row["姓名"] == "张伟"
    assert _rows(con, "SELECT person_no FROM staging.ps_population") == [("P0004",)]
    assert _count(con, "raw.ps_population") == 6
    assert _rows(con, "SELECT rows_landed, rows_staged, rows_quarantined FROM raw.batches") == [(6, 1, 5)]
    check_ledger(con)


def _assert_rejected_without_trace(con: Con, result: BatchResult, feed: str, batch: str) -> DeliveryRejected:
    assert result.status == "rejected"
    error = result.error
    assert isinstance(error, DeliveryRejected)
    assert (error.feed, error.batch) == (feed, batch)
    assert f"feed={feed}" in (result.reason or "") and f"batch={batch}" in (result.reason or "")
    ledger = _rows(con, "SELECT status, reason FROM raw.batches WHERE feed = ? AND batch_id = ?", feed, batch)
    assert ledger == [("rejected", result.reason)]
    assert _count(con, f"raw.{feed}", "batch_id = ?", batch) == 0
    assert _count(con, f"staging.{feed}", "batch_id = ?", batch) == 0
    assert _count(con, "quarantine.rows", "batch_id = ?", batch) == 0
    return error


BAD_DELIVERIES: list[tuple[str, dict[str, Any], type[DeliveryRejected], str, int | None, str | None]] = [
    ("utf8", {"encoding": "utf-8"}, DeliveryRejected, "UTF-8", None, None),
    ("renamed", {"header_rename": {"出生日期": "出生年月日"}}, DeliveryRejected, "出生年月日", None, "出生日期"),
    ("missing", {"header_drop": "更新时间"}, DeliveryRejected, "更新时间", None, "更新时间"),
    ("empty", {"data": b""}, DeliveryRejected, "empty", None, None),
    ("header only", {"header_only": True}, DeliveryRejected, "no data rows", None, None),
    ("truncated", {"truncate": True}, DeliveryRejected, "truncated", 3, None),
    ("count", {"rows_declared": 4}, ManifestError, "declares 4", None, None),
    ("checksum", {"tamper": True}, ManifestError, "sha256", None, None),
    ("no manifest", {"no_manifest": True}, ManifestError, "manifest", None, None),
    ("bad manifest", {"bad_manifest": True}, ManifestError, "JSON", None, None),
    ("missing file", {"no_file": True}, ManifestError, "no such file", None, None),
]


@pytest.mark.parametrize(("case", "how", "kind", "message", "row", "column"), BAD_DELIVERIES, ids=[c[0] for c in BAD_DELIVERIES])
def test_bad_deliveries_are_rejected_whole(
    con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any,
    case: str, how: dict[str, Any], kind: type[DeliveryRejected], message: str, row: int | None, column: str | None,
) -> None:
    batch = "20261101-001"
    rows = samples.rows(POP, 3)
    options: dict[str, Any] = {}
    if "encoding" in how:
        options["data"] = samples.csv(rows, encoding=how["encoding"])
    if "header_rename" in how:
        options["data"] = samples.csv([{how["header_rename"].get(k, k): v for k, v in r.items()} for r in rows])
    if "header_drop" in how:
        options["data"] = samples.csv([{k: v for k, v in r.items() if k != how["header_drop"]} for r in rows])
    if "data" in how:
        options["data"] = how["data"]
    if "header_only" in how:
        options["data"] = samples.csv(rows).split(b"\r\n")[0] + b"\r\n"
    if "truncate" in how:
        data = samples.csv(rows)
        options["data"] = data[: data.rindex("幸福里".encode("gb18030"))]
    if "rows_declared" in how:
        options["rows_declared"] = how["rows_declared"]
    folder = deliver(POP, batch, rows, **options)
    if how.get("tamper"):
        (folder / "population.csv").write_bytes(samples.csv(samples.rows(POP, 3, 7)))
    if how.get("no_manifest"):
        (folder / "manifest.json").unlink()
    if how.get("bad_manifest"):
        (folder / "manifest.json").write_text('{"feed": "ps_population",', encoding="utf-8")
    if how.get("no_file"):
        (folder / "population.csv").unlink()

    [result] = pull_pending(con, settings)
    error = _assert_rejected_without_trace(con, result, POP, batch)
    assert isinstance(error, kind)
    assert message in str(error)
    if row is not None:
        assert error.row == row and f"row={row}" in str(error)
    if column is not None:
        assert error.column == column and f"column={column}" in str(error)


def test_rejected_batch_stops_its_feed_until_fixed(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(POP, "20261101-001", samples.rows(POP, 2))
    deliver(POP, "20261102-001", samples.rows(POP, 2), extract_type="delta", rows_declared=5)
    deliver(POP, "20261103-001", samples.rows(POP, 1, 3), extract_type="delta")
    deliver(HOUSE, "20261101-001", samples.rows(HOUSE, 1))
    results = pull_pending(con, settings)
    assert [(r.feed, r.batch_id, r.status) for r in results] == [
        (POP, "20261101-001", "loaded"), (POP, "20261102-001", "rejected"), (HOUSE, "20261101-001", "loaded")]
    deliver(POP, "20261102-001", samples.rows(POP, 2), extract_type="delta")  # fixed re-delivery
    assert [(r.batch_id, r.status) for r in pull_pending(con, settings)] == [
        ("20261102-001", "loaded"), ("20261103-001", "loaded")]
    check_ledger(con)


def test_successive_updates_keep_one_current_version(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(POP, "20261101-001", samples.rows(POP, 1))
    for day, phone in ((2, "13800000002"), (3, "13800000003"), (4, "13800000002")):
        deliver(POP, f"2026110{day}-001", [samples.row(POP, 变动类型="变更", 联系电话=phone, 更新时间=f"2026-11-0{day} 01:00:00")],
                extract_type="delta")
    assert [r.changes for r in pull_pending(con, settings)][1:] == [{"update": 1}] * 3
    versions = _rows(con, "SELECT phone, is_current, valid_from, valid_to FROM staging.ps_population ORDER BY valid_from")
    assert [(p, cur) for p, cur, _, _ in versions] == [
        ("13800138000", False), ("13800000002", False), ("13800000003", False), ("13800000002", True)]
    assert all(versions[i][3] == versions[i + 1][2] for i in range(3))


def test_late_update_does_not_run_history_backwards(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(POP, "20261101-001", samples.rows(POP, 1))
    deliver(POP, "20261102-001", [samples.row(POP, 变动类型="变更", 姓名="张伟伟", 更新时间="2020-01-01 00:00:00")],
            extract_type="delta")
    pull_pending(con, settings)
    versions = _rows(con, "SELECT valid_from, valid_to, updated_at FROM staging.ps_population ORDER BY is_current")
    (old_from, old_to, _), (new_from, new_to, new_updated) = versions
    assert old_from <= old_to == new_from and new_to is None
    assert str(new_updated) == "2020-01-01 00:00:00"


def test_civil_affairs_delta_is_refused(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any) -> None:
    deliver(CA, "20261101-001", samples.rows(CA, 1), extract_type="delta")
    [result] = pull_pending(con, settings, feeds=[CA])
    assert "extract_type 'delta'" in str(_assert_rejected_without_trace(con, result, CA, "20261101-001"))


def test_xlsx_and_health_rejections_name_what_is_wrong(con: Con, settings: Settings, deliver: Callable[..., Path], health_db: Callable[..., Path], samples: Any) -> None:
    header = [h for h in samples.row(CA) if h != "救助类别"]
    deliver(CA, "20261101-001", samples.rows(CA, 2), header=header)
    [result] = pull_pending(con, settings, feeds=[CA])
    assert _assert_rejected_without_trace(con, result, CA, "20261101-001").column == "救助类别"

    path = health_db(samples.rows(HW, 1))
    import sqlite3
    from contextlib import closing
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("ALTER TABLE hw_ehr_person DROP COLUMN is_deleted")
    rejected = pull_health(con, settings)
    assert rejected is not None and rejected.status == "rejected"
    assert rejected.error is not None and rejected.error.column == "is_deleted"
    assert _rows(con, "SELECT count(*) FROM raw.watermarks") == [(0,)]


def test_a_failure_while_writing_leaves_nothing_behind(con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sharehub.feeds import staging

    deliver(POP, "20261101-001", samples.rows(POP, 2))

    def broken(*args: Any, **kwargs: Any) -> dict[str, int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(staging, "apply", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        pull_pending(con, settings)
    for table in ("raw.batches", "raw.ps_population", "staging.ps_population", "quarantine.rows"):
        assert _count(con, table) == 0, table
    monkeypatch.undo()
    assert [r.status for r in pull_pending(con, settings)] == ["loaded"]
