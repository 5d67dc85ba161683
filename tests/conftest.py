"""Shared fixtures: a fresh warehouse in a temporary folder and hand-built deliveries.

The builders write deliveries the way the departments do (GB18030 CSV, XLSX with a title
row, a SQLite health table) plus a correct manifest, so each test states only the rows
and the one thing it breaks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest

from sharehub import warehouse
from sharehub.settings import Settings

FILES = {"ps_population": "population.csv", "ps_housing": "housing.csv", "ca_recipients": "recipients.xlsx"}

SAMPLE_ROWS: dict[str, dict[str, Any]] = {
    "ps_population": {
        "人员编号": "P0001", "姓名": "张伟", "公民身份号码": "110105194803120016", "性别": "男",
        "民族": "汉族", "出生日期": "19480312", "户籍地址": "北京市朝阳区幸福里小区3号楼2单元501室",
        "居住地址": "幸福里小区3号楼2单元501室", "联系电话": "13800138000", "人员类别": "户籍人口",
        "房屋编码": "H0001", "变动类型": "新增", "更新时间": "2026-11-01 02:00:00",
    },
    "ps_housing": {
        "房屋编码": "H0001", "房屋地址": "幸福里小区3号楼2单元501室", "房屋用途": "住宅",
        "居住状态": "自住", "产权人姓名": "张伟", "产权人证件号码": "110105194803120016",
        "建筑面积": "89.50", "变动类型": "新增", "更新时间": "2026-11-01 02:00:00",
    },
    "ca_recipients": {
        "对象编号": "M0001", "姓名": "張偉", "身份证号": "110105194803120016", "性别": "男",
        "出生年月": "1948-03", "户籍地址": "北京市朝阳区", "家庭住址": "幸福里3-2-501",
        "联系电话": "13900139000", "救助类别": "高龄津贴", "月发放金额": 200.0,
        "监护人姓名": None, "监护人电话": None, "登记日期": "2020-01-05", "状态": "在保",
    },
    "hw_ehr_person": {
        "record_id": "E0001", "name": "张伟", "gender_code": 1, "birth_date": "1948-03-12",
        "id_type": "01", "id_no": "110105194803120016", "mobile": "13800138000",
        "address": "幸福里小区3号楼2单元501室", "key_population": "65岁以上老年人;高血压",
        "family_doctor": "李医生", "updated_at": "2026-11-01 08:00:00", "is_deleted": 0,
    },
}


KEYS = {"ps_population": ("人员编号", "P"), "ps_housing": ("房屋编码", "H"),
        "ca_recipients": ("对象编号", "M"), "hw_ehr_person": ("record_id", "E")}


class Samples:
    """Well-formed rows keyed by delivered headers; tests change only what they test."""

    @staticmethod
    def row(feed: str, **changes: Any) -> dict[str, Any]:
        return {**SAMPLE_ROWS[feed], **changes}

    @staticmethod
    def rows(feed: str, count: int, start: int = 1, **changes: Any) -> list[dict[str, Any]]:
        column, prefix = KEYS[feed]
        return [{**SAMPLE_ROWS[feed], column: f"{prefix}{i:04d}", **changes} for i in range(start, start + count)]

    @staticmethod
    def csv(rows: list[dict[str, Any]], **options: Any) -> bytes:
        return csv_bytes(rows, **options)

    @staticmethod
    def xlsx(rows: list[dict[str, Any]], **options: Any) -> bytes:
        return xlsx_bytes(rows, **options)


@pytest.fixture
def samples() -> type[Samples]:
    return Samples


def csv_bytes(rows: list[dict[str, Any]], encoding: str = "gb18030", header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = header or list(rows[0])
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if r.get(h) is None else r.get(h) for h in header])
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[dict[str, Any]], title_rows: int = 1, header: list[str] | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "服务对象"
    for i in range(title_rows):
        sheet.append(["XX街道2026年11月服务对象花名册" if i == 0 else None])
    header = header or list(SAMPLE_ROWS["ca_recipients"])
    sheet.append(header)
    for r in rows:
        sheet.append([r.get(h) for h in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(warehouse=tmp_path / "warehouse.duckdb", landing=tmp_path / "landing")


@pytest.fixture
def con(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = warehouse.connect(settings)
    yield connection
    connection.close()


@pytest.fixture
def deliver(settings: Settings) -> Callable[..., Path]:
    """Write ``<landing>/<feed>/<batch_id>/`` with a data file and a matching manifest.

    ``data`` replaces the file's bytes; ``manifest`` entries override manifest fields;
    ``rows_declared`` overrides the declared row count.
    """

    def write(
        feed: str,
        batch_id: str,
        rows: list[dict[str, Any]],
        *,
        extract_type: str = "full",
        data: bytes | None = None,
        rows_declared: int | None = None,
        manifest: dict[str, Any] | None = None,
        **file_options: Any,
    ) -> Path:
        folder = Path(settings.landing) / feed / batch_id
        folder.mkdir(parents=True, exist_ok=True)
        name = FILES[feed]
        if data is None:
            data = xlsx_bytes(rows, **file_options) if name.endswith(".xlsx") else csv_bytes(rows, **file_options)
        (folder / name).write_bytes(data)
        body = {
            "feed": feed, "batch_id": batch_id, "extract_type": extract_type,
            "extracted_at": f"{batch_id[:4]}-{batch_id[4:6]}-{batch_id[6:8]}T02:00:00+08:00",
            "files": [{"name": name, "rows": len(rows) if rows_declared is None else rows_declared,
                       "sha256": hashlib.sha256(data).hexdigest()}],
        }
        body.update(manifest or {})
        (folder / "manifest.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        return folder

    return write


@pytest.fixture
def health_db(settings: Settings) -> Callable[[list[dict[str, Any]]], Path]:
    """Upsert rows into the SQLite health front-end table at the default health URL."""
    path = Path(settings.landing).parent / "health.db"

    def write(rows: list[dict[str, Any]]) -> Path:
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS hw_ehr_person (record_id TEXT PRIMARY KEY, name TEXT, "
                "gender_code INTEGER, birth_date DATE, id_type TEXT, id_no TEXT, mobile TEXT, "
                "address TEXT, key_population TEXT, family_doctor TEXT, updated_at TIMESTAMP, "
                "is_deleted BOOLEAN)"
            )
            for r in rows:
                db.execute(
                    f"INSERT OR REPLACE INTO hw_ehr_person ({', '.join(r)}) VALUES ({', '.join('?' * len(r))})",
                    list(r.values()),
                )
        return path

    return write
