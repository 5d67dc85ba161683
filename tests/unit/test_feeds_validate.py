"""Validation on inline rows: what quarantines a row, and what linkage must still see."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from schemas.contract import feed_contract
from sharehub.feeds.validate import validate

BATCH = "b1"


def _frame(feed: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Delivered-header rows → the reader's shape (canonical names, text, row_number index)."""
    contract = feed_contract(feed)
    data = {
        spec.name: pd.Series(
            [None if r.get(spec.physical) in (None, "") else str(r[spec.physical]) for r in rows], dtype="str"
        )
        for spec in contract.columns
    }
    frame = pd.DataFrame(data)
    frame.index = pd.RangeIndex(1, len(rows) + 1, name="row_number")
    return frame


def _check(feed: str, rows: list[dict[str, Any]]) -> Any:
    return validate(_frame(feed, rows), feed_contract(feed), BATCH)


def test_clean_rows_pass_typed(samples: Any) -> None:
    result = _check("ps_population", samples.rows("ps_population", 2))
    assert result.rows_quarantined == 0 and result.rows_staged == 2
    typed = result.typed
    assert typed.loc[1, "birth_date"] == pd.Timestamp("1948-03-12")
    assert typed.loc[1, "updated_at"] == pd.Timestamp("2026-11-01 02:00:00")
    assert typed.loc[1, "name"] == "张伟"


@pytest.mark.parametrize(
    ("changes", "column", "check"),
    [
        ({"人员编号": None}, "人员编号", "not_nullable"),
        ({"人员编号": "  "}, "人员编号", "not_nullable"),
        ({"姓名": None}, "姓名", "not_nullable"),
        ({"姓名": "   "}, "姓名", "not_nullable"),
        ({"更新时间": "2026/11/01 02:00"}, "更新时间", "format"),
        ({"更新时间": "2026-11-31 02:00:00"}, "更新时间", "format"),
        ({"变动类型": "修改"}, "变动类型", "valid_values"),
        ({"性别": "M"}, "性别", "valid_values"),
        ({"人员类别": "常住人口"}, "人员类别", "valid_values"),
        ({"出生日期": "19481332"}, "出生日期", "format"),
        ({"出生日期": "1948-03-12"}, "出生日期", "format"),
        ({"出生日期": "1948031"}, "出生日期", "format"),
        ({"出生日期": None}, "出生日期", "not_nullable"),
        ({"姓名": "张\x00伟"}, "姓名", "no_control_characters"),
        ({"居住地址": "幸福里\r\n3号楼"}, "居住地址", "no_control_characters"),
        ({"姓名": "张" * 65}, "姓名", "max_length"),
        ({"公民身份号码": "1" * 33}, "公民身份号码", "max_length"),
    ],
)
def test_rows_that_cannot_be_keyed_or_typed_are_quarantined(
    samples: Any, changes: dict[str, Any], column: str, check: str
) -> None:
    rows = [samples.row("ps_population", 人员编号="P1"), samples.row("ps_population", **{"人员编号": "P2", **changes})]
    result = _check("ps_population", rows)
    assert result.rows_staged == 1 and list(result.typed.index) == [1]
    [q] = result.quarantine.to_dict("records")
    assert (q["feed"], q["batch_id"], q["row_number"]) == ("ps_population", BATCH, 2)
    assert (q["column_name"], q["check_name"]) == (column, check)
    assert json.loads(q["row_json"]) == {k: None if v in (None, "") else str(v) for k, v in rows[1].items()}
    assert column in q["reason"]


def test_duplicate_keys_quarantine_every_copy(samples: Any) -> None:
    rows = [samples.row("ps_population", 人员编号="P1"), samples.row("ps_population", 人员编号="P1 "),
            samples.row("ps_population", 人员编号="P2")]
    result = _check("ps_population", rows)
    assert sorted(result.quarantine["row_number"]) == [1, 2]
    assert set(result.quarantine["check_name"]) == {"field_uniqueness"}
    assert list(result.typed["person_no"]) == ["P2"]


