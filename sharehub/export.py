"""Export a warehouse table to a file, so people can inspect results with their own tools."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from sharehub.errors import ConfigError
from sharehub.warehouse import one, require_table

log = logging.getLogger(__name__)

_FORMATS = {".csv": "(FORMAT csv, HEADER true)", ".parquet": "(FORMAT parquet)"}


def export_table(con: duckdb.DuckDBPyConnection, table: str, out: Path) -> int:
    """Write ``schema.table`` to ``out`` (.csv or .parquet by suffix); return the row count."""
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot export to {out.name!r}: suffix {out.suffix!r}; expected .csv or .parquet")
    require_table(con, table)
    schema, _, name = table.partition(".")
    quoted = f'"{schema}"."{name}"'
    out.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY (SELECT * FROM {quoted}) TO '{str(out).replace(chr(39), chr(39) * 2)}' {fmt}")
    rows = int(one(con, f"SELECT count(*) FROM {quoted}")[0])
    log.info("exported %s rows of %s to %s", rows, table, out)
    return rows
