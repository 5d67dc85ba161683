"""The indexed candidate search must give exactly what jionlp's own search gives."""

from __future__ import annotations

import pytest

from linkage.standardize.addresses import _location_parser

HEADS = [
    "北京市朝阳区幸福里小区", "朝阳区光明路", "北京朝阳花园", "高碑店东区", "小关西区",
    "河北省保定市高碑店市", "上海市浦东新区世纪大道", "广东省深圳市南山区科技园",
    "新疆维吾尔自治区乌鲁木齐市天山区", "", "幸福里", "内蒙古呼和浩特市回民区",
]


@pytest.mark.parametrize("text", HEADS)
def test_indexed_candidates_equal_jionlp_own(text: str) -> None:
    parser = _location_parser()
    assert "get_candidates" in vars(parser), "the index was not installed"
    own = type(parser).get_candidates(parser, text)
    assert parser.get_candidates(text) == own
