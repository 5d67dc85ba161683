"""Reference data for people: surnames, given names, minority names, typing-error maps.

Why a module of its own: the realism of the synthetic district (and so the honesty of the
linkage accuracy measured on it) rests on these tables — a skewed surname distribution,
generation-typical given names that make 张伟 and 王芳 common, and the traditional and
homophone characters that hand typing really produces. Keeping them apart from the
generator logic lets a reviewer check the data without reading code.
"""

from __future__ import annotations

from itertools import accumulate


def words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words of a table literal (keeps the tables readable)."""
    return tuple(text.split())

# Top-100 surnames with approximate shares (per mille of the population), plus a few rare
# surnames that carry a special reading (单 shan, 曾 zeng, 区 ou) or are compound (欧阳).
_SURNAME_TABLE = """
王 72 李 72 张 68 刘 54 陈 45 杨 31 黄 22 赵 23 吴 20 周 19 徐 16 孙 15 马 13 朱 13
胡 12 郭 11 何 11 高 10 林 10 罗 9 郑 7 梁 7 谢 7 宋 6 唐 6 许 6 韩 6 冯 5 邓 5 曹 5
彭 5 曾 5 肖 4 田 4 董 4 袁 4 潘 4 于 4 蒋 4 蔡 4 余 4 杜 4 叶 4 程 3 苏 3 魏 3 吕 3
丁 3 任 3 沈 3 姚 3 卢 3 姜 3 崔 3 钟 3 谭 3 陆 3 汪 2 范 2 金 2 石 2 廖 2 贾 2 夏 2
韦 2 付 2 方 2 白 2 邹 2 孟 2 熊 2 秦 2 邱 2 江 2 尹 2 薛 2 闫 2 段 2 雷 1 侯 1 龙 1
史 1 陶 1 黎 1 贺 1 顾 1 毛 1 郝 1 龚 1 邵 1 万 1 钱 1 严 1 覃 1 武 1 戴 1 莫 1 孔 1
向 1 汤 1 单 0.3 区 0.1 欧阳 0.3 司马 0.1 上官 0.1 诸葛 0.1 皇甫 0.1
"""


def _pairs(table: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    tokens = table.split()
    names = tuple(tokens[0::2])
    weights = tuple(float(w) for w in tokens[1::2])
    return names, tuple(accumulate(weights))


SURNAMES, SURNAME_CUM = _pairs(_SURNAME_TABLE)

# Given names by birth cohort and sex. "Common" lists are whole given names drawn with
# Zipf-like weights (the head makes 张伟/王芳/李娜/刘洋 frequent); "chars" are the
# characters composed into the long tail of one- and two-character names.
_COMMON = {
    ("old", "M"): "建国 建华 国庆 志刚 振华 德明 国强 文华 建军 福贵 保国 永生 庆祥 德胜 树林 金山",
    ("old", "F"): "秀英 桂英 秀兰 玉兰 桂兰 淑珍 凤英 玉珍 秀珍 玉梅 淑兰 桂珍 秀云 凤兰 玉华 素珍",
    ("mid", "M"): "伟 强 军 勇 磊 涛 斌 明 超 刚 平 辉 健 波 杰 鹏 华 宇 浩 峰",
    ("mid", "F"): "芳 丽 敏 静 艳 娟 霞 燕 红 平 玲 英 华 梅 琳 萍 雪 颖 丹 洁",
    ("young", "M"): "伟 洋 磊 超 鹏 杰 浩 鑫 帅 宇 博 凯 龙 斌 亮 阳 晨 涛 辉 健",
    ("young", "F"): "娜 芳 静 婷 丹 雪 琳 颖 倩 晶 洋 敏 丽 佳 慧 璐 楠 蕾 欣 莹",
    ("kid", "M"): "子轩 浩然 宇轩 梓轩 俊熙 沐宸 浩宇 一鸣 子墨 宇航 睿 皓轩 博文 家豪 天佑 铭",
    ("kid", "F"): "梓涵 一诺 欣怡 雨涵 诗涵 子涵 若汐 可馨 紫萱 思彤 语桐 梦瑶 佳怡 雨桐 艺涵 欣妍",
}
_CHARS = {
    ("old", "M"): "国 建 志 德 文 明 福 宝 永 庆 树 金 玉 春 荣 长 振 学 有 广 保 忠 家 海 山 林 "
                  "富 贵 全 胜 成 祥 万 顺 喜 田 友 洪 兴 瑞",
    ("old", "F"): "秀 英 兰 玉 桂 珍 淑 凤 芝 华 梅 云 琴 荣 春 素 翠 花 莲 菊 霞 芬 月 香 娥 "
                  "彩 贞 敏 秋 冬 桃 杏 银 金 惠 萍 丽 琼 淑 清",
    ("mid", "M"): "伟 建 军 志 勇 立 海 红 新 卫 东 光 永 明 强 宏 国 春 晓 利 文 健 兵 斌 刚 "
                  "平 辉 波 涛 峰 华 林 杰 亮 宇 忠 彬 锋 鹏 毅",
    ("mid", "F"): "丽 红 艳 晓 敏 静 燕 霞 春 秀 玉 梅 芳 琴 小 慧 丹 萍 莉 雅 颖 娟 淑 冬 玲 "
                  "洁 英 华 凤 云 芬 琳 青 岩 虹 莹 妍 晶 蕾 瑛",
    ("young", "M"): "浩 宇 博 晨 凯 俊 鹏 明 文 志 思 杰 磊 天 泽 子 佳 鑫 振 嘉 晓 旭 昊 飞 帅 "
                    "超 阳 龙 涛 翔 宁 坤 琦 轩 彬 峥 锐 航 腾 达",
    ("young", "F"): "思 佳 雅 静 婷 梦 欣 晓 雨 丽 文 慧 月 琳 雪 悦 倩 淑 颖 璐 蕊 婧 菲 娜 丹 "
                    "洁 楠 晶 蕾 瑶 萌 爽 媛 妍 茜 薇 琪 露 云 芳",
    ("kid", "M"): "子 宇 浩 轩 梓 睿 泽 俊 博 晨 一 宸 辰 逸 铭 航 皓 奕 嘉 然 承 沐 煜 安 阳 "
                  "熙 锦 瑞 祺 恒 霖 朗 彦 哲 宁 钧 烨 晟 昊 卓",
    ("kid", "F"): "梓 子 涵 欣 雨 诗 可 思 一 若 语 依 梦 佳 艺 晨 妍 悦 萱 怡 彤 桐 瑶 汐 琪 "
                  "璐 嘉 沫 钰 菡 芮 歆 婉 晴 馨 冉 伊 乐 宁 初",
}


def cohort(birth_year: int) -> str:
    """Naming cohort of a birth year: names followed fashions that changed by decade."""
    if birth_year < 1960:
        return "old"
    if birth_year < 1980:
        return "mid"
    if birth_year < 2005:
        return "young"
    return "kid"


COMMON_GIVEN: dict[tuple[str, str], tuple[tuple[str, ...], tuple[float, ...]]] = {}
for _key, _text in _COMMON.items():
    _names = words(_text)
    _cum = tuple(accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(_names))))
    COMMON_GIVEN[_key] = (_names, _cum)
GIVEN_CHARS: dict[tuple[str, str], tuple[str, ...]] = {
    k: tuple(dict.fromkeys(words(v))) for k, v in _CHARS.items()
}

# Minority naming traditions whose names carry a middle dot or no surname at all.
UYGHUR_GIVEN_M = words("阿卜杜 买买提 艾力 吐尔逊 努尔 阿里木 热合曼 伊力哈木 库尔班 艾合买提")
UYGHUR_GIVEN_F = words("古丽娜尔 阿依古丽 帕提古丽 热依拉 米热古丽 阿依努尔 再努尔 布合力其")
TIBETAN_NAMES = words("扎西 次仁 卓玛 央金 格桑 拉姆 多吉 平措 德吉 尼玛 次旦 白玛")
MONGOLIAN_NAMES = words("巴特尔 其其格 苏日娜 乌兰 额尔敦 那仁 宝音 斯琴 朝鲁 图雅")
MIDDLE_DOT = "·"
DOT_VARIANTS = ("·", ".", "•", "・", "．")

# Foreign residents: surnames and given names as they appear in passports.
FOREIGN_SURNAMES = words("SMITH MULLER KIM PARK TANAKA SATO NGUYEN IVANOV GARCIA MARTIN")
FOREIGN_GIVEN_M = words("JOHN MICHAEL MINHO HIROSHI DAVID ALEXEI CARLOS PIERRE")
FOREIGN_GIVEN_F = words("MARY ANNA JIYEON YUKI SOPHIE ELENA MARIA LINH")

# Simplified → traditional, for names typed with a traditional-character input method.
TRADITIONAL = dict(
    pair
    for pair in zip(
        "张陈刘黄赵吴杨孙马郑谢韩冯邓许萧叶苏卢蒋贾钱汤阎陆钟罗邹龚顾贺龙万严闫"
        "伟丽华国军红兰凤东杰涛强静洁辉鹏飞胜庆荣贵宝刚义云龙凯宁爱兴丰进达连"
        "长发乐欢莲艳娇颖韵琼鸿轩诗梦晓锋铭阳泽书学顺广岚诺坚卫树银铁钢丽华纯",
        "張陳劉黃趙吳楊孫馬鄭謝韓馮鄧許蕭葉蘇盧蔣賈錢湯閻陸鍾羅鄒龔顧賀龍萬嚴閆"
        "偉麗華國軍紅蘭鳳東傑濤強靜潔輝鵬飛勝慶榮貴寶剛義雲龍凱寧愛興豐進達連"
        "長發樂歡蓮艷嬌穎韻瓊鴻軒詩夢曉鋒銘陽澤書學順廣嵐諾堅衛樹銀鐵鋼麗華純",
        strict=True,
    )
)

# Characters that share a reading: what a clerk types when hearing a name over the counter.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    key: tuple(value)
    for key, value in (
        line.split(":")
        for line in words("""
