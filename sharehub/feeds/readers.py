"""Turn a delivered file into a frame of text, one row per data row, or reject it whole.

Why text: the raw layer keeps every row exactly as delivered, and typing is the contract's
job (``schemas.feeds``), so a reader never guesses a type. Why rejects live here: a file in
the wrong encoding, without its columns, empty, or cut short cannot be read row by row at
all, so no row of it can be quarantined; the delivery is refused with the feed, batch,
row and column named. Columns the contract does not name are ignored or rejected as the
contract's ``extraColumns`` says; ignored ones are listed in ``frame.attrs["ignored_columns"]``
so the pull can note them in the ledger.

Row numbers: ``row_number`` is the 1-based ordinal of the data row as a person reading
the file counts it, the first row under the header being row 1. Header and title rows are
not counted, nor are completely blank lines or sheet rows. Error messages about a CSV also
give the physical line, and about a sheet the Excel row number.

DuckDB 2.0's ``read_csv`` only decodes UTF-8, UTF-16 and Latin-1 without the
``encodings`` extension, which is not available offline; so GB18030 is decoded here in
streaming fashion by pyarrow's CSV reader (all columns text); a file it cannot parse is
read again with the ``csv`` module (strict quoting), which gives exact row and line
numbers for the structural errors.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import math
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from python_calamine import CalamineWorkbook

from schemas.contract import FeedContract
from sharehub.errors import DeliveryRejected

log = logging.getLogger(__name__)

ROW = "row_number"
IGNORED = "ignored_columns"  # frame.attrs key: delivered columns the contract does not name
# The csv module refuses fields over 128 KiB by default; a delivery with a long field must
# still be read (and the row quarantined by its max_length check), not rejected whole.
_MAX_FIELD = 2**31 - 1
_SNIFF = 1 << 16
_HEADER_SEARCH_ROWS = 20


def _reject(message: str, contract: FeedContract, batch: str, **where: Any) -> DeliveryRejected:
    return DeliveryRejected(message, feed=contract.feed, batch=batch, **where)


def _check_header(header: list[str], contract: FeedContract, batch: str, file: str) -> list[int]:
    """Positions of the contract's columns in the delivered header, or reject."""
    seen = {name for name in header if name}
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    if duplicated:
        raise _reject(
            f"{file}: header repeats column(s) {', '.join(duplicated)}",
            contract, batch, column=duplicated[0],
        )
    missing = [c.physical for c in contract.columns if c.physical not in seen]
    unexpected = _extra_columns(header, contract)
    if missing:
        hint = f"; found unexpected column(s) {', '.join(unexpected)} (renamed?)" if unexpected else ""
        raise _reject(
            f"{file}: required column(s) {', '.join(missing)} missing from the header{hint}",
            contract, batch, column=missing[0], found=header,
        )
    if unexpected and contract.extra_columns == "reject":
        raise _reject(
            f"{file}: column(s) {', '.join(unexpected)} are not in the contract, which rejects "
            "extra columns; ask the department to drop them or amend the contract",
            contract, batch, column=unexpected[0], found=header,
        )
    if unexpected:
        log.warning("%s/%s: ignoring column(s) not in the contract: %s", contract.feed, batch, unexpected)
    return [header.index(c.physical) for c in contract.columns]


def _extra_columns(header: list[str], contract: FeedContract) -> list[str]:
    """Delivered columns the contract does not name (ignored by an ``ignore`` contract)."""
    return [name for name in header if name and name not in contract.physical_to_name]


def _noted(frame: pd.DataFrame, header: list[str], contract: FeedContract) -> pd.DataFrame:
    """Attach the ignored extra columns to the frame, for the ledger's notes."""
    frame.attrs[IGNORED] = _extra_columns(header, contract)
    return frame


def _frame(columns: list[list[str | None]], contract: FeedContract) -> pd.DataFrame:
    frame = pd.DataFrame(
        {spec.name: pd.Series(values, dtype="str") for spec, values in zip(contract.columns, columns, strict=True)}
    )
    frame.index = pd.RangeIndex(1, len(frame) + 1, name=ROW)
    return frame


# --- CSV (GB18030) -----------------------------------------------------------------------


