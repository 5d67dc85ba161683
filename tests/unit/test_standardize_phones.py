"""Phones: prefixes and separators removed, mobile vs landline, unusable values → None."""

from __future__ import annotations

import pytest

from linkage.standardize import standardize_phone


@pytest.mark.parametrize(
    ("raw", "phone", "kind"),
    [
        ("13812345678", "13812345678", "mobile"),
        ("+86 138-1234-5678", "13812345678", "mobile"),
        ("+8613812345678", "13812345678", "mobile"),
        ("008613812345678", "13812345678", "mobile"),
        ("0086 138 1234 5678", "13812345678", "mobile"),
        ("8613812345678", "13812345678", "mobile"),
        ("(+86)138 1234 5678", "13812345678", "mobile"),
        ("１３８１２３４５６７８", "13812345678", "mobile"),  # full-width
        ("13812345678.0", "13812345678", "mobile"),  # Excel numeric cell, exact
        ("19912345678", "19912345678", "mobile"),
        ("010-65123456", "01065123456", "landline"),
        ("(010)65123456", "01065123456", "landline"),
        ("（010）6512-3456", "01065123456", "landline"),
        ("010 6512 3456", "01065123456", "landline"),
        ("+86 10 65123456", "01065123456", "landline"),  # trunk 0 dropped abroad
        ("0571-87654321", "057187654321", "landline"),
        ("0755-2345678", "07552345678", "landline"),
        ("010-65123456-801", "01065123456", "landline"),  # extension dropped
        ("010-65123456转801", "01065123456", "landline"),
        ("65123456", "65123456", "landline"),  # local number, no area code invented
        ("13812345678/13912345678", "13812345678", "mobile"),  # first usable wins
        ("无；13912345678", "13912345678", "mobile"),
    ],
)
def test_valid_phones(raw: str, phone: str, kind: str) -> None:
    result = standardize_phone(raw)
    assert (result.phone_std, result.kind) == (phone, kind)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "无",
        "12345",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "12812345678",  # no mobile prefix 12
        "1.38123E+10",  # Excel scientific notation lost digits
        "13800000000",  # filler
        "11111111111",
        "010-1234567",  # subscriber numbers do not start with 1
        "00000000",
    ],
)
def test_unusable_phones_are_none(raw: str | None) -> None:
    result = standardize_phone(raw)
    assert result.phone_std is None
    assert result.kind is None


def test_two_spellings_of_one_landline_agree() -> None:
    assert standardize_phone("010-65123456") == standardize_phone("(010) 6512 3456")