张:章 伟:玮炜 芳:方 丽:莉立 静:婧靖 明:铭 军:君钧 华:桦骅 英:瑛 兰:岚 红:宏虹
杰:洁 勇:永 敏:珉 洋:阳扬 涛:韬 磊:蕾 霞:侠 燕:艳雁 平:萍苹 刚:钢 斌:彬 峰:锋枫
辉:晖 鹏:朋 玲:铃苓 琳:林霖 婷:亭 欣:鑫馨 佳:嘉家 文:雯 凤:风 梅:玫 玉:钰 宇:雨羽
轩:萱 涵:晗 浩:皓昊 子:梓紫 建:健剑 桂:贵 珍:真贞 淑:舒 东:冬 云:芸 娟:鹃 颖:莹
倩:茜 晶:京 博:波 王:汪 李:理 刘:柳 陈:晨 林:琳 徐:许 吴:武伍 周:舟 朱:珠 何:和
郭:国 罗:骆 黄:皇 秀:绣 娜:纳 超:朝 强:蔷 国:帼 志:智 春:纯
""")
    )
}

# Relatives' terms used by civil-affairs clerks in the guardian column.
KINSHIP_SUFFIX = {"M": "之子", "F": "之女"}

# Ethnic groups whose members mostly carry Han-form names (the name does not reveal them).
ETHNIC_MINOR_WEIGHTS = (("回族", 3.0), ("满族", 3.0), ("蒙古族", 1.0), ("朝鲜族", 0.5),
                        ("土家族", 0.5), ("壮族", 0.5))
