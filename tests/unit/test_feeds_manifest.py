"""Manifest verification: a delivery that disagrees with its manifest is refused whole."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sharehub.errors import DeliveryRejected, ManifestError
from sharehub.feeds.manifest import read_manifest

FEED, BATCH = "ps_population", "20261101-001"


@pytest.fixture
def delivery(deliver: Callable[..., Path], samples: Any) -> Path:
    return deliver(FEED, BATCH, samples.rows(FEED, 3))


def _rewrite(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    body.update(changes)
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")


def test_valid_manifest_is_read_and_verified(delivery: Path) -> None:
    manifest = read_manifest(delivery, FEED)
    assert (manifest.feed, manifest.batch_id, manifest.extract_type) == (FEED, BATCH, "full")
    assert manifest.rows_declared == 3
    assert manifest.extracted_at is not None and manifest.extracted_at.hour == 2  # local UTC+8
    assert len(manifest.checksum) == 64


def test_checksum_depends_on_content_not_on_extract_time(delivery: Path) -> None:
    before = read_manifest(delivery, FEED).checksum
    _rewrite(delivery, extracted_at="2026-11-01T05:00:00+08:00")
    assert read_manifest(delivery, FEED).checksum == before
    (delivery / "population.csv").write_bytes(b"changed")
    _rewrite(delivery, files=[{"name": "population.csv", "rows": 3,
                               "sha256": hashlib.sha256(b"changed").hexdigest()}])
    assert read_manifest(delivery, FEED).checksum != before


def _error(folder: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        read_manifest(folder, FEED)
    assert info.value.feed == FEED and info.value.batch == BATCH
    assert isinstance(info.value, DeliveryRejected)
    return info.value


def test_missing_manifest(delivery: Path) -> None:
    (delivery / "manifest.json").unlink()
    assert "no manifest.json" in str(_error(delivery))


def test_malformed_manifest(delivery: Path) -> None:
    (delivery / "manifest.json").write_text("{not json", encoding="utf-8")
    assert "not valid UTF-8 JSON" in str(_error(delivery))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"feed": "ps_housing"}, "feed='ps_housing'"),
        ({"batch_id": "20261102-001"}, "batch_id='20261102-001'"),
        ({"extract_type": "weekly"}, "extract_type='weekly'"),
        ({"files": []}, "lists no files"),
        ({"files": "population.csv"}, "'files'"),
        ({"files": [{"name": "population.csv", "rows": "3", "sha256": "x"}]}, "'rows'"),
        ({"files": [{"name": "population.csv", "rows": True, "sha256": "x"}]}, "'rows'"),
        ({"files": [{"name": "../population.csv", "rows": 3, "sha256": "x"}]}, "no such file"),
        ({"extracted_at": "yesterday"}, "extracted_at"),
    ],
)
def test_manifest_that_disagrees_with_its_folder(delivery: Path, changes: dict[str, object], message: str) -> None:
    _rewrite(delivery, **changes)
    assert message in str(_error(delivery))


def test_missing_file(delivery: Path) -> None:
    (delivery / "population.csv").unlink()
    assert "no such file" in str(_error(delivery))


def test_checksum_mismatch(delivery: Path) -> None:
    data = (delivery / "population.csv").read_bytes()
    (delivery / "population.csv").write_bytes(data[:-10])
    error = _error(delivery)
    assert "sha256 of population.csv" in str(error)


def test_row_count_mismatch(delivery: Path) -> None:
    manifest = read_manifest(delivery, FEED)
    with pytest.raises(ManifestError, match="has 2 data rows but the manifest declares 3") as info:
        manifest.check_rows(manifest.files[0], 2)
    assert (info.value.feed, info.value.batch) == (FEED, BATCH)
