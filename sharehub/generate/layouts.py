"""The delivery layouts of the four feeds: names, headers, batch ids and timestamps.

Why in one place: the headers and file names are the interface the hub's pullers and
contracts are written against (shared/feeds/README.md). The generator, its tests and any
reader of its output should take them from here rather than retype them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sharehub.generate.damage import Damage

if TYPE_CHECKING:
    from sharehub.generate.people import Person

POPULATION, HOUSING = "ps_population", "ps_housing"
RECIPIENTS, HEALTH = "ca_recipients", "hw_ehr_person"
FILE_FEEDS = (POPULATION, HOUSING, RECIPIENTS)
FEEDS = (*FILE_FEEDS, HEALTH)
FILE_NAMES = {POPULATION: "population.csv", HOUSING: "housing.csv", RECIPIENTS: "recipients.xlsx"}
CSV_ENCODING = "gb18030"
SHEET = "服务对象"
HEALTH_TABLE = "hw_ehr_person"

POPULATION_HEADER = ("人员编号", "姓名", "公民身份号码", "性别", "民族", "出生日期", "户籍地址",
                     "居住地址", "联系电话", "人员类别", "房屋编码", "变动类型", "更新时间")
HOUSING_HEADER = ("房屋编码", "房屋地址", "房屋用途", "居住状态", "产权人姓名", "产权人证件号码",
                  "建筑面积", "变动类型", "更新时间")
RECIPIENTS_HEADER = ("对象编号", "姓名", "身份证号", "性别", "出生年月", "户籍地址", "家庭住址",
                     "联系电话", "救助类别", "月发放金额", "监护人姓名", "监护人电话", "登记日期", "状态")
HEALTH_COLUMNS = ("record_id", "name", "gender_code", "birth_date", "id_type", "id_no", "mobile",
                  "address", "key_population", "family_doctor", "updated_at", "is_deleted")
HEALTH_DDL = f"""CREATE TABLE {HEALTH_TABLE} (
    record_id TEXT PRIMARY KEY,
    name TEXT,
    gender_code INTEGER,
    birth_date DATE,
    id_type TEXT,
    id_no TEXT,
    mobile TEXT,
    address TEXT,
    key_population TEXT,
    family_doctor TEXT,
    updated_at TIMESTAMP,
    is_deleted BOOLEAN NOT NULL DEFAULT 0
)"""

# Column positions used when a day-2 event edits a day-1 row.
P_NAME, P_ID, P_HUKOU, P_ADDR, P_PHONE, P_HOUSE, P_CHANGE, P_UPDATED = 1, 2, 6, 7, 8, 10, 11, 12
H_OCCUPANCY, H_OWNER_NAME, H_CHANGE, H_UPDATED = 3, 4, 7, 8
C_NAME, C_ADDR, C_PHONE, C_STATUS = 1, 6, 7, 13
E_NAME, E_MOBILE, E_ADDRESS, E_TAGS, E_DOCTOR, E_UPDATED, E_DELETED = 1, 6, 7, 8, 9, 10, 11

INSERT, UPDATE, DELETE = "新增", "变更", "注销"
DAYS = {1: date(2026, 11, 1), 2: date(2026, 11, 2)}
EXTRACT_HOUR = {POPULATION: (2, 0), HOUSING: (2, 10), RECIPIENTS: (9, 30)}


def batch_id(day: int) -> str:
    """``20261101-001`` for day 1, ``20261102-001`` for day 2."""
    return f"{DAYS[day]:%Y%m%d}-001"


def extracted_at(feed: str, day: int) -> str:
    """ISO time of the extract in local time (+08:00)."""
    hour, minute = EXTRACT_HOUR[feed]
    return f"{DAYS[day].isoformat()}T{hour:02d}:{minute:02d}:00+08:00"


@dataclass(eq=False, slots=True)
class Record:
    """One delivered row, the true person it describes and what was done to it (truth.csv)."""

    key: str
    person: Person
    row: list[Any]
    second: bool = False  # a duplicate registration or a second clinic's record
    damage: Damage = field(default_factory=Damage)


_HISTORY_START = datetime(2015, 1, 1)
DAY1_END = datetime(2026, 10, 31, 23, 59, 59)
BEFORE_RENAMING = datetime(2022, 12, 31, 23, 59, 59)  # records that kept a former name


def past_stamp(rng: random.Random, since: date | None = None, until: datetime = DAY1_END) -> str:
    """An update time before the day-1 extract (or ``until``), skewed to recent years."""
    start = _HISTORY_START
    if since is not None:
        start = max(start, datetime.combine(since, datetime.min.time()))
    span = int((until - start).total_seconds())
    offset = int(span * (1.0 - rng.random() ** 1.8))
    return f"{start + timedelta(seconds=offset):%Y-%m-%d %H:%M:%S}"


def day2_stamp(rng: random.Random) -> str:
    """An update time during office hours of 2026-11-01, between the two extracts."""
    start = datetime(2026, 11, 1, 8, 0, 0)
    return f"{start + timedelta(seconds=rng.randrange(10 * 3600)):%Y-%m-%d %H:%M:%S}"
