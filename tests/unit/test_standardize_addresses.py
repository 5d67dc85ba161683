"""Addresses: the dwelling key agrees across spellings; divisions come from jionlp."""

from __future__ import annotations

import pytest

from linkage.standardize import parse_dwelling, standardize_address
from linkage.standardize.chars import chinese_numeral_to_int

SAME_DWELLING = [
    "幸福里小区3号楼2单元501室",
    "幸福里3-2-501",
    "幸福里小区3栋2单元501",
    "北京市朝阳区幸福里小区3幢2单元501号",
    "北京市朝阳区幸福里小区三号楼二单元五〇一室",  # Chinese numerals
    "幸福里小区３号楼２单元５０１室",  # full-width digits
    "幸福里 小区 3号楼 2单元 501室",  # stray spaces
    "幸福裡小區3號樓2單元501室",  # traditional characters
    "幸福里3号楼2门501",  # 门 for unit (Beijing usage)
    "幸福里3#2单元501",
    "幸福里3号楼2单元5层501室",  # floor given as well
    "幸福里3号楼2-501",
    "幸福里小区3-2-501室",
    "朝阳区幸福里小区3号楼2单元501室",
    "北京朝阳幸福里小区3号楼2单元501室",
    "北京市朝阳区八里庄街道幸福里社区幸福里小区3号楼2单元501室",
    "建国路88号幸福里小区3号楼2单元501室",  # road and number before the estate
    "幸福里社区3号楼2单元501室",
    "幸福里小区03号楼02单元0501室",
]


@pytest.mark.parametrize("raw", SAME_DWELLING)
def test_spellings_of_one_dwelling_agree(raw: str) -> None:
    result = standardize_address(raw)
    assert (result.estate, result.building, result.unit, result.room) == ("幸福里", "3", "2", "501")
    assert result.key == "幸福里|3|2|501"
    assert result.addr_std == "幸福里3号楼2单元501室"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("幸福里小区3号楼2单元502室", "幸福里|3|2|502"),  # the neighbour differs
        ("幸福里小区4号楼2单元501室", "幸福里|4|2|501"),
        ("阳光花园1号楼1单元101", "阳光花园|1|1|101"),  # 花园 is part of the name
        ("阳光家园1号楼1单元101", "阳光家园|1|1|101"),
        ("朝阳区建国路88号院3号楼2单元501", "建国路88号|3|2|501"),  # 号院 is the estate
        ("河南省三门峡市湖滨区幸福里12-1-302", "幸福里|12|1|302"),  # 三门峡 not a number
        ("三里屯小区十二号楼一单元一〇二室", "三里屯|12|1|102"),
        ("幸福里A座1单元1001", "幸福里|A|1|1001"),
    ],
)
def test_dwelling_keys(raw: str, key: str) -> None:
    assert standardize_address(raw).key == key


@pytest.mark.parametrize(
    ("raw", "estate"),
    [
        ("朝阳花园1号楼1单元101", "朝阳花园"),  # jionlp alone would strip 朝阳 as a county
        ("长安小区2-3-402", "长安"),  # … and 长安 here
        ("高碑店东区5-3-101", "高碑店东区"),  # … Hebei's 高碑店市 here
        ("小关西区小区10号楼2单元702室", "小关西区"),  # … and Panzhihua's 西区 here
        ("北京市朝阳区高碑店东区5-3-101", "高碑店东区"),
    ],
)
def test_estate_names_that_look_like_place_names_survive(raw: str, estate: str) -> None:
    result = standardize_address(raw)
    assert result.estate == estate
    assert result.county in (None, "朝阳区")


@pytest.mark.parametrize(
    ("raw", "province", "city", "county"),
    [
        ("北京市朝阳区幸福里小区3幢2单元501号", "北京市", "北京市", "朝阳区"),
        ("河北省石家庄市长安区中山东路5号", "河北省", "石家庄市", "长安区"),
        (
            "新疆维吾尔自治区乌鲁木齐市天山区幸福里1-1-101",
            "新疆维吾尔自治区",
            "乌鲁木齐市",
            "天山区",
        ),
        ("幸福里小区3号楼2单元501室", None, None, None),
        ("中国北京市朝阳区幸福里3-2-501", "北京市", "北京市", "朝阳区"),
        ("北京朝阳幸福里3-2-501", "北京市", "北京市", "朝阳区"),  # short forms
    ],
)
def test_divisions_from_jionlp(
    raw: str, province: str | None, city: str | None, county: str | None
) -> None:
    result = standardize_address(raw)
    assert (result.province, result.city, result.county) == (province, city, county)


@pytest.mark.parametrize(
    "raw",
    ["幸福里小区3号楼501", "幸福里小区3号楼", "海淀区中关村大街27号", "幸福里3-501"],
)
def test_incomplete_dwellings_have_no_key(raw: str) -> None:
    assert standardize_address(raw).key is None


def test_building_and_room_without_unit() -> None:
    assert parse_dwelling("幸福里3-501") == ("幸福里", "3", None, "501")
    assert parse_dwelling("幸福里3号楼501") == ("幸福里", "3", None, "501")


def test_unparsed_address_keeps_text_below_the_county() -> None:
    result = standardize_address("北京市海淀区中关村大街27号")
    assert result.addr_std == "中关村大街27号"
    assert result.estate == "中关村大街27号"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_address(raw: str | None) -> None:
    result = standardize_address(raw)
    assert result.addr_std is None and result.key is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("三", 3), ("十", 10), ("十二", 12), ("二十", 20), ("二十一", 21), ("一百零五", 105),
     ("五〇一", 501), ("五零一", 501), ("两", 2), ("一千二百", 1200), ("三A", None), ("", None)],
)  # fmt: skip
def test_chinese_numerals(text: str, value: int | None) -> None:
    assert chinese_numeral_to_int(text) == value