def _check_encoding(path: Path, contract: FeedContract, batch: str) -> str:
    """Reject a file that is not in the declared encoding.

    UTF-8 Chinese often decodes as GB18030 without error (into nonsense), so decoding alone
    proves nothing: text that is valid UTF-8 and not plain ASCII is UTF-8 in practice.
    """
    encoding = contract.encoding or "utf-8"
    with path.open("rb") as handle:
        head = handle.read(_SNIFF)
    if not head.strip():
        raise _reject(f"{path.name} is empty", contract, batch)
    if encoding.replace("-", "") != "utf8" and not head.isascii():
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF)
        except UnicodeDecodeError:
            return encoding
        raise _reject(
            f"{path.name} is UTF-8 encoded but the contract declares {encoding.upper()}; "
            f"ask the department to export in {encoding.upper()}",
            contract, batch,
        )
    return encoding


def _undecodable_line(path: Path, encoding: str) -> int:
    """The first physical line that does not decode (no GB18030 byte is a newline)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return 0


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the physical line on which each ends."""
    for record in reader:
        if record:
            yield reader.line_num, record  # type: ignore[attr-defined]


def _first_line_header(path: Path, encoding: str) -> list[str] | None:
    """The header when it is the file's first line (the usual case), else None."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
        reader = csv.reader(text, strict=True)
        record = next(reader, None)
        return record if record and reader.line_num == 1 else None


def read_csv(path: Path, contract: FeedContract, batch: str) -> pd.DataFrame:
    """Read a CSV delivery in the contract's encoding into a frame of text.

    Fast path: pyarrow's multi-threaded parser, every column read as text. When it finds
    anything wrong, :func:`read_csv_strict` reads the file again: it either rejects the
    delivery naming the row and line, or (where pyarrow is stricter) reads it.
    """
    encoding = _check_encoding(path, contract, batch)
    try:
        header_raw = _first_line_header(path, encoding)
    except (UnicodeDecodeError, csv.Error):
        header_raw = None
    if header_raw is None:
        return read_csv_strict(path, contract, batch)
    header = [name.replace("\ufeff", "").strip() for name in header_raw]
    positions = _check_header(header, contract, batch, path.name)
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=encoding, block_size=1 << 22, column_names=names, skip_rows=1
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                include_columns=[names[p] for p in positions],
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        log.info("%s/%s: fast CSV parse failed (%s); reading strictly", contract.feed, batch, exc)
        return read_csv_strict(path, contract, batch)
    if table.num_rows == 0:
        raise _reject(f"{path.name} has a header but no data rows", contract, batch)
    frame = table.rename_columns([c.name for c in contract.columns]).to_pandas()
    frame.index = pd.RangeIndex(1, len(frame) + 1, name=ROW)
    return _noted(frame, header, contract)


def read_csv_strict(path: Path, contract: FeedContract, batch: str) -> pd.DataFrame:
    """Read a CSV record by record with the ``csv`` module, rejecting with exact positions."""
    encoding = _check_encoding(path, contract, batch)
    if csv.field_size_limit() < _MAX_FIELD:
        csv.field_size_limit(_MAX_FIELD)
    columns: list[list[str | None]] = [[] for _ in contract.columns]
    rows = 0
    previous: tuple[int, list[str]] | None = None  # one record of lookahead: is it the last?
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
        reader = csv.reader(text, strict=True)
        records = _records(reader)
        try:
            header_entry = next(records, None)
            if header_entry is None:
                raise _reject(f"{path.name} holds no header", contract, batch)
            header = [name.replace("\ufeff", "").strip() for name in header_entry[1]]
            positions = _check_header(header, contract, batch, path.name)
            width = len(header)
            for entry in records:
                if previous is not None:
                    rows = _take(previous, rows, width, columns, positions, contract, batch, path, last=False)
                previous = entry
            if previous is not None:
                rows = _take(previous, rows, width, columns, positions, contract, batch, path, last=True)
        except UnicodeDecodeError as exc:
            line = _undecodable_line(path, encoding)
            raise _reject(
                f"{path.name} line {line} is not valid {encoding.upper()} ({exc.reason}); "
                "check the export encoding",
                contract, batch, row=max(line - 1, 1), line=line,
            ) from exc
        except csv.Error as exc:
            row = rows + (2 if previous is not None else 1)
            raise _reject(
                f"{path.name} cannot be parsed at data row {row} (line {reader.line_num}): {exc}; "
                "the file is malformed or truncated",
                contract, batch, row=row,
            ) from exc
    if rows == 0:
        raise _reject(f"{path.name} has a header but no data rows", contract, batch)
    return _noted(_frame(columns, contract), header, contract)


def _take(
    entry: tuple[int, list[str]],
    rows: int,
    width: int,
    columns: list[list[str | None]],
    positions: list[int],
    contract: FeedContract,
    batch: str,
    path: Path,
    *,
    last: bool,
) -> int:
    line, record = entry
    row = rows + 1
    if len(record) != width:
        what = "the last line is truncated" if last and len(record) < width else "a field is split or missing"
        raise _reject(
            f"{path.name} data row {row} (line {line}) has {len(record)} fields but the header has "
            f"{width}: {what}",
            contract, batch, row=row,
        )
    for target, position in zip(columns, positions, strict=True):
        value = record[position]
        target.append(value if value != "" else None)
    return row


# --- XLSX --------------------------------------------------------------------------------


def render_cell(value: Any) -> str | None:
    """A cell as text, the way a person sees it in Excel (General format).

    Integral numbers up to 11 digits print whole (phones, 194803); longer ones print the
    way Excel shows them, six significant digits in scientific notation (an ID typed into
    a number cell shows as ``1.10105E+17``: the damage is the department's, kept as is).
    Date cells print as ISO dates.
    """
    if type(value) is str:  # most cells: checked first, a full extract has a million
        return value or None
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and number == int(number):
            if abs(number) < 1e11:
                return str(int(number))
            mantissa, exponent = f"{number:.5E}".split("E")
            mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0').rjust(2, '0')}"
        return repr(number)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def read_xlsx(path: Path, contract: FeedContract, batch: str) -> pd.DataFrame:
    """Read the contract's sheet; the header is the first row holding the header marker."""
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own untyped errors for unreadable files
        raise _reject(f"{path.name} is not a readable XLSX workbook: {exc}", contract, batch) from exc
    sheet_name = contract.sheet or book.sheet_names[0]
    if sheet_name not in book.sheet_names:
        raise _reject(
            f"{path.name} has no sheet {sheet_name!r} (sheets: {', '.join(book.sheet_names)})",
            contract, batch,
        )
    cells = book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    if not any(any(c not in (None, "") for c in row) for row in cells):
        raise _reject(f"{path.name} sheet {sheet_name} is empty", contract, batch)
    marker = contract.header_marker or contract.key.physical
    header_at = next(
        (i for i, row in enumerate(cells[:_HEADER_SEARCH_ROWS]) if any(str(c).strip() == marker for c in row)),
        None,
    )
    if header_at is None:
        raise _reject(
            f"{path.name} sheet {sheet_name}: no header row holding {marker} in the first "
            f"{_HEADER_SEARCH_ROWS} rows",
            contract, batch, column=marker,
        )
    header = [str(c).strip() if c is not None else "" for c in cells[header_at]]
    positions = _check_header(header, contract, batch, f"{path.name} sheet {sheet_name}")
    columns: list[list[str | None]] = [[] for _ in contract.columns]
    for row in cells[header_at + 1 :]:
        rendered = [render_cell(c) for c in row]
        if all(v is None for v in rendered):
            continue
        for target, position in zip(columns, positions, strict=True):
            target.append(rendered[position] if position < len(rendered) else None)
    if not columns[0]:
        raise _reject(f"{path.name} sheet {sheet_name} has a header but no data rows", contract, batch)
    return _noted(_frame(columns, contract), header, contract)


def read_file(path: Path, contract: FeedContract, batch: str) -> pd.DataFrame:
    """Read one delivered data file with the reader its contract's format calls for."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix != contract.file_format:
        raise _reject(
            f"{path.name}: the contract expects a .{contract.file_format} file, got .{suffix}",
            contract, batch,
        )
    return read_csv(path, contract, batch) if suffix == "csv" else read_xlsx(path, contract, batch)
