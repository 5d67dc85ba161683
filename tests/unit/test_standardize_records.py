"""standardize_records: documented output columns, per-record resolution, no raising."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd
import pytest

from linkage.standardize import PERSON_RECORD_COLUMNS, standardize_records
from sharehub.errors import ContractViolation

# Written out from docs/architecture.md (linkage.person_features) and the model's extra
# columns, rather than imported, so that a change to the code cannot pass unnoticed.
DOCUMENTED = [
    "unique_id", "source_dataset", "name_std", "surname", "given_name", "name_pinyin",
    "id_norm", "id_valid", "birth_date", "birth_ym", "sex", "phone_std", "phone_kind",
    "addr_std", "addr_estate", "addr_building", "addr_unit", "addr_room", "addr_key",
    "record_status",
]  # fmt: skip
EXTRA = ["id_problem", "birth_conflict", "is_placeholder_name", "surname_pinyin",
         "given_pinyin", "hukou_addr_key"]  # fmt: skip
GB_ID = "11010519491231002X"  # GB 11643 example: born 1949-12-31, female


def record(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(PERSON_RECORD_COLUMNS)
    row.update(record_id="ps_population:1", feed="ps_population", source_key="1",
               batch_id="b1", record_status="active")  # fmt: skip
    row.update(values)
    return row


def standardize(*rows: dict[str, Any]) -> pd.DataFrame:
    return standardize_records(pd.DataFrame(list(rows), columns=list(PERSON_RECORD_COLUMNS)))


def test_output_has_exactly_the_documented_columns_in_order() -> None:
    out = standardize(record(name="张伟"))
    assert list(out.columns) == DOCUMENTED + EXTRA


def test_empty_input_gives_empty_output_with_the_columns() -> None:
    out = standardize_records(pd.DataFrame(columns=list(PERSON_RECORD_COLUMNS)))
    assert list(out.columns) == DOCUMENTED + EXTRA
    assert len(out) == 0


def test_duckdb_sees_sql_types_even_for_an_all_null_batch() -> None:
    """An all-NULL object column would reach DuckDB as type NULL and break the union
    with other batches; the output dtypes must carry the SQL type themselves."""
    out = standardize(record(), record(record_id="ps_population:2"))
    types = dict(zip(out.columns, duckdb.sql("SELECT * FROM out").types, strict=True))
    assert str(types["addr_key"]) == "VARCHAR"
    assert str(types["birth_date"]) == "DATE"
    assert str(types["id_valid"]) == "BOOLEAN"
    assert str(types["birth_conflict"]) == "BOOLEAN"


def test_one_record_end_to_end() -> None:
    out = standardize(
        record(
            record_id="ca_recipients:7",
            feed="ca_recipients",
            name="張 偉",
            id_number="110105491231002",
            sex_raw="女",
            birth_raw="1949年12月",
            phone="+86 138-1234-5678",
            address="北京市朝阳区幸福里小区3幢2单元501号",
            hukou_address="幸福里3-2-501",
            record_status="inactive",
        )
    ).iloc[0]
    assert out["unique_id"] == "ca_recipients:7"
    assert out["source_dataset"] == "ca_recipients"
    assert (out["name_std"], out["surname"], out["given_name"]) == ("张伟", "张", "伟")
    assert (out["name_pinyin"], out["surname_pinyin"], out["given_pinyin"]) == (
        "zhangwei", "zhang", "wei")  # fmt: skip
    assert out["id_norm"] == GB_ID and out["id_valid"]
    assert pd.isna(out["id_problem"])
    assert out["birth_date"] == dt.date(1949, 12, 31)  # day filled from the agreeing ID
    assert out["birth_ym"] == "1949-12"
    assert not out["birth_conflict"]
    assert out["sex"] == "F"
    assert (out["phone_std"], out["phone_kind"]) == ("13812345678", "mobile")
    assert out["addr_key"] == "幸福里|3|2|501"
    assert out["hukou_addr_key"] == "幸福里|3|2|501"
    assert (out["addr_estate"], out["addr_building"], out["addr_unit"], out["addr_room"]) == (
        "幸福里", "3", "2", "501")  # fmt: skip
    assert out["record_status"] == "inactive"
    assert not out["is_placeholder_name"]


@pytest.mark.parametrize(
    ("birth_raw", "birth_date", "birth_ym", "conflict"),
    [
        (None, dt.date(1949, 12, 31), "1949-12", False),  # filled from the ID
        ("19491231", dt.date(1949, 12, 31), "1949-12", False),
        ("1949-12", dt.date(1949, 12, 31), "1949-12", False),  # agrees: day from the ID
        ("19500101", dt.date(1950, 1, 1), "1950-01", True),  # own value kept, flagged
        ("1950-01", None, "1950-01", True),
        ("19490230", dt.date(1949, 12, 31), "1949-12", False),  # impossible → from ID
        ("1949-01-01", dt.date(1949, 12, 31), "1949-12", False),  # 1 Jan = day unknown
        ("1950-01-01", dt.date(1950, 1, 1), "1950-01", True),  # … but not another year
    ],
)
def test_birth_date_against_the_id(
    birth_raw: str | None, birth_date: dt.date | None, birth_ym: str, conflict: bool
) -> None:
    out = standardize(record(id_number=GB_ID, birth_raw=birth_raw)).iloc[0]
    assert (None if pd.isna(out["birth_date"]) else out["birth_date"]) == birth_date
    assert out["birth_ym"] == birth_ym
    assert bool(out["birth_conflict"]) is conflict


def test_invalid_id_fills_nothing_and_never_conflicts() -> None:
    out = standardize(record(id_number="110105194912310021", birth_raw="19500101")).iloc[0]
    assert out["id_problem"] == "bad_check_digit"
    assert not out["id_valid"]
    assert out["birth_date"] == dt.date(1950, 1, 1)
    assert not out["birth_conflict"]
    assert pd.isna(out["sex"])


@pytest.mark.parametrize(("sex_raw", "sex"), [(None, "F"), ("女", "F"), ("男", "M")])
def test_sex_from_the_id_only_when_the_record_has_none(sex_raw: str | None, sex: str) -> None:
    assert standardize(record(id_number=GB_ID, sex_raw=sex_raw)).iloc[0]["sex"] == sex


@pytest.mark.parametrize(
    ("id_number", "id_type", "problem"),
    [
        ("1.10105E+17", "01", "excel_damaged"),
        ("E12345678", "03", "not_resident_id"),  # passport in the ID column
        ("E12345678", None, "bad_format"),
        ("1101051949123100", "01", "wrong_length"),
    ],
)
def test_id_problems_are_reported_not_raised(
    id_number: str, id_type: str | None, problem: str
) -> None:
    out = standardize(record(id_number=id_number, id_type=id_type)).iloc[0]
    assert out["id_problem"] == problem
    assert pd.isna(out["id_norm"])
    assert not out["id_valid"]


def test_resident_id_with_passport_type_is_still_used() -> None:
    out = standardize(record(id_number=GB_ID, id_type="03")).iloc[0]
    assert out["id_norm"] == GB_ID and out["id_valid"]


def test_placeholder_name_flag() -> None:
    out = standardize(record(name="张丽之子"), record(record_id="x:2", name="张丽"))
    assert out["is_placeholder_name"].tolist() == [True, False]
    assert pd.isna(out.iloc[0]["surname"])


def test_garbage_everywhere_does_not_raise() -> None:
    out = standardize(
        record(
            name="  ",
            id_number="???",
            sex_raw="x",
            birth_raw="not a date",
            phone="call me",
            address="-",
            hukou_address="   ",
        )
    ).iloc[0]
    assert pd.isna(out["name_std"]) and pd.isna(out["id_norm"]) and pd.isna(out["birth_ym"])
    assert pd.isna(out["phone_std"]) and pd.isna(out["addr_key"]) and pd.isna(out["sex"])


def test_repeated_values_and_row_order_are_preserved() -> None:
    rows = [
        record(record_id=f"r:{i}", name=name)
        for i, name in enumerate(["张伟", "李娜", "张伟", None])
    ]
    out = standardize(*rows)
    assert out["unique_id"].tolist() == ["r:0", "r:1", "r:2", "r:3"]
    assert out["name_std"].tolist()[:3] == ["张伟", "李娜", "张伟"]
    assert pd.isna(out["name_std"].iloc[3])


def test_birth_raw_as_a_date_object() -> None:
    out = standardize(record(birth_raw=dt.date(1948, 3, 12))).iloc[0]
    assert out["birth_date"] == dt.date(1948, 3, 12)


def test_missing_input_column_is_a_contract_violation() -> None:
    frame = pd.DataFrame([record()]).drop(columns=["hukou_address"])
    with pytest.raises(ContractViolation, match="hukou_address"):
        standardize_records(frame)