def test_every_failure_of_a_row_is_reported_in_one_quarantine_record(samples: Any) -> None:
    rows = [samples.row("ps_population", 性别="X", 出生日期="1948", 变动类型="改")]
    [q] = _check("ps_population", rows).quarantine.to_dict("records")
    failures = json.loads(q["failures"])
    assert [f["column"] for f in failures] == ["性别", "出生日期", "变动类型"]
    assert q["column_name"] == "性别" and q["failure_value"] == "X"
    assert q["source_key"] == "P0001"


@pytest.mark.parametrize(
    ("feed", "changes"),
    [
        ("ps_population", {"公民身份号码": "110105194803120019"}),  # wrong check digit
        ("ps_population", {"公民身份号码": "110105480312001"}),  # legacy 15 digits
        ("ps_population", {"性别": " 男 "}),  # stray spaces around a code
        ("ca_recipients", {"身份证号": "1.10105E+17"}),  # Excel damage
        ("ca_recipients", {"身份证号": "11010519480312001x"}),
        ("ca_recipients", {"身份证号": None}),
        ("ca_recipients", {"出生年月": "1948年3月"}),
        ("ca_recipients", {"出生年月": "194803"}),
        ("ca_recipients", {"出生年月": "1948-03-01"}),
        ("ca_recipients", {"姓名": "張 偉"}),  # traditional character, stray space
        ("ca_recipients", {"姓名": "张玮"}),  # homophone
        ("ca_recipients", {"姓名": "ＺＨＡＮＧ"}),  # full-width
        ("ca_recipients", {"登记日期": "2020年1月5日"}),
        ("ca_recipients", {"登记日期": "2020/1/5"}),
        ("hw_ehr_person", {"id_no": None, "id_type": "99"}),
        ("hw_ehr_person", {"name": "张丽之子"}),
    ],
)
def test_department_quirks_are_not_quarantined(samples: Any, feed: str, changes: dict[str, Any]) -> None:
    result = _check(feed, [samples.row(feed, **changes)])
    assert result.rows_quarantined == 0, result.quarantine["reason"].tolist()


def test_coded_values_are_staged_without_stray_spaces(samples: Any) -> None:
    typed = _check("ps_population", [samples.row("ps_population", 性别=" 男 ")]).typed
    assert typed.loc[1, "sex"] == "男"


@pytest.mark.parametrize(
    ("feed", "changes", "column"),
    [
        ("ca_recipients", {"救助类别": "五保"}, "救助类别"),
        ("ca_recipients", {"状态": "暂停"}, "状态"),
        ("ca_recipients", {"月发放金额": "二百"}, "月发放金额"),
        ("ca_recipients", {"登记日期": "去年"}, "登记日期"),
        ("ca_recipients", {"对象编号": None}, "对象编号"),
        ("ps_housing", {"建筑面积": "89.5平米"}, "建筑面积"),
        ("ps_housing", {"房屋用途": "工业"}, "房屋用途"),
        ("hw_ehr_person", {"gender_code": 5}, "gender_code"),
        ("hw_ehr_person", {"is_deleted": "maybe"}, "is_deleted"),
        ("hw_ehr_person", {"updated_at": "soon"}, "updated_at"),
        ("hw_ehr_person", {"birth_date": "1948-02-30"}, "birth_date"),
    ],
)
def test_other_feeds_quarantine_per_their_contracts(
    samples: Any, feed: str, changes: dict[str, Any], column: str
) -> None:
    result = _check(feed, [samples.row(feed, **changes)])
    assert result.quarantine["column_name"].tolist() == [column]


def test_health_values_are_typed(samples: Any) -> None:
    typed = _check("hw_ehr_person", [samples.row("hw_ehr_person", is_deleted="1", gender_code="2")]).typed
    assert bool(typed.loc[1, "is_deleted"]) is True
    assert int(typed.loc[1, "gender_code"]) == 2
    assert typed.loc[1, "birth_date"] == pd.Timestamp("1948-03-12")
