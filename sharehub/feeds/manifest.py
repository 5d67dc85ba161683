"""Read and verify a delivery's ``manifest.json`` before any of its rows are trusted.

Why first: the manifest is the department's own statement of what it sent (which feed,
which batch, which file, how many rows, which sha256). A delivery that disagrees with its
own manifest is incomplete or tampered with, so it is rejected whole and nothing of it is
landed. The row count can only be compared after parsing, so :meth:`Manifest.check_rows`
is called by the pull once the file has been read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sharehub.errors import ManifestError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Source times are local China time (UTC+8, no daylight saving); the hub stores them naive.
CHINA = timezone(timedelta(hours=8))
EXTRACT_TYPES = ("full", "delta")


@dataclass(frozen=True)
class ManifestFile:
    """One data file the manifest lists."""

    name: str
    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A verified manifest: its files exist and their sha256 sums agree."""

    feed: str
    batch_id: str
    extract_type: str
    extracted_at: datetime | None
    files: tuple[ManifestFile, ...]

    @property
    def rows_declared(self) -> int:
        """Data rows the department says it sent."""
        return sum(f.rows for f in self.files)

    @property
    def checksum(self) -> str:
        """Identity of the delivered content: sha256 over the files' names and sha256 sums.

        Content-defined on purpose: re-sending the same files under a regenerated manifest
        (a new ``extracted_at``) is still the same delivery.
        """
        digest = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.name):
            digest.update(f"{f.name}:{f.sha256}\n".encode())
        return digest.hexdigest()

    def check_rows(self, file: ManifestFile, rows: int) -> None:
        """Reject the delivery when the parsed data-row count disagrees with the manifest."""
        if rows != file.rows:
            raise ManifestError(
                f"{file.name} has {rows} data rows but the manifest declares {file.rows}; "
                "the delivery is incomplete or the manifest is wrong: ask the department to resend",
                feed=self.feed,
                batch=self.batch_id,
            )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks so large extracts do not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _field(data: dict[str, Any], key: str, kind: type, feed: str, batch: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ManifestError(
            f"manifest field {key!r} is {value!r}; expected a {kind.__name__}",
            feed=feed,
            batch=batch,
        )
    return value


def _extracted_at(value: Any, feed: str, batch: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ManifestError(
            f"manifest field 'extracted_at' is {value!r}; expected an ISO 8601 time",
            feed=feed,
            batch=batch,
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(CHINA).replace(tzinfo=None)
    return parsed


def read_manifest(batch_dir: Path, feed: str) -> Manifest:
    """Parse ``<batch_dir>/manifest.json`` and verify it against the folder and its files.

    Checks: the manifest exists and is a JSON object; ``feed`` and ``batch_id`` match the
    folder; ``extract_type`` is full or delta; every listed file exists and its sha256
    agrees. Raises :class:`ManifestError` naming feed and batch otherwise.
    """
    batch = batch_dir.name
    path = batch_dir / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"no {MANIFEST} in {batch_dir}; a delivery is only accepted with its manifest",
            feed=feed,
            batch=batch,
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{MANIFEST} is not valid UTF-8 JSON: {exc}", feed=feed, batch=batch) from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{MANIFEST} must hold a JSON object", feed=feed, batch=batch)
    for key, expected in (("feed", feed), ("batch_id", batch)):
        found = data.get(key)
        if found != expected:
            raise ManifestError(
                f"manifest says {key}={found!r} but the delivery sits in folder "
                f"{batch_dir.parent.name}/{batch}; expected {expected!r}",
                feed=feed,
                batch=batch,
            )
    extract_type = _field(data, "extract_type", str, feed, batch)
    if extract_type not in EXTRACT_TYPES:
        raise ManifestError(
            f"manifest extract_type={extract_type!r}; expected one of {', '.join(EXTRACT_TYPES)}",
            feed=feed,
            batch=batch,
        )
    entries = _field(data, "files", list, feed, batch)
    if not entries:
        raise ManifestError("manifest lists no files", feed=feed, batch=batch)
    files = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ManifestError(f"manifest file entry {entry!r} is not an object", feed=feed, batch=batch)
        name = _field(entry, "name", str, feed, batch)
        rows = _field(entry, "rows", int, feed, batch)
        if rows < 0:
            raise ManifestError(f"manifest declares {rows} rows for {name}", feed=feed, batch=batch)
        expected_sha = _field(entry, "sha256", str, feed, batch).lower()
        file_path = batch_dir / name
        if Path(name).name != name or not file_path.is_file():
            raise ManifestError(
                f"manifest lists {name!r} but no such file is in the delivery folder",
                feed=feed,
                batch=batch,
            )
        actual = sha256_file(file_path)
        if actual != expected_sha:
            raise ManifestError(
                f"sha256 of {name} is {actual} but the manifest declares {expected_sha}; "
                "the file changed or was cut short in transfer",
                feed=feed,
                batch=batch,
            )
        files.append(ManifestFile(name=name, path=file_path, rows=rows, sha256=actual))
    manifest = Manifest(
        feed=feed,
        batch_id=batch,
        extract_type=extract_type,
        extracted_at=_extracted_at(data.get("extracted_at"), feed, batch),
        files=tuple(files),
    )
    log.debug("manifest verified: %s/%s, %d rows declared", feed, batch, manifest.rows_declared)
    return manifest
