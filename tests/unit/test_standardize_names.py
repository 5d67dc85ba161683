"""Names: spelling, surname split, surname readings in pinyin, placeholder newborn names."""

from __future__ import annotations

import pytest
from pypinyin import lazy_pinyin

from linkage.standardize import (
    is_placeholder_name,
    normalize_name,
    split_name,
    standardize_name,
    surname_pinyin,
    to_pinyin,
)
from linkage.standardize.names import COMPOUND_SURNAMES, SURNAME_READINGS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("張偉", "张伟"),  # traditional → simplified
        ("歐陽鋒", "欧阳锋"),
        ("张 伟", "张伟"),  # stray space
        (" 张\u3000伟 ", "张伟"),  # ideographic space
        ("张\u200b伟", "张伟"),  # zero-width space from copy-paste
        ("张伟\n", "张伟"),
        ("ＪＯＨＮ　ＳＭＩＴＨ", "JOHNSMITH"),  # full-width Latin
        ("john smith", "JOHNSMITH"),
        ("阿卜杜．热合曼", "阿卜杜·热合曼"),  # full-width full stop
        ("阿卜杜.热合曼", "阿卜杜·热合曼"),
        ("阿卜杜•热合曼", "阿卜杜·热合曼"),  # bullet
        ("阿卜杜・热合曼", "阿卜杜·热合曼"),  # katakana middle dot
        ("阿卜杜‧热合曼", "阿卜杜·热合曼"),  # hyphenation point
        ("阿卜杜･热合曼", "阿卜杜·热合曼"),  # half-width katakana middle dot
        ("阿卜杜·热合曼", "阿卜杜·热合曼"),
        ("阿卜杜 · 热合曼", "阿卜杜·热合曼"),
        ("阿卜杜··热合曼·", "阿卜杜·热合曼"),
        (None, None),
        ("", None),
        ("  ", None),
    ],
)
def test_normalize_name(raw: str | None, expected: str | None) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("name", "surname", "given"),
    [
        ("张伟", "张", "伟"),
        ("王小明", "王", "小明"),
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马相如", "司马", "相如"),
        ("诸葛亮", "诸葛", "亮"),
        ("上官婉儿", "上官", "婉儿"),
        ("东方明", "东方", "明"),
        ("皇甫嵩", "皇甫", "嵩"),
        ("尉迟恭", "尉迟", "恭"),
        ("公孙胜", "公孙", "胜"),
        ("慕容复", "慕容", "复"),
        ("长孙无忌", "长孙", "无忌"),
        ("宇文泰", "宇文", "泰"),
        ("司徒雷", "司徒", "雷"),
        ("夏侯惇", "夏侯", "惇"),
        ("万俟卨", "万俟", "卨"),
        ("司马", "司", "马"),  # a two-character name is surname + given
        ("单", "单", None),
        ("阿卜杜·热合曼", "热合曼", "阿卜杜"),  # own name before the dot
        ("买买提·艾力·吐尔逊", "艾力·吐尔逊", "买买提"),
        ("JOHNSMITH", None, None),
        (None, None, None),
    ],
)
def test_split_name(name: str | None, surname: str | None, given: str | None) -> None:
    assert split_name(name) == (surname, given)


@pytest.mark.parametrize(
    ("raw", "pinyin"),
    [
        ("单伟", "shanwei"),
        ("曾伟", "zengwei"),
        ("区志明", "ouzhiming"),
        ("仇英", "qiuying"),
        ("解缙", "xiejin"),
        ("查良镛", "zhaliangyong"),
        ("朴树", "piaoshu"),
        ("盖聂", "genie"),
        ("乐毅", "yueyi"),
        ("万俟卨", "moqixie"),
        ("张伟", "zhangwei"),
        ("吕布", "lvbu"),
    ],
)
def test_name_pinyin_uses_surname_readings(raw: str, pinyin: str) -> None:
    assert standardize_name(raw).pinyin == pinyin


def test_surname_reading_applies_to_the_surname_only() -> None:
    """曾 as a given-name character keeps its ordinary reading (ceng in 曾经)."""
    assert standardize_name("李曾").given_pinyin == "ceng"
    assert standardize_name("曾曾").pinyin == "zengceng"


@pytest.mark.parametrize(("surname", "reading"), sorted(SURNAME_READINGS.items()))
def test_surname_table_only_holds_what_pypinyin_gets_wrong(surname: str, reading: str) -> None:
    assert "".join(lazy_pinyin(surname)) != reading
    assert surname_pinyin(surname) == reading


def test_compound_surnames_are_two_or_four_characters() -> None:
    assert {len(s) for s in COMPOUND_SURNAMES} <= {2, 4}


@pytest.mark.parametrize(("a", "b"), [("张伟", "章伟"), ("張偉", "章伟"), ("李娜", "理娜")])
def test_homophone_typos_share_a_pinyin_key(a: str, b: str) -> None:
    assert standardize_name(a).name_std != standardize_name(b).name_std
    assert standardize_name(a).pinyin == standardize_name(b).pinyin


def test_traditional_and_simplified_standardise_identically() -> None:
    assert standardize_name("張偉") == standardize_name("张伟")


def test_minority_name_keeps_whole_name_and_drops_dots_in_pinyin() -> None:
    result = standardize_name("阿卜杜．热合曼")
    assert result.name_std == "阿卜杜·热合曼"
    assert result.given_name == "阿卜杜"
    assert result.pinyin is not None and "·" not in result.pinyin
    assert result.pinyin == f"{to_pinyin('阿卜杜')}{to_pinyin('热合曼')}"


@pytest.mark.parametrize(
    "name",
    ["张丽之子", "张丽之女", "张丽之长子", "张丽之次女", "张丽之子2", "婴儿", "张丽婴儿", "男婴",
     "女婴1", "新生儿", "张丽新生儿", "未取名", "宝宝"],
)  # fmt: skip
def test_placeholder_names_are_flagged_and_not_split(name: str) -> None:
    assert is_placeholder_name(name)
    result = standardize_name(name)
    assert result.is_placeholder
    assert result.surname is None and result.given_name is None
    assert result.name_std == name


@pytest.mark.parametrize("name", ["张伟", "王之涣", "李子", "孙婷", "阿卜杜·热合曼", None])
def test_real_names_are_not_placeholders(name: str | None) -> None:
    assert not is_placeholder_name(name)
    assert not standardize_name(name).is_placeholder


def test_blank_name_is_all_none() -> None:
    result = standardize_name("  ")
    assert result.name_std is None and result.pinyin is None and not result.is_placeholder
