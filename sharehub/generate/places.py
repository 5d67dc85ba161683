"""Reference data for places: region codes, streets, estates, clinics, phone prefixes.

Why real codes: resident IDs begin with a GB/T 2260 region code, and a standardiser or a
linkage model may use the code (district of registration, province of origin). Synthetic
codes would hide mistakes that real ones reveal, so every code here is a real one —
including 110103/110104, districts abolished in 2010 whose IDs are still in use.
"""

from __future__ import annotations

from itertools import accumulate

from sharehub.generate.reference import words

CITY = "北京市"
DISTRICT = "朝阳区"
DISTRICT_CODE = "110105"
PREFIX = CITY + DISTRICT

# Region code → (place name for an address, weight as a place of origin).
# Local hukou residents mostly carry 110105; other Beijing districts appear for people
# whose hukou moved here later; provinces for the floating population.
BEIJING_REGIONS = {
    "110105": ("北京市朝阳区", 80.0),
    "110101": ("北京市东城区", 3.0),
    "110102": ("北京市西城区", 3.0),
    "110103": ("北京市崇文区", 1.0),
    "110104": ("北京市宣武区", 1.0),
    "110106": ("北京市丰台区", 3.0),
    "110107": ("北京市石景山区", 1.0),
    "110108": ("北京市海淀区", 3.0),
    "110111": ("北京市房山区", 1.0),
    "110112": ("北京市通州区", 2.0),
    "110114": ("北京市昌平区", 1.0),
    "110115": ("北京市大兴区", 1.0),
}
PROVINCE_REGIONS = {
    "130102": ("河北省石家庄市长安区", 5.0),
    "130203": ("河北省唐山市路北区", 3.0),
    "130602": ("河北省保定市竞秀区", 5.0),
    "130681": ("河北省涿州市", 2.0),
    "131002": ("河北省廊坊市安次区", 3.0),
    "131082": ("河北省三河市", 2.0),
    "120104": ("天津市南开区", 2.0),
    "140105": ("山西省太原市小店区", 2.0),
    "150102": ("内蒙古自治区呼和浩特市新城区", 1.5),
    "210102": ("辽宁省沈阳市和平区", 2.0),
    "220102": ("吉林省长春市南关区", 1.5),
    "230102": ("黑龙江省哈尔滨市道里区", 3.0),
    "310104": ("上海市徐汇区", 1.0),
    "320102": ("江苏省南京市玄武区", 1.5),
    "320303": ("江苏省徐州市云龙区", 1.5),
    "330106": ("浙江省杭州市西湖区", 1.0),
    "340102": ("安徽省合肥市瑶海区", 2.0),
    "341202": ("安徽省阜阳市颍州区", 3.0),
    "350203": ("福建省厦门市思明区", 1.0),
    "360102": ("江西省南昌市东湖区", 1.0),
    "370102": ("山东省济南市历下区", 2.0),
    "371302": ("山东省临沂市兰山区", 3.0),
    "410105": ("河南省郑州市金水区", 3.0),
    "411302": ("河南省南阳市宛城区", 3.0),
    "411402": ("河南省商丘市梁园区", 3.0),
    "420106": ("湖北省武汉市武昌区", 2.0),
    "430102": ("湖南省长沙市芙蓉区", 1.5),
    "440106": ("广东省广州市天河区", 1.0),
    "450103": ("广西壮族自治区南宁市青秀区", 1.0),
    "500103": ("重庆市渝中区", 1.5),
    "510104": ("四川省成都市锦江区", 2.0),
    "511302": ("四川省南充市顺庆区", 2.0),
    "520102": ("贵州省贵阳市南明区", 1.0),
    "530102": ("云南省昆明市五华区", 1.0),
    "610113": ("陕西省西安市雁塔区", 1.5),
    "620102": ("甘肃省兰州市城关区", 1.0),
    "640104": ("宁夏回族自治区银川市兴庆区", 0.5),
}
# Regions of origin for minorities whose names differ in form.
MINORITY_REGIONS = {
    "维吾尔族": ("650102", "新疆维吾尔自治区乌鲁木齐市天山区"),
    "藏族": ("540102", "西藏自治区拉萨市城关区"),
    "蒙古族": ("152502", "内蒙古自治区锡林浩特市"),
}
REGION_NAMES = {code: name for code, (name, _) in {**BEIJING_REGIONS, **PROVINCE_REGIONS}.items()}
REGION_NAMES.update({code: name for code, name in MINORITY_REGIONS.values()})
REGION_CODES = tuple(sorted(REGION_NAMES))  # fixed order: index used by the ID counters

