"""What every benchmark script shares: its command line, its logging and its work folder.

The scripts are run by path (``python benchmarks/pipeline.py``), so this module is
imported from beside them.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def parser(description: str, kind: str, *, work_holds: str, note: bool = True) -> argparse.ArgumentParser:
    """--persons, --seed, --out (default ``results/<kind>-<persons>.json``), --work, --keep
    and, with ``note``, --note."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--persons", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None,
                   help=f"JSON to write (default benchmarks/results/{kind}-<persons>.json)")
    p.add_argument("--work", type=Path, default=None,
                   help=f"folder for {work_holds} (default: temporary)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    if note:
        p.add_argument("--note", default="",
                       help="free text stored in the JSON (and the table), e.g. the code state")
    return p


def out_path(args: argparse.Namespace, kind: str) -> Path:
    return Path(args.out) if args.out else RESULTS / f"{kind}-{args.persons}.json"


def quiet_logging(*noisy: str) -> None:
    """INFO for the benchmark's own progress; WARNING for the chatty libraries."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("splink", "sharehub.feeds", *noisy):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def work_folder(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    """``--work``, or a temporary folder removed afterwards unless ``--keep``."""
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def write_json(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
