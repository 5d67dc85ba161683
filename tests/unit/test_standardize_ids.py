"""Resident ID numbers: normalisation, 15→18 upgrade, check digit, Excel damage, decoding."""

from __future__ import annotations

import datetime as dt

import pytest

from linkage.standardize import check_digit, normalize_id, upgrade_15_to_18

# The example number printed in GB 11643-1999 itself, and its legacy 15-digit form.
GB_EXAMPLE_18 = "11010519491231002X"
GB_EXAMPLE_15 = "110105491231002"


def gb11643_check(first17: str) -> str:
    """Independent implementation from the standard: weights 2^(17-i) mod 11."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


def valid_id(first17: str) -> str:
    return first17 + gb11643_check(first17)


def test_weights_match_the_standard_table() -> None:
    """Guards the independent oracle itself against a typo."""
    assert [2 ** (17 - i) % 11 for i in range(17)] == [
        7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2,
    ]  # fmt: skip
    assert gb11643_check(GB_EXAMPLE_18[:17]) == "X"


@pytest.mark.parametrize(
    "first17",
    ["11010519491231002", "44030119900101123", "65010219751231456", "11010519480312123"],
)
def test_check_digit_agrees_with_independent_computation(first17: str) -> None:
    assert check_digit(first17) == gb11643_check(first17)


def test_upgrade_15_to_18_inserts_19_and_computes_check_digit() -> None:
    assert upgrade_15_to_18(GB_EXAMPLE_15) == GB_EXAMPLE_18
    other = "440301900101123"
    assert upgrade_15_to_18(other) == valid_id("44030119900101123")


def test_legacy_15_digit_id_is_upgraded_and_valid() -> None:
    result = normalize_id(GB_EXAMPLE_15)
    assert result.id_norm == GB_EXAMPLE_18
    assert result.valid and result.upgraded and result.problem is None
    assert result.birth == dt.date(1949, 12, 31)
    assert result.sex == "F"  # 17th character 2 is even
    assert result.region == "110105"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (GB_EXAMPLE_18, GB_EXAMPLE_18),
        ("11010519491231002x", GB_EXAMPLE_18),  # lowercase x
        ("１１０１０５１９４９１２３１００２Ｘ", GB_EXAMPLE_18),  # full-width
        ("１１０１０５１９４９１２３１００２ｘ", GB_EXAMPLE_18),
        (" 110105 19491231 002X ", GB_EXAMPLE_18),  # spaces
        ("110105-19491231-002X", GB_EXAMPLE_18),  # separators
        ("110105\u300019491231002X", GB_EXAMPLE_18),  # ideographic space
        ("110105491231002.0", GB_EXAMPLE_18),  # 15 digits survive Excel exactly
    ],
)
def test_typing_noise_is_normalised(raw: str, expected: str) -> None:
    result = normalize_id(raw)
    assert result.id_norm == expected
    assert result.valid
    assert result.problem is None


@pytest.mark.parametrize(
    "raw",
    [
        "1.10105E+17",
        "1.10105e+17",
        "1.101052E+17",
        "1.1010519491231E17",
        "110105194912310000",  # digits beyond Excel's 15 significant became zeros
        "110105194912310000.0",  # the same, rendered as a float
        "110105194912310020.0",  # 18 digits rendered as a float: precision was lost
    ],
)
def test_excel_damage_is_missing_not_wrong(raw: str) -> None:
    result = normalize_id(raw)
    assert result.id_norm is None
    assert not result.valid
    assert result.problem == "excel_damaged"
    assert result.birth is None and result.sex is None


def test_excel_trailing_zeros_rejected_even_if_check_digit_passes() -> None:
    """1 in 11 damaged values pass the check digit by chance; they must still be dropped."""
    first15 = next(
        f"1101051949123{n:02d}"
        for n in range(100)
        if gb11643_check(f"1101051949123{n:02d}00") == "0"
    )
    damaged = first15 + "000"
    assert gb11643_check(damaged[:17]) == "0"
    assert normalize_id(damaged).problem == "excel_damaged"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1101051949123100", "wrong_length"),  # 16 digits: lost digits
        ("11010519491231", "wrong_length"),
        ("1101051949123100211", "wrong_length"),  # 19 digits
        ("E12345678", "bad_format"),  # a passport number
        ("1101051949123100ZX", "bad_format"),
        ("110105194912310021", "bad_check_digit"),
        ("11010519491231002Y", "bad_format"),
    ],
)
def test_unusable_values_carry_a_problem_code(raw: str, problem: str) -> None:
    result = normalize_id(raw)
    assert result.problem == problem
    assert not result.valid


def test_bad_check_digit_keeps_the_value_but_decodes_nothing() -> None:
    result = normalize_id("110105194912310021")
    assert result.id_norm == "110105194912310021"
    assert (result.birth, result.sex, result.region) == (None, None, None)


@pytest.mark.parametrize(
    ("first17", "problem"),
    [
        ("11010519490230002", "bad_birth_date"),  # 30 February, correct check digit
        ("11010518000101002", "bad_birth_date"),  # before 1880
        ("99010519491231002", "bad_region"),  # no province 99
    ],
)
def test_check_digit_alone_does_not_make_an_id_valid(first17: str, problem: str) -> None:
    result = normalize_id(valid_id(first17))
    assert not result.valid
    assert result.problem == problem


@pytest.mark.parametrize("raw", [None, "", "   ", "无", "不详", "-"])
def test_blank_values_are_missing_without_a_problem(raw: str | None) -> None:
    result = normalize_id(raw)
    assert result.id_norm is None
    assert result.problem is None
    assert not result.valid


@pytest.mark.parametrize(
    ("first17", "birth", "sex"),
    [
        ("44030119900101123", dt.date(1990, 1, 1), "M"),  # 17th digit 3: odd → male
        ("65010219751231456", dt.date(1975, 12, 31), "F"),  # 17th digit 6: even → female
        ("11010520000229001", dt.date(2000, 2, 29), "M"),  # leap day
    ],
)
def test_valid_id_decodes_birth_sex_region(first17: str, birth: dt.date, sex: str) -> None:
    result = normalize_id(valid_id(first17))
    assert result.valid
    assert (result.birth, result.sex, result.region) == (birth, sex, first17[:6])
