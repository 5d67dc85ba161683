"""Readers: delivered files become text rows, or the whole delivery is refused with a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from schemas.contract import feed_contract
from sharehub.errors import DeliveryRejected
from sharehub.feeds.health import render_value
from sharehub.feeds.readers import read_csv, read_csv_strict, read_file, read_xlsx, render_cell

POP = feed_contract("ps_population")
CA = feed_contract("ca_recipients")
BATCH = "20261101-001"


def _csv(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "population.csv"
    path.write_bytes(data)
    return path


def _rejected(path: Path, contract: Any = POP) -> DeliveryRejected:
    with pytest.raises(DeliveryRejected) as info:
        read_file(path, contract, BATCH)
    assert (info.value.feed, info.value.batch) == (contract.feed, BATCH)
    return info.value


def test_gb18030_csv_is_read_as_text_with_data_row_numbers(tmp_path: Path, samples: Any) -> None:
    rows = [
        samples.row("ps_population", 人员编号="P1", 姓名="阿卜杜·热合曼", 联系电话=None),
        samples.row("ps_population", 人员编号="P2", 居住地址='幸福里"东区",3号楼\n2单元'),
        samples.row("ps_population", 人员编号="P3", 姓名="𠀾明"),  # 4-byte GB18030 character
    ]
    frame = read_csv(_csv(tmp_path, samples.csv(rows)), POP, BATCH)
    assert list(frame.columns) == [c.name for c in POP.columns]
    assert list(frame.index) == [1, 2, 3] and frame.index.name == "row_number"
    assert frame.loc[1, "name"] == "阿卜杜·热合曼"
    assert pd.isna(frame.loc[1, "phone"])
    assert frame.loc[2, "residence_address"] == '幸福里"东区",3号楼\n2单元'
    assert frame.loc[3, "name"] == "𠀾明"
    assert frame.loc[1, "birth_date"] == "19480312"  # text, not typed


def test_fast_and_strict_csv_readers_agree(tmp_path: Path, samples: Any) -> None:
    rows = [
        samples.row("ps_population", 人员编号="P1", 姓名="阿卜杜·热合曼", 联系电话=None, 民族=""),
        samples.row("ps_population", 人员编号="P2", 居住地址='幸福里"东区",3号楼\n2单元'),
        samples.row("ps_population", 人员编号="P3", 姓名="𠀾明 ", 户籍地址="  "),
    ]
    data = "\ufeff".encode("gb18030") + samples.csv(rows) + b"\r\n"  # BOM and a blank last line
    path = _csv(tmp_path, data)
    fast, strict = read_csv(path, POP, BATCH), read_csv_strict(path, POP, BATCH)
    pd.testing.assert_frame_equal(fast, strict, check_dtype=False)
    assert fast.loc[3, "hukou_address"] == "  " and pd.isna(fast.loc[1, "ethnicity"])


def test_header_order_and_extra_columns_do_not_matter(tmp_path: Path, samples: Any) -> None:
    row = samples.row("ps_population", 备注="extra")
    header = ["备注", *reversed(list(samples.row("ps_population")))]
    frame = read_csv(_csv(tmp_path, samples.csv([row], header=header)), POP, BATCH)
    assert frame.loc[1, "person_no"] == "P0001"
    assert "备注" not in frame.columns


def test_utf8_file_declared_gb18030_is_rejected(tmp_path: Path, samples: Any) -> None:
    error = _rejected(_csv(tmp_path, samples.csv([samples.row("ps_population")], encoding="utf-8")))
    assert "UTF-8" in str(error) and "GB18030" in str(error)


def test_bytes_that_are_not_gb18030_are_rejected_with_the_line(tmp_path: Path, samples: Any) -> None:
    data = samples.csv(samples.rows("ps_population", 3))
    lines = data.split(b"\r\n")
    lines[2] = lines[2].replace(b"P0002", b"P\x81\x20002")  # lead byte then an invalid trail
    error = _rejected(_csv(tmp_path, b"\r\n".join(lines)))
    assert "line 3" in str(error) and error.row == 2


@pytest.mark.parametrize(
    ("rename", "column"),
    [({"姓名": "姓 名"}, "姓名"), ({"公民身份号码": "身份证号"}, "公民身份号码")],
)
def test_missing_or_renamed_column_is_rejected_naming_it(
    tmp_path: Path, samples: Any, rename: dict[str, str], column: str
) -> None:
    row = {rename.get(k, k): v for k, v in samples.row("ps_population").items()}
    error = _rejected(_csv(tmp_path, samples.csv([row])))
    assert error.column == column and column in str(error)
    assert rename[column] in str(error)  # the unexpected header is shown


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    assert "is empty" in str(_rejected(_csv(tmp_path, b"")))


def test_header_only_file_is_rejected(tmp_path: Path, samples: Any) -> None:
    header = ",".join(samples.row("ps_population")).encode("gb18030") + b"\r\n"
    assert "no data rows" in str(_rejected(_csv(tmp_path, header)))


def test_truncated_last_line_is_rejected_naming_the_row(tmp_path: Path, samples: Any) -> None:
    data = samples.csv(samples.rows("ps_population", 3))
    cut = data[: data.rindex(",幸福里".encode("gb18030"))]  # the file ends in the middle of row 3
    error = _rejected(_csv(tmp_path, cut))
    assert error.row == 3 and "truncated" in str(error)


def test_unterminated_quote_is_rejected(tmp_path: Path, samples: Any) -> None:
    data = samples.csv([*samples.rows("ps_population", 1), samples.row("ps_population", 居住地址="a,b")])
    error = _rejected(_csv(tmp_path, data[: data.rindex(b"a,b") + 2]))
    assert error.row == 2


def test_row_with_too_many_fields_in_the_middle_is_rejected(tmp_path: Path, samples: Any) -> None:
    lines = samples.csv(samples.rows("ps_population", 3)).split(b"\r\n")
    lines[2] += b",extra"
    error = _rejected(_csv(tmp_path, b"\r\n".join(lines)))
    assert error.row == 2 and "14 fields" in str(error)


def _xlsx(tmp_path: Path, rows: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "服务对象"
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    path = tmp_path / "recipients.xlsx"
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize("title_rows", [0, 1, 2])
def test_xlsx_header_is_found_below_title_rows(tmp_path: Path, samples: Any, title_rows: int) -> None:
    rows = [samples.row("ca_recipients", 身份证号=1.10105194803112e17, 出生年月=dt.date(1948, 3, 1)),
            samples.row("ca_recipients", 对象编号="M0002", 出生年月=194803, 联系电话=13900139000)]
    path = tmp_path / "recipients.xlsx"
    path.write_bytes(samples.xlsx(rows, title_rows=title_rows))
    frame = read_xlsx(path, CA, BATCH)
    assert list(frame.index) == [1, 2]
    assert frame.loc[1, "id_number"] == "1.10105E+17"
    assert frame.loc[1, "birth_ym"] == "1948-03-01"
    assert frame.loc[2, "birth_ym"] == "194803"
    assert frame.loc[2, "phone"] == "13900139000"
    assert frame.loc[1, "monthly_amount"] == "200"


def test_xlsx_blank_rows_are_not_data_rows(tmp_path: Path, samples: Any) -> None:
    header = list(samples.row("ca_recipients"))
    first = list(samples.row("ca_recipients").values())
    second = list(samples.row("ca_recipients", 对象编号="M0002").values())
    frame = read_xlsx(_xlsx(tmp_path, [["花名册"], header, first, [None] * len(header), second, []]), CA, BATCH)
    assert list(frame["recipient_no"]) == ["M0001", "M0002"]
    assert list(frame.index) == [1, 2]


def test_xlsx_without_header_marker_or_sheet_is_rejected(tmp_path: Path, samples: Any) -> None:
    header = [h if h != "对象编号" else "编号" for h in samples.row("ca_recipients")]
    error = _rejected(_xlsx(tmp_path, [header, list(samples.row("ca_recipients").values())]), CA)
    assert error.column == "对象编号"
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"  # type: ignore[union-attr]
    book.save(tmp_path / "recipients.xlsx")
    assert "no sheet '服务对象'" in str(_rejected(tmp_path / "recipients.xlsx", CA))


def test_xlsx_header_only_is_rejected(tmp_path: Path, samples: Any) -> None:
    assert "no data rows" in str(_rejected(_xlsx(tmp_path, [list(samples.row("ca_recipients"))]), CA))


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        (None, None),
        ("", None),
        ("1948年3月", "1948年3月"),
        (194803.0, "194803"),
        (13800138000.0, "13800138000"),
        (1.10105194803112e17, "1.10105E+17"),
        (110105480312001.0, "1.10105E+14"),
        (1.1e17, "1.1E+17"),
        (1200.5, "1200.5"),
        (dt.date(1948, 3, 1), "1948-03-01"),
        (dt.datetime(1948, 3, 1), "1948-03-01"),
        (dt.datetime(2026, 11, 1, 9, 30), "2026-11-01 09:30:00"),
        (True, "TRUE"),
    ],
)
def test_cells_render_as_excel_shows_them(cell: Any, text: str | None) -> None:
    assert render_cell(cell) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (True, "true"),
        (0, "0"),
        (dt.date(1948, 3, 12), "1948-03-12"),
        (dt.datetime(2026, 11, 1, 8, 0, 0, 5), "2026-11-01 08:00:00.000005"),
        (dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC), "2026-11-01 08:00:00"),
    ],
)
def test_health_values_render_as_text(value: Any, text: str | None) -> None:
    assert render_value(value) == text


def test_wrong_file_type_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "population.xlsx"
    path.write_bytes(b"x")
    assert "expects a .csv file" in str(_rejected(path))


# --- extra columns: the contract decides -----------------------------------------------


def test_extra_columns_are_listed_when_the_contract_ignores_them(tmp_path: Path, samples: Any) -> None:
    assert POP.extra_columns == "ignore"
    row = samples.row("ps_population", 备注="extra", 来源="x")
    frame = read_file(_csv(tmp_path, samples.csv([row])), POP, BATCH)
    assert frame.attrs["ignored_columns"] == ["备注", "来源"]
    assert list(frame.columns) == [c.name for c in POP.columns]


def test_extra_columns_reject_the_delivery_when_the_contract_says_so(tmp_path: Path, samples: Any) -> None:
    strict = dataclasses.replace(POP, extra_columns="reject")
    row = samples.row("ps_population", 备注="extra")
    error = _rejected(_csv(tmp_path, samples.csv([row])), strict)
    assert error.column == "备注" and "not in the contract" in str(error)
    xlsx = tmp_path / "recipients.xlsx"
    xlsx.write_bytes(samples.xlsx([samples.row("ca_recipients", 备注="x")],
                                  header=[*samples.row("ca_recipients"), "备注"]))
    assert read_file(xlsx, CA, BATCH).attrs["ignored_columns"] == ["备注"]
    assert _rejected(xlsx, dataclasses.replace(CA, extra_columns="reject")).column == "备注"


def test_no_extra_columns_means_an_empty_list(tmp_path: Path, samples: Any) -> None:
    frame = read_file(_csv(tmp_path, samples.csv([samples.row("ps_population")])), POP, BATCH)
    assert frame.attrs["ignored_columns"] == []


# --- long fields -------------------------------------------------------------------------


def test_strict_reader_reads_a_field_longer_than_the_csv_module_default(tmp_path: Path, samples: Any) -> None:
    """The csv module stops at 128 KiB per field; a 1 MB field must reach validation."""
    big = "幸" * (1 << 20)
    rows = [samples.row("ps_population", 人员编号="P1"), samples.row("ps_population", 人员编号="P2", 居住地址=big)]
    path = _csv(tmp_path, samples.csv(rows))
    strict = read_csv_strict(path, POP, BATCH)
    assert strict.loc[2, "residence_address"] == big
    pd.testing.assert_frame_equal(read_csv(path, POP, BATCH), strict, check_dtype=False)


def test_a_control_character_escaped_in_an_xlsx_cell_is_read_as_the_character(tmp_path: Path, samples: Any) -> None:
    """XLSX stores U+0007 as ``_x0007_``; the reader must see the character, so it quarantines."""
    path = tmp_path / "recipients.xlsx"
    path.write_bytes(samples.xlsx([samples.row("ca_recipients", 姓名="张_x0007_伟")]))
    assert read_xlsx(path, CA, BATCH).loc[1, "name"] == "张\x07伟"


def test_empty_or_unreadable_xlsx_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "recipients.xlsx"
    path.write_bytes(b"")
    assert "not a readable XLSX workbook" in str(_rejected(path, CA))
    book = openpyxl.Workbook()
    book.active.title = "服务对象"  # type: ignore[union-attr]
    book.save(path)
    assert "is empty" in str(_rejected(path, CA))
