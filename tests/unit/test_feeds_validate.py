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


# --- hostile text: data to keep verbatim, or characters to quarantine --------------------

SQL_NAME = "'); DROP TABLE staging.ps_population; --"
HTML_NAME = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("feed", "changes"),
    [
        ("ps_population", {"姓名": SQL_NAME}),
        ("ps_population", {"姓名": HTML_NAME}),
        ("ps_population", {"居住地址": "幸福里'3号楼\"2单元\\501室; --"}),
        ("ps_housing", {"产权人姓名": SQL_NAME}),
        ("ca_recipients", {"姓名": HTML_NAME, "监护人姓名": "[/]"}),  # rich markup is data too
        ("hw_ehr_person", {"name": "Robert'); DROP TABLE hw_ehr_person;--"}),
        ("ps_population", {"姓名": "张\u3000伟"}),  # ideographic space: not a control character
        ("ps_population", {"姓名": "阿卜杜·热合曼"}),
    ],
)
def test_sql_and_html_text_is_data_not_a_failure(samples: Any, feed: str, changes: dict[str, Any]) -> None:
    result = _check(feed, [samples.row(feed, **changes)])
    assert result.rows_quarantined == 0, result.quarantine["reason"].tolist()
    contract = feed_contract(feed)
    for physical, value in changes.items():
        assert result.typed.loc[1, contract.physical_to_name[physical]] == value  # verbatim


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("张\x07伟", "U+0007"),  # BEL
        ("张\x1b[31m伟", "U+001B"),  # ESC: would drive a terminal
        ("张\t伟", "U+0009"),
        ("张伟\n", "U+000A"),
        ("张\x7f伟", "U+007F"),
        ("张\x85伟", "U+0085"),  # C1 NEL: a line break in some systems
    ],
)
def test_control_characters_quarantine_the_row_naming_them(samples: Any, value: str, code: str) -> None:
    rows = [samples.row("ps_population", 人员编号="P1"), samples.row("ps_population", 人员编号="P2", 姓名=value)]
    result = _check("ps_population", rows)
    [q] = result.quarantine.to_dict("records")
    assert (q["row_number"], q["column_name"], q["check_name"]) == (2, "姓名", "no_control_characters")
    assert q["failure_value"] == value
    assert code in q["reason"]
    assert json.loads(q["row_json"])["姓名"] == value
    assert list(result.typed["person_no"]) == ["P1"]


def test_a_one_megabyte_field_is_quarantined_whole_with_its_length(samples: Any) -> None:
    big = "幸" * (1 << 20)
    rows = [samples.row("ps_population", 人员编号="P1"), samples.row("ps_population", 人员编号="P2", 居住地址=big),
            samples.row("ps_population", 人员编号="P3")]
    result = _check("ps_population", rows)
    [q] = result.quarantine.to_dict("records")
    assert (q["row_number"], q["column_name"], q["check_name"]) == (2, "居住地址", "max_length")
    assert "1,048,576 characters; the contract allows at most 200" in q["reason"]
    assert len(q["reason"]) < 200  # the reason names the length, it does not repeat the value
    assert q["failure_value"] == big
    assert json.loads(q["row_json"]) == {k: None if v in (None, "") else str(v) for k, v in rows[1].items()}
    assert list(result.typed["person_no"]) == ["P1", "P3"]


