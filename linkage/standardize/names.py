"""Personal names: one spelling per name, a surname/given split, and a pinyin key.

Why: the same resident is typed as 張偉, ``张 伟``, ``张伟`` (full-width) or, through a
homophone slip of the IME, 章伟. Minority names use a middle dot that arrives as any of
half a dozen look-alike characters. The linkage model compares the normalised name, its
parts, and a toneless pinyin key that makes homophone typos agree.

OpenCC (traditional→simplified) and pypinyin (readings) do the heavy lifting. pypinyin
0.55 has no surname mode (``pypinyin_dict`` is not installed), so the surname readings of
polyphonic characters (单 shan, not dan) are a hand-written table here; they are applied
to the surname only, never by mutating pypinyin's global dictionaries.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

from linkage.standardize.chars import clean_text, to_simplified

logger = logging.getLogger(__name__)

MIDDLE_DOT = "·"
# Look-alikes of the middle dot after NFKC (which already folds ． to . and ･ to ・).
_DOTS = re.compile(r"[.\u00b7\u2022\u2027\u2219\u22c5\u30fb\u2024\u02d1\u16eb\u0387\uff65]+")
_HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003134f]")

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
     "司徒", "夏侯", "万俟", "令狐", "澹台", "单于", "呼延", "轩辕", "东郭", "南宫", "闻人",
     "赫连", "百里", "公冶", "亓官", "钟离", "宗政", "濮阳", "太叔", "申屠", "公羊", "左丘",
     "拓跋", "乐正", "第五", "鲜于", "端木", "独孤", "西门", "司空", "司寇", "仲孙", "淳于",
     "巫马", "公西", "漆雕", "壤驷", "谷梁", "宰父", "夹谷", "段干", "梁丘", "羊舌", "微生",
     "公良", "东门", "南门", "归海", "呼衍", "叱干", "完颜", "爱新觉罗")
)  # fmt: skip

# Surname readings that differ from pypinyin's default reading. Only entries where the
# default is wrong belong here (万俟 moqi, 尉迟 yuchi … are already right); a test checks it.
SURNAME_READINGS: dict[str, str] = {
    "单": "shan", "曾": "zeng", "区": "ou", "仇": "qiu", "解": "xie", "查": "zha",
    "朴": "piao", "盖": "ge", "乐": "yue", "秘": "bi", "繁": "po", "缪": "miao",
    "覃": "qin", "翟": "zhai", "召": "shao", "员": "yun", "种": "chong", "黑": "he",
    "折": "she", "句": "gou", "能": "nai", "隗": "wei", "薄": "bo", "阚": "kan",
    "蔚": "yu", "祭": "zhai", "都": "du", "藏": "zang", "卜": "bu", "么": "yao",
    "洗": "xian", "粘": "nian", "重": "chong", "佴": "nai", "角": "jue", "乐正": "yuezheng",
}  # fmt: skip

# Names given to a newborn before it is named: 张丽之子 ("Zhang Li's son"), 之女, 之长子,
# 男婴, 张丽婴儿, 新生儿 … They carry the mother's name, not the child's, and must not
# make the child match the mother.
_PLACEHOLDER = re.compile(
    r"之[长次大小一二三四]?[子女儿婴]\d*$"
    r"|[男女]?婴儿?\d*$"
    r"|新生儿|未取名|未命名|无名氏"
    r"|^(?:宝宝|大宝|二宝|小宝|不详|无名|未知|无)\d*$"
)


@dataclass(frozen=True, slots=True)
class NameResult:
    """A standardised name with its parts and pinyin keys (all None when blank)."""

    name_std: str | None
    surname: str | None = None
    given_name: str | None = None
    pinyin: str | None = None
    surname_pinyin: str | None = None
    given_pinyin: str | None = None
    is_placeholder: bool = False


_BLANK = NameResult(name_std=None)


@lru_cache(maxsize=262144)
def normalize_name(raw: str | None) -> str | None:
    """Simplified, half-width, no whitespace, middle dots unified to ``·``.

    Latin letters (foreign residents) are upper-cased so that case does not matter. Dots
    at either end are dropped: they are typing residue, not part of a name.
    """
    text = clean_text(raw)
    if text is None:
        return None
    text = to_simplified(text)
    text = _DOTS.sub(MIDDLE_DOT, text).strip(MIDDLE_DOT).upper()
    return text or None


def is_placeholder_name(name_std: str | None) -> bool:
    """True for names of not-yet-named newborns (张丽之子, 男婴, 新生儿)."""
    return bool(name_std) and _PLACEHOLDER.search(name_std or "") is not None


def split_name(name_std: str | None) -> tuple[str | None, str | None]:
    """Split a standardised name into (surname, given name).

    * Compound surnames (欧阳, 司马, 诸葛 …) stay whole: 欧阳娜娜 → (欧阳, 娜娜). A
      two-character name that *is* a compound surname (司马) is read as surname + given.
    * Minority names with a middle dot (阿卜杜·热合曼): the part before the first dot is
      the person's own name, the rest is the father's name, which siblings share and so
      plays the role of a surname in comparisons.
    * Names without Chinese characters (foreign residents) are not split.
    """
    if not name_std:
        return None, None
    if MIDDLE_DOT in name_std:
        given, _, rest = name_std.partition(MIDDLE_DOT)
        return rest or None, given or None
    if not _HAN.match(name_std):
        return None, None
    if len(name_std) > 2 and name_std[:2] in COMPOUND_SURNAMES:
        return name_std[:2], name_std[2:]
    if len(name_std) > 4 and name_std[:4] in COMPOUND_SURNAMES:
        return name_std[:4], name_std[4:]
    return name_std[0], name_std[1:] or None


def _keep_alnum(chunk: str) -> str:
    """pypinyin callback for non-Chinese characters: keep letters and digits only."""
    return "".join(ch.lower() for ch in chunk if ch.isalnum())


@lru_cache(maxsize=262144)
def to_pinyin(text: str | None) -> str | None:
    """Toneless pinyin without separators (张伟 → ``zhangwei``, 吕 → ``lv``).

    Separators are left out so that the key compares as one string; syllable boundaries
    are never ambiguous enough in names to matter. Dots and punctuation are dropped.
    """
    if not text:
        return None
    syllables = lazy_pinyin(text, style=Style.NORMAL, errors=_keep_alnum)
    return "".join(syllables) or None


def surname_pinyin(surname: str | None) -> str | None:
    """Pinyin of a Han surname with its surname reading (单 → ``shan``, 曾 → ``zeng``)."""
    if not surname:
        return None
    return SURNAME_READINGS.get(surname) or to_pinyin(surname)


@lru_cache(maxsize=262144)
def standardize_name(raw: str | None) -> NameResult:
    """Everything the linkage model needs from one delivered name value.

    Placeholder names keep ``name_std`` and its pinyin (two records of the same unnamed
    newborn may still agree exactly) but get no surname or given name, because their
    characters are the mother's name.
    """
    name = normalize_name(raw)
    if name is None:
        return _BLANK
    if is_placeholder_name(name):
        return NameResult(name_std=name, pinyin=to_pinyin(name), is_placeholder=True)
    surname, given = split_name(name)
    if MIDDLE_DOT in name:
        # Transliterated names: no Han surname readings apply; keep the spoken order.
        sur_py, given_py = to_pinyin(surname), to_pinyin(given)
        full = "".join(part for part in (given_py, sur_py) if part) or None
    else:
        sur_py, given_py = surname_pinyin(surname), to_pinyin(given)
        full = (
            "".join(part for part in (sur_py, given_py) if part) or None
            if surname is not None
            else to_pinyin(name)
        )
    return NameResult(
        name_std=name,
        surname=surname,
        given_name=given,
        pinyin=full,
        surname_pinyin=sur_py,
        given_pinyin=given_py,
    )