BEIJING_CODES = tuple(BEIJING_REGIONS)
BEIJING_CUM = tuple(accumulate(w for _, w in BEIJING_REGIONS.values()))
PROVINCE_CODES = tuple(PROVINCE_REGIONS)
PROVINCE_CUM = tuple(accumulate(w for _, w in PROVINCE_REGIONS.values()))

# Sub-district offices (街道) of the district, real names.
STREETS = tuple(
    s + "街道"
    for s in words("朝外 劲松 建外 呼家楼 八里庄 三里屯 团结湖 双井 垡头 左家庄 小关 和平街 酒仙桥 "
    "潘家园 六里屯 麦子店 香河园 亚运村 安贞 望京 大屯 奥运村 东湖 南磨房 高碑店")
)

# Estate names are built from a local place word and a suffix; the pair is chosen by a
# bijection of the estate index so that no two estates in one district share a name.
ESTATE_WORDS = words(
    "幸福 金台 光华 华威 劲松 潘家园 团结湖 水碓子 八里庄 红庙 延静 甜水园 六里屯 石佛营 "
    "呼家楼 关东店 芳草地 农光 麦子店 枣营 亮马 左家庄 曙光 柳芳 西坝河 和平 小关 安贞 "
    "安华 安慧 惠新 育慧 芍药居 望京 花家地 南湖 利泽 将台 驼房营 东坝 常营 管庄 双桥 "
    "豆各庄 王四营 小武基 垡头 双井 广渠 百子湾 南磨房 高碑店 平房 姚家园 十里堡 青年路 "
    "金盏 孙河 来广营 北苑 大屯 慧忠 华严 安苑 胜古 樱花 松榆 武圣 百环 弘善 广和 双花园 "
    "东柏 方舟 朝来 东风 春华 秀园 翠城 珠江 首城 领秀 康城 远洋 炫特 世纪 金隅 瑞和"
)
ESTATE_SUFFIXES = ("里", "北里", "南里", "西里", "东里", "家园", "小区", "花园", "园", "苑",
                   "新村", "嘉园", "东区", "西区", "公寓", "新城")
# Suffixes after which people add 小区 when they write the address ("幸福里小区").
TAKES_XIAOQU = frozenset({"里", "北里", "南里", "西里", "东里", "新村", "东区", "西区"})
ROAD_NAMES = words("朝阳路 朝阳北路 东三环中路 建国路 姚家园路 京顺路 广渠路 石佛营路 "
                   "十里堡路 望京街 阜通东大街 安定路 北四环东路 劲松路")

# Mobile prefixes in use for decades; newer numbers (19x) come from recent sign-ups.
MOBILE_PREFIXES = ("138", "139", "136", "135", "137", "150", "151", "152", "158", "159",
                   "182", "183", "187", "188", "130", "131", "132", "155", "156", "185",
                   "186", "133", "153", "180", "189", "177", "176", "134", "157", "181")
NEW_MOBILE_PREFIXES = ("191", "195", "196", "197", "198", "199", "166", "173")

# Community health centres, one per sub-district, named as the health system names them.
CLINICS = tuple(f"{DISTRICT}{s[:-2]}社区卫生服务中心" for s in STREETS)

KEY_POPULATION_ELDERLY = "65岁以上老年人"
CHRONIC_TAGS = (("高血压", 0.30), ("2型糖尿病", 0.12), ("冠心病", 0.06), ("脑卒中", 0.03),
                ("慢阻肺", 0.03))
RARE_TAGS = (("严重精神障碍", 0.004), ("肺结核", 0.001))

HOUSE_USES = (("住宅", 0.93), ("商住", 0.05), ("商业", 0.02))
