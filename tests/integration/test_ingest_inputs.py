"""Hand-made hostile and broken inputs, pulled end to end into a real DuckDB file.

Each test states the contract's decision for one kind of bad input and checks it through
raw, quarantine, staging and ``staging.person_records``: SQL and HTML text is data (kept
verbatim, harmless because every value is bound, never interpolated), control characters
and over-long fields quarantine the row whole, odd IDs are kept exactly as delivered,
malformed dates are named by feed, batch, row and column, extra columns are ignored with
a note, and an unreachable health database leaves everything where it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from sharehub.errors import SourceUnavailable
from sharehub.feeds import build_person_records, check_ledger, pull_health, pull_pending
from sharehub.settings import Settings

pytestmark = pytest.mark.integration

Con = duckdb.DuckDBPyConnection
POP, HOUSE, CA, HW = "ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"
B1 = "20261101-001"
SQL_NAME = "'); DROP TABLE staging.ps_population; --"
HTML_NAME = "<script>alert(1)</script>"


def _rows(con: Con, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def _one(con: Con, sql: str, *params: Any) -> Any:
    [(value,)] = _rows(con, sql, *params)
    return value


def _quarantined(con: Con, feed: str) -> dict[str, dict[str, Any]]:
    cursor = con.execute(
        "SELECT source_key, batch_id, row_number, column_name, check_name, failure_value, reason, "
        "CAST(row_json AS VARCHAR) AS row_json FROM quarantine.rows WHERE feed = ?", [feed])
    names = [d[0] for d in cursor.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}


def _delivered(row: dict[str, Any]) -> dict[str, Any]:
    """A row as quarantine.row_json keeps it: text as delivered, blanks as null."""
    return {k: None if v in (None, "") else str(v) for k, v in row.items()}


# --- SQL and HTML are data ---------------------------------------------------------------


def test_sql_and_html_in_names_are_stored_verbatim_and_harmlessly(
    con: Con, settings: Settings, deliver: Callable[..., Path], health_db: Callable[..., Path], samples: Any
) -> None:
    deliver(POP, B1, [
        samples.row(POP, 人员编号="P0001", 姓名=SQL_NAME),
        samples.row(POP, 人员编号="P0002", 姓名=HTML_NAME, 居住地址="幸福里'3号楼\"2单元\\501; --"),
        samples.row(POP, 人员编号="P0003"),
    ])
    deliver(HOUSE, B1, [samples.row(HOUSE, 产权人姓名=SQL_NAME)])
    deliver(CA, B1, [samples.row(CA, 对象编号="M0001", 姓名=HTML_NAME, 监护人姓名="[/] [red]x")])
    health_db([samples.row(HW, record_id="E'1; DROP TABLE x;--", name=SQL_NAME)])
    results = pull_pending(con, settings, feeds=[POP, HOUSE, CA, HW])
    assert [(r.status, r.rows_quarantined) for r in results] == [("loaded", 0)] * 4

    assert _rows(con, "SELECT person_no, name FROM raw.ps_population ORDER BY person_no")[:2] == [
        ("P0001", SQL_NAME), ("P0002", HTML_NAME)]
    assert _rows(con, "SELECT person_no, name, residence_address FROM staging.ps_population "
                      "ORDER BY person_no")[:2] == [
        ("P0001", SQL_NAME, "幸福里小区3号楼2单元501室"), ("P0002", HTML_NAME, "幸福里'3号楼\"2单元\\501; --")]
    assert _one(con, "SELECT guardian_name FROM staging.ca_recipients") == "[/] [red]x"
    build_person_records(con)
    names = dict(_rows(con, "SELECT record_id, name FROM staging.person_records"))
    assert names["ps_population:P0001"] == SQL_NAME
    assert names["ps_housing:H0001"] == SQL_NAME
    assert names["ca_recipients:M0001"] == HTML_NAME
    assert names["hw_ehr_person:E'1; DROP TABLE x;--"] == SQL_NAME
    assert _one(con, "SELECT count(*) FROM staging.ps_population") == 3  # the table is still there
    check_ledger(con)


# --- control characters and over-long fields quarantine the row whole --------------------


def test_control_characters_quarantine_the_row_whole_in_every_format(
    con: Con, settings: Settings, deliver: Callable[..., Path], health_db: Callable[..., Path], samples: Any
) -> None:
    pop_rows = [samples.row(POP, 人员编号="P0001"), samples.row(POP, 人员编号="P0002", 姓名="张\x1b[2J伟"),
                samples.row(POP, 人员编号="P0003", 户籍地址="北京\x85朝阳")]
    deliver(POP, B1, pop_rows)
    deliver(CA, B1, [samples.row(CA, 对象编号="M0001", 姓名="张_x0007_伟"), samples.row(CA, 对象编号="M0002")])
    health_db([samples.row(HW, record_id="E0001", name="李\x00四"), samples.row(HW, record_id="E0002")])
    results = pull_pending(con, settings, feeds=[POP, CA, HW])
    assert [(r.feed, r.rows_landed, r.rows_staged, r.rows_quarantined) for r in results] == [
        (POP, 3, 1, 2), (CA, 2, 1, 1), (HW, 2, 1, 1)]

    pop = _quarantined(con, POP)
    assert {k: (q["row_number"], q["column_name"], q["check_name"]) for k, q in pop.items()} == {
        "P0002": (2, "姓名", "no_control_characters"), "P0003": (3, "户籍地址", "no_control_characters")}
    assert json.loads(pop["P0002"]["row_json"]) == _delivered(pop_rows[1])  # kept whole
    assert pop["P0002"]["failure_value"] == "张\x1b[2J伟" and "U+001B" in pop["P0002"]["reason"]
    assert "U+0085" in pop["P0003"]["reason"]
    ca = _quarantined(con, CA)["M0001"]
    assert (ca["row_number"], ca["column_name"], ca["failure_value"]) == (1, "姓名", "张\x07伟")
    hw = _quarantined(con, HW)["E0001"]
    assert (hw["column_name"], hw["failure_value"]) == ("name", "李\x00四")
    assert _rows(con, "SELECT person_no FROM staging.ps_population") == [("P0001",)]
    check_ledger(con)


def test_a_one_megabyte_field_is_quarantined_naming_its_column_and_nothing_else_is_lost(
    con: Con, settings: Settings, deliver: Callable[..., Path], health_db: Callable[..., Path], samples: Any
) -> None:
    big = "幸福里" * 350_000  # 1,050,000 characters, about 2 MB in GB18030
    rows = [samples.row(POP, 人员编号="P0001"), samples.row(POP, 人员编号="P0002", 居住地址=big),
            samples.row(POP, 人员编号="P0003")]
    data = b"\r\n" + samples.csv(rows)  # a blank first line: read by the strict csv reader
    deliver(POP, B1, rows, data=data)
    health_db([samples.row(HW, record_id="E0001", key_population=big), samples.row(HW, record_id="E0002")])
    pop, hw = pull_pending(con, settings, feeds=[POP, HW])
    assert (pop.status, pop.rows_landed, pop.rows_staged, pop.rows_quarantined) == ("loaded", 3, 2, 1)
    assert (hw.status, hw.rows_landed, hw.rows_staged, hw.rows_quarantined) == ("loaded", 2, 1, 1)
    q = _quarantined(con, POP)["P0002"]
    assert (q["batch_id"], q["row_number"], q["column_name"], q["check_name"]) == (B1, 2, "居住地址", "max_length")
    assert "1,050,000 characters; the contract allows at most 200" in q["reason"]
    assert json.loads(q["row_json"]) == _delivered(rows[1])
    assert _one(con, "SELECT length(residence_address) FROM raw.ps_population WHERE row_number = 2") == len(big)
    assert _rows(con, "SELECT person_no FROM staging.ps_population ORDER BY 1") == [("P0001",), ("P0003",)]
    assert _quarantined(con, HW)["E0001"]["column_name"] == "key_population"
    check_ledger(con)


# --- IDs are kept exactly as delivered ------------------------------------------------------


def test_legacy_and_excel_damaged_ids_are_staged_as_delivered(
    con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any
) -> None:
    deliver(POP, B1, [samples.row(POP, 人员编号="P0001", 公民身份号码="110105480312001"),
                      samples.row(POP, 人员编号="P0002", 公民身份号码="11010519480312001x"),
                      samples.row(POP, 人员编号="P0003", 公民身份号码="110105194803120019")])  # bad check digit
    deliver(HOUSE, B1, [samples.row(HOUSE, 房屋编码="H0001", 产权人证件号码="110105480312001"),
                        samples.row(HOUSE, 房屋编码="H0002", 产权人证件号码="1.10105E+17")])
    cells = {"M0001": 1.10105194803112e17,  # an ID typed into a number cell
             "M0002": 110105480312001.0,  # a legacy 15-digit ID in a number cell
             "M0003": "1.10105E+17",  # the damage already saved as text
             "M0004": "110105194803120",  # digits lost
             "M0005": "110105480312001"}
    deliver(CA, B1, [samples.row(CA, 对象编号=k, 身份证号=v) for k, v in cells.items()], title_rows=2)
    assert all(r.rows_quarantined == 0 for r in pull_pending(con, settings))

    expected = {"ps_population:P0001": "110105480312001", "ps_population:P0002": "11010519480312001x",
                "ps_population:P0003": "110105194803120019", "ps_housing:H0001": "110105480312001",
                "ps_housing:H0002": "1.10105E+17", "ca_recipients:M0001": "1.10105E+17",
                "ca_recipients:M0002": "1.10105E+14", "ca_recipients:M0003": "1.10105E+17",
                "ca_recipients:M0004": "110105194803120", "ca_recipients:M0005": "110105480312001"}
    build_person_records(con)
    assert dict(_rows(con, "SELECT record_id, id_number FROM staging.person_records")) == expected
    assert dict(_rows(con, "SELECT recipient_no, id_number FROM raw.ca_recipients")) == {
        k.split(":")[1]: v for k, v in expected.items() if k.startswith(CA)}
    check_ledger(con)


# --- malformed dates, per feed ---------------------------------------------------------------


def test_malformed_dates_in_each_feed_name_feed_batch_row_and_column(
    con: Con, settings: Settings, deliver: Callable[..., Path], health_db: Callable[..., Path], samples: Any
) -> None:
    deliver(POP, B1, [samples.row(POP, 人员编号="P0001"), samples.row(POP, 人员编号="P0002", 出生日期="19480230"),
                      samples.row(POP, 人员编号="P0003", 更新时间="2026-11-01 25:00:00")])
    deliver(HOUSE, B1, [samples.row(HOUSE, 房屋编码="H0001", 更新时间="2026/11/01 02:00:00"),
                        samples.row(HOUSE, 房屋编码="H0002")])
    deliver(CA, B1, [samples.row(CA, 对象编号="M0001", 登记日期="2020-02-30"),
                     samples.row(CA, 对象编号="M0002", 出生年月="1948年13月")])  # 出生年月 is text: kept
    health_db([samples.row(HW, record_id="E0001", birth_date="1948-02-30"),
               samples.row(HW, record_id="E0002")])
    results = pull_pending(con, settings, feeds=[POP, HOUSE, CA, HW])
    assert [(r.feed, r.rows_staged, r.rows_quarantined) for r in results] == [
        (POP, 1, 2), (HOUSE, 1, 1), (CA, 1, 1), (HW, 1, 1)]
    found = _rows(con, "SELECT feed, batch_id, row_number, column_name, check_name, failure_value "
                       "FROM quarantine.rows ORDER BY feed, row_number")
    health_batch = results[3].batch_id
    assert found == [
        (CA, B1, 1, "登记日期", "format", "2020-02-30"),
        (HW, health_batch, 1, "birth_date", "format", "1948-02-30"),
        (HOUSE, B1, 1, "更新时间", "format", "2026/11/01 02:00:00"),
        (POP, B1, 2, "出生日期", "format", "19480230"),
        (POP, B1, 3, "更新时间", "format", "2026-11-01 25:00:00"),
    ]
    assert _one(con, "SELECT birth_ym FROM staging.ca_recipients") == "1948年13月"
    check_ledger(con)


# --- extra columns: ignored, noted, never in raw ------------------------------------------


def test_extra_columns_are_ignored_and_noted_in_the_ledger(
    con: Con, settings: Settings, deliver: Callable[..., Path], health_db: Callable[..., Path], samples: Any
) -> None:
    deliver(POP, B1, [samples.row(POP, 备注="临时登记")])
    deliver(CA, B1, [samples.row(CA, 备注="x")], header=[*samples.row(CA), "备注"])
    path = health_db([samples.row(HW)])
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("ALTER TABLE hw_ehr_person ADD COLUMN clinic_note TEXT")
    results = pull_pending(con, settings, feeds=[POP, CA, HW])
    assert [(r.status, r.rows_staged) for r in results] == [("loaded", 1)] * 3
    assert "备注" in (results[0].reason or "") and "备注" in (results[1].reason or "")
    assert results[2].reason is None  # the health read selects the contract's columns only
    notes = dict(_rows(con, "SELECT feed, notes FROM raw.batches WHERE status = 'loaded'"))
    assert "ignored column(s) not in the contract: 备注" in notes[POP] and notes[HW] is None
    raw_columns = [r[0] for r in _rows(con, "SELECT column_name FROM (DESCRIBE raw.ps_population)")]
    assert "备注" not in raw_columns
    check_ledger(con)


# --- the health database: unreachable, flaky, broken mid-load, unreadable stamps ------------


def test_unreachable_health_database_retries_with_backoff_then_leaves_everything(
    con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub.feeds import health

    health_db(samples.rows(HW, 2))
    pull_health(con, settings)
    tables = ("raw.batches", "raw.watermarks", "raw.hw_ehr_person", "staging.hw_ehr_person", "quarantine.rows")
    before = {t: _rows(con, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    waits: list[float] = []
    monkeypatch.setattr(health.time, "sleep", waits.append)
    down = settings.with_(health_url="postgresql+psycopg://hub@127.0.0.1:1/health_frontend?connect_timeout=1")
    with pytest.raises(SourceUnavailable) as info:
        pull_health(con, down, attempts=3, backoff=0.5)
    assert waits == [0.5, 1.0]
    assert info.value.feed == HW and "(hw_ehr_person) unreachable after 3 attempts" in info.value.message
    assert "the watermark is unchanged" in str(info.value)
    assert {t: _rows(con, f"SELECT * FROM {t} ORDER BY ALL") for t in tables} == before


def test_a_transient_health_failure_is_retried_and_then_loads(
    con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub.feeds import health

    health_db(samples.rows(HW, 2))
    real = health.read_since
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection reset"))
        return real(*args, **kwargs)

    monkeypatch.setattr(health, "read_since", flaky)
    monkeypatch.setattr(health.time, "sleep", lambda _: None)
    result = pull_health(con, settings, attempts=3)
    assert result is not None and (result.status, result.rows_staged) == ("loaded", 2)
    assert len(calls) == 3
    assert str(_one(con, "SELECT watermark FROM raw.watermarks")) == "2026-11-01 08:00:00"


def test_a_health_load_that_fails_midway_leaves_the_watermark(
    con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub.feeds import staging

    health_db([samples.row(HW, record_id="E0001")])
    pull_health(con, settings)
    health_db([samples.row(HW, record_id="E0002", updated_at="2026-11-02 08:00:00")])

    def broken(*args: Any, **kwargs: Any) -> dict[str, int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(staging, "apply", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        pull_health(con, settings)
    assert str(_one(con, "SELECT watermark FROM raw.watermarks")) == "2026-11-01 08:00:00"
    assert _one(con, "SELECT count(*) FROM raw.hw_ehr_person") == 1
    monkeypatch.undo()
    result = pull_health(con, settings)
    assert result is not None and result.rows_staged == 1  # the row was not skipped
    assert str(_one(con, "SELECT watermark FROM raw.watermarks")) == "2026-11-02 08:00:00"
    check_ledger(con)


def test_a_health_row_with_an_unreadable_updated_at_is_quarantined_once(
    con: Con, settings: Settings, health_db: Callable[..., Path], samples: Any
) -> None:
    """It cannot be placed against the watermark, so every read sees it; it must not pile up."""
    health_db([samples.row(HW, record_id="E0001"), samples.row(HW, record_id="E0002", updated_at="soon")])
    first = pull_health(con, settings)
    assert first is not None and (first.rows_staged, first.rows_quarantined) == (1, 1)
    assert pull_health(con, settings) is None  # not re-quarantined, no false rejection
    health_db([samples.row(HW, record_id="E0003", updated_at="later")])  # new, still unreadable
    second = pull_health(con, settings)
    assert second is not None and (second.status, second.rows_quarantined) == ("loaded", 1)
    assert second.batch_id.startswith(first.batch_id + "-")  # the watermark did not move
    assert pull_health(con, settings) is None
    health_db([samples.row(HW, record_id="E0002", updated_at="2026-11-03 00:00:00")])  # corrected
    third = pull_health(con, settings)
    assert third is not None and (third.rows_landed, third.rows_staged) == (1, 1)
    assert _rows(con, "SELECT status, count(*) FROM raw.batches GROUP BY ALL") == [("loaded", 3)]
    assert sorted(_rows(con, "SELECT source_key FROM quarantine.rows")) == [("E0002",), ("E0003",)]
    check_ledger(con)


# --- civil affairs: bad deliveries of the XLSX feed ----------------------------------------


@pytest.mark.parametrize(
    ("case", "column", "message"),
    [("empty", None, "not a readable XLSX workbook"), ("header only", None, "no data rows"),
     ("renamed", "身份证号", "身份证号码"), ("missing", "状态", "状态"),
     ("no header marker", "对象编号", "no header row holding 对象编号")],
)
def test_bad_civil_affairs_deliveries_are_rejected_whole(
    con: Con, settings: Settings, deliver: Callable[..., Path], samples: Any,
    case: str, column: str | None, message: str,
) -> None:
    rows = samples.rows(CA, 2)
    header = list(samples.row(CA))
    options: dict[str, Any] = {}
    if case == "empty":
        options["data"] = b""
    elif case == "header only":
        options["data"] = samples.xlsx([], title_rows=2)
    elif case == "renamed":
        options["data"] = samples.xlsx([{("身份证号码" if k == "身份证号" else k): v for k, v in r.items()}
                                        for r in rows], header=[h if h != "身份证号" else "身份证号码" for h in header])
    elif case == "missing":
        options["header"] = [h for h in header if h != "状态"]
    else:
        options["data"] = samples.xlsx([{("编号" if k == "对象编号" else k): v for k, v in r.items()}
                                        for r in rows], header=[h if h != "对象编号" else "编号" for h in header])
    deliver(CA, B1, rows, **options)
    [result] = pull_pending(con, settings, feeds=[CA])
    assert result.status == "rejected" and result.error is not None
    assert (result.error.feed, result.error.batch, result.error.column) == (CA, B1, column)
    assert message in str(result.error)
    for table in ("raw.ca_recipients", "staging.ca_recipients", "quarantine.rows"):
        assert _one(con, f"SELECT count(*) FROM {table}") == 0
