"""``sharehub report``: the auditors' HTML report, and the query behind any of its figures.

A thin shell over `sharehub.report`. Kept in its own module (as ``sharehub review`` is)
so the report can change without touching the main CLI; the helpers below mirror
`sharehub.cli`'s, which cannot be imported from here without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from sharehub.cli_common import console, domain_errors, warehouse_option
from sharehub.errors import ConfigError
from sharehub.settings import Settings


def _cell(value: Any) -> Text:
    if isinstance(value, float):
        return Text(f"{value:,.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}")
    return Text("" if value is None else str(value))


@click.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the HTML report to this file.")
@click.option("--query", "query", default=None, metavar="NAME",
              help="Instead, print the rows of one named query: a metric (sharing_rate, "
                   "repeat_entry_reduction, …) or a figure's (trend, ledger, quarantine, "
                   "match_weights, …). The report lists the name under every figure.")
@warehouse_option
@domain_errors
def report(out: Path | None, query: str | None, warehouse: Path | None) -> None:
    """Write the auditors' report: one self-contained HTML file to open offline.

    Headline metrics against their policy targets (data-sharing rate 90%, repeat-entry
    reduction 80%), their trend over published versions, per-department and per-feed
    bars, quality, quarantine and timeliness, the match-weight histogram, and under each
    figure the command and SQL that reproduce it. The warehouse is only read.
    Definitions: docs/metrics.md; the report: docs/report.md.

    Example: sharehub report --out report.html

    Example: sharehub report --query sharing_rate
    """
    from sharehub.report import run_query, write_report
    from sharehub.warehouse import connect

    if (out is None) == (query is None):
        raise ConfigError("give exactly one of --out FILE (write the report) or --query NAME "
                          "(print one query's rows), e.g. sharehub report --out report.html")
    con = connect(Settings.from_env(warehouse=warehouse), read_only=True)
    try:
        if out is not None:
            path = write_report(con, out)
            console.print(f"wrote {path} ({path.stat().st_size:,} bytes); open it in a browser")
            return
        columns, rows = run_query(con, str(query))
    finally:
        con.close()
    table = Table(title=f"{query} ({len(rows):,} rows)")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
