"""Streaming writers for the deliveries: GB18030 CSV, XLSX, the SQLite health table, truth.

Why streaming: a 1M-person district does not fit comfortably in memory as rows, so each
writer takes rows chunk by chunk and keeps nothing. Why fixed timestamps: the same seed
must give byte-identical files (tests and benchmarks compare them), and an XLSX is a zip
whose entries and core properties carry the time of saving unless told otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from sharehub.generate.layouts import (
    CSV_ENCODING,
    HEALTH_COLUMNS,
    HEALTH_DDL,
    HEALTH_TABLE,
    SHEET,
)

log = logging.getLogger(__name__)

_ZIP_TIME = (2026, 11, 1, 2, 0, 0)


@dataclass(frozen=True)
class FileInfo:
    """One data file as listed in a manifest."""

    name: str
    rows: int
    sha256: str


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks (files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CsvFeedWriter:
    """A GB18030, comma-separated, double-quoted CSV with a Chinese header row."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self._fh = path.open("w", encoding=CSV_ENCODING, newline="")
        self._csv = csv.writer(self._fh, quoting=csv.QUOTE_MINIMAL, quotechar='"')
        self._csv.writerow(header)
        self.rows = 0

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self._csv.writerow(row)
            self.rows += 1

    def close(self) -> FileInfo:
        self._fh.close()
        return FileInfo(self.path.name, self.rows, sha256_of(self.path))


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed timestamp, so saving is reproducible."""

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        return info

    def write(self, filename: Any, arcname: Any = None, compress_type: Any = None,
              compresslevel: Any = None) -> None:
        with open(filename, "rb") as src, self.open(self._info(str(arcname or filename)), "w",
                                                     force_zip64=True) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None,
                 compresslevel: Any = None) -> None:
        name = (zinfo_or_arcname.filename if isinstance(zinfo_or_arcname, zipfile.ZipInfo)
                else str(zinfo_or_arcname))
        super().writestr(self._info(name), data)


class XlsxFeedWriter:
    """A write-only workbook with title rows above the header, as roster exports have."""

    def __init__(self, path: Path, header: Sequence[str], titles: Sequence[str],
                 created: datetime) -> None:
        self.path = path
        self._wb = Workbook(write_only=True)
        self._wb.properties.creator = "民政局"
        self._wb.properties.created = created
        self._wb.properties.modified = created
        self._ws = self._wb.create_sheet(SHEET)
        for title in titles:
            self._ws.append([title])
        self._ws.append(list(header))
        self.rows = 0

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self._ws.append(list(row))
            self.rows += 1

    def close(self) -> FileInfo:
        archive = _FixedTimeZip(self.path, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        ExcelWriter(self._wb, archive).save()
        return FileInfo(self.path.name, self.rows, sha256_of(self.path))


class HealthDbWriter:
    """Builds the health front-end table in a new SQLite file, then swaps it into place.

    Why rebuild rather than edit in place: the day-2 table is fully determined by the seed,
    so rebuilding gives the same bytes every time and a re-run is idempotent; readers only
    ever see a complete file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        self._tmp.unlink(missing_ok=True)
        self._con = sqlite3.connect(self._tmp)
        self._con.execute("PRAGMA journal_mode=OFF")
        self._con.execute("PRAGMA synchronous=OFF")
        self._con.execute(HEALTH_DDL)
        marks = ", ".join("?" * len(HEALTH_COLUMNS))
        self._insert = f"INSERT INTO {HEALTH_TABLE} ({', '.join(HEALTH_COLUMNS)}) VALUES ({marks})"
        self.rows = 0

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        before = self._con.total_changes
        self._con.executemany(self._insert, rows)
        self._con.commit()
        self.rows += self._con.total_changes - before

    def close(self) -> None:
        # the puller reads by updated_at watermark, as the real front-end table is indexed
        self._con.execute(f"CREATE INDEX ix_{HEALTH_TABLE}_updated ON {HEALTH_TABLE} (updated_at)")
        self._con.commit()
        self._con.close()
        os.replace(self._tmp, self.path)


TRUTH_HEADER = ("feed", "source_key", "true_person_id", "twin_of", "damage")


class TruthWriter:
    """``truth.csv``: which true person each source record describes.

    The first three columns are the contract every reader relies on; ``twin_of`` (the
    twin's true person id, empty if none) and ``damage`` (``;``-separated tags of what
    the generator did to the record, see `sharehub.generate.damage.TAGS`) let the
    evaluation count twins merged and group errors by cause.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        self._fh = self._tmp.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._csv.writerow(TRUTH_HEADER)
        self.rows = 0

    def write(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self._csv.writerow(row)
            self.rows += 1

    def close(self) -> None:
        self._fh.close()
        os.replace(self._tmp, self.path)


def write_manifest(folder: Path, feed: str, batch: str, extract_type: str, extracted_at: str,
                   files: Sequence[FileInfo]) -> Path:
    """``manifest.json`` of a delivery, written last so a complete folder has one."""
    manifest = {
        "feed": feed,
        "batch_id": batch,
        "extract_type": extract_type,
        "extracted_at": extracted_at,
        "files": [{"name": f.name, "rows": f.rows, "sha256": f.sha256} for f in files],
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    log.debug("wrote %s (%d rows)", path, sum(f.rows for f in files))
    return path