@pytest.mark.parametrize(
    ("feed", "changes", "column", "words"),
    [
        ("ps_population", {"出生日期": "19480230"}, "出生日期", "'19480230' does not match the contract's format (yyyyMMdd)"),
        ("ps_population", {"更新时间": "2026-13-01 00:00:00"}, "更新时间", "(yyyy-MM-dd HH:mm:ss)"),
        ("ps_housing", {"更新时间": "2026/11/01"}, "更新时间", "'2026/11/01'"),
        ("ca_recipients", {"登记日期": "2020-02-30"}, "登记日期", "yyyy-MM-dd or yyyy/M/d"),
        ("hw_ehr_person", {"birth_date": "1948-02-30"}, "birth_date", "(yyyy-MM-dd)"),
        ("hw_ehr_person", {"updated_at": "yesterday"}, "updated_at", "(ISO8601)"),
        ("ps_population", {"性别": "M"}, "性别", "'M' is not in the contract's code list (男, 女)"),
    ],
)
def test_malformed_values_in_each_feed_are_explained(
    samples: Any, feed: str, changes: dict[str, Any], column: str, words: str
) -> None:
    [q] = _check(feed, [samples.row(feed, **changes)]).quarantine.to_dict("records")
    assert q["column_name"] == column and q["failure_value"] == str(next(iter(changes.values())))
    assert words in q["reason"]


def test_birth_year_month_is_text_and_never_quarantined(samples: Any) -> None:
    """出生年月 is typed by hand in many forms; the contract keeps it as text for linkage."""
    result = _check("ca_recipients", [samples.row("ca_recipients", 出生年月="不详")])
    assert result.rows_quarantined == 0 and result.typed.loc[1, "birth_ym"] == "不详"


def test_duplicate_key_reason_names_the_other_rows(samples: Any) -> None:
    rows = [samples.row("ps_population", 人员编号="P1"), samples.row("ps_population", 人员编号="P2"),
            samples.row("ps_population", 人员编号="P1")]
    reasons = _check("ps_population", rows).quarantine.set_index("row_number")["reason"]
    assert "(data rows 1, 3)" in reasons[1] and "(data rows 1, 3)" in reasons[3]


@pytest.mark.parametrize("feed", ["ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"])
def test_parsing_each_distinct_value_once_equals_parsing_every_row(feed: str) -> None:
    """`schemas.feeds.parse` parses each distinct value once and spreads the results back
    (a full extract repeats its dates and codes); it must type every row exactly as
    parsing row by row does, missing values, padding and bad values included."""
    from schemas.feeds import _parse, parse

    contract = feed_contract(feed)
    samples = {
        "date": ["19480312", " 19480312", "1948-03-12", "19481332", None, "", "20010101"],
        "timestamp": ["2026-11-01 02:00:00", "2026-11-31 02:00:00", None, "2026-11-01T02:00:00+08:00"],
        "integer": ["1", " 2", "2.0", "2.5", "x", None],
        "number": ["1.5", "1e3", "abc", None, " 7 "],
        "boolean": ["1", "TRUE", " no ", "maybe", None],
    }
    for spec in contract.columns:
        values = samples.get(spec.logical_type) or [" A ", "A", None, float("nan"), "B", "A "]
        if spec.valid_values:
            values = [*values, *(f" {v} " for v in spec.valid_values), *spec.valid_values]
        repeated = pd.Series(values * 5, dtype="object", name=spec.name)
        repeated.index = pd.RangeIndex(1, len(repeated) + 1, name="row_number")
        expected = _parse(repeated, spec)
        got = parse(repeated, spec)
        pd.testing.assert_series_equal(got, expected, check_names=False)
        assert [type(v) for v in got] == [type(v) for v in expected], spec.name


def test_timestamps_with_and_without_an_offset_type_together_in_china_time() -> None:
    """A timestamp column mixing values that name their offset with plain China-time
    values types each one (pandas alone refuses the mix and the delivery would fail)."""
    from schemas.feeds import parse

    spec = next(s for s in feed_contract("hw_ehr_person").columns if s.logical_type == "timestamp")
    values = pd.Series(["2026-11-01 02:00:00", "2026-11-01T02:00:00+08:00", "2026-10-31T18:00:00Z",
                        "2026-11-01T03:00:00+0900", "2026-11-01", "2026-11-31 02:00:00", None],
                       dtype="object")  # fmt: skip
    got = parse(values, spec)
    two = pd.Timestamp("2026-11-01 02:00:00")
    assert list(got[:4]) == [two, two, two, two]
    assert got[4] == pd.Timestamp("2026-11-01") and got[5:].isna().all()
