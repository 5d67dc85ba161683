"""Birth dates in every feed format (including Excel serials) and sex codes."""

from __future__ import annotations

import datetime as dt

import pytest

from linkage.standardize import excel_serial_to_date, normalize_sex, parse_birth_date

TODAY = dt.date(2026, 11, 1)
D = dt.date(1948, 3, 12)


@pytest.mark.parametrize(
    ("raw", "date", "ym", "precision"),
    [
        ("19480312", D, "1948-03", "day"),
        ("1948-03-12", D, "1948-03", "day"),
        ("1948/3/12", D, "1948-03", "day"),
        ("1948.03.12", D, "1948-03", "day"),
        ("1948年3月12日", D, "1948-03", "day"),
        ("1948年03月12号", D, "1948-03", "day"),
        ("１９４８０３１２", D, "1948-03", "day"),  # full-width
        ("1948-03-12T00:00:00", D, "1948-03", "day"),
        ("1948-03-12 00:00:00", D, "1948-03", "day"),
        ("1948-03-12T00:00:00+08:00", D, "1948-03", "day"),
        ("1948-03-12 00:00:00.000", D, "1948-03", "day"),
        ("17604", D, "1948-03", "day"),  # Excel serial
        ("17604.0", D, "1948-03", "day"),
        ("1948-03", None, "1948-03", "month"),
        ("1948-3", None, "1948-03", "month"),
        ("1948/03", None, "1948-03", "month"),
        ("1948年3月", None, "1948-03", "month"),
        ("1948年03月", None, "1948-03", "month"),
        ("194803", None, "1948-03", "month"),
        ("1948", None, None, "year"),
        ("1948年", None, None, "year"),
        (D, D, "1948-03", "day"),
        (dt.datetime(1948, 3, 12, 0, 0), D, "1948-03", "day"),
    ],
)
def test_parse_birth_date_formats(
    raw: str | dt.date, date: dt.date | None, ym: str | None, precision: str
) -> None:
    assert parse_birth_date(raw, today=TODAY) == (date, ym, precision)


@pytest.mark.parametrize(
    "raw",
    [
        "19480230",  # 30 February
        "19490229",  # not a leap year
        "1948-13-01",
        "1948-00",
        "194813",
        "19480132",
        "2027-01-01",  # after today
        "202612",  # a future month
        "18700101",  # before 1880
        "60",  # Excel's fictitious 1900-02-29 and too short to be a serial here
        "1234",  # too ambiguous: neither a plausible year nor a 5-digit serial
        "48-3-12",  # two-digit year
        "abc",
        "",
        None,
    ],
)
def test_impossible_or_ambiguous_dates_are_rejected(raw: str | None) -> None:
    assert parse_birth_date(raw, today=TODAY) == (None, None, None)


def test_leap_day_is_accepted() -> None:
    assert parse_birth_date("20000229", today=TODAY).date == dt.date(2000, 2, 29)


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        (1, dt.date(1900, 1, 1)),
        (59, dt.date(1900, 2, 28)),
        (60, None),  # 1900-02-29 never existed: Excel's leap-year bug
        (61, dt.date(1900, 3, 1)),
        (17604, dt.date(1948, 3, 12)),
        (17604.75, dt.date(1948, 3, 12)),  # time of day dropped
        (36526, dt.date(2000, 1, 1)),
        (0, None),
    ],
)
def test_excel_serial_to_date(serial: float, expected: dt.date | None) -> None:
    assert excel_serial_to_date(serial) == expected


def test_excel_serials_after_the_fake_leap_day_are_not_off_by_one() -> None:
    """Counting naively from 1899-12-31 would put every modern serial one day late."""
    naive = dt.date(1899, 12, 31) + dt.timedelta(days=17604)
    assert naive == dt.date(1948, 3, 13)
    assert excel_serial_to_date(17604) == dt.date(1948, 3, 12)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", "M"), ("女", "F"), ("男性", "M"), ("女性", "F"), ("M", "M"), ("F", "F"),
        ("m", "M"), ("f", "F"), ("male", "M"), ("Female", "F"), ("1", "M"), ("2", "F"),
        ("1.0", "M"), (" 女 ", "F"), ("０", None), ("0", None), ("9", None), ("未知", None),
        ("", None), (None, None),
    ],
)  # fmt: skip
def test_normalize_sex(raw: str | None, expected: str | None) -> None:
    assert normalize_sex(raw) == expected
