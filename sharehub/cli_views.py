"""How the CLI shows results to a person (rich tables). No logic beyond formatting."""

from __future__ import annotations

from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from sharehub.settings import Settings


def print_query(
    console: Console, con: duckdb.DuckDBPyConnection, title: str, sql: str, params: list[Any]
) -> None:
    """Run a query and show it as a table; say so plainly when it returns nothing."""
    cursor = con.execute(sql, params)
    columns = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    if not rows:
        console.print(f"{title}: no rows")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def print_run_summary(console: Console, summary: Any, settings: Settings) -> None:
    """The short summary `sharehub run` ends with."""
    table = Table(title=f"sharehub run {summary.run_id}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for batch in summary.batches:
        detail = f"{batch.status}"
        if batch.status == "loaded":
            detail += f": {batch.rows_staged:,} staged, {batch.rows_quarantined:,} quarantined"
        elif batch.reason:
            detail += f": {batch.reason}"
        table.add_row(f"batch {batch.feed}/{batch.batch_id}", detail)
    if not summary.batches:
        table.add_row("batches", "none pending")
    m = summary.metrics
    if m:
        table.add_row("person records linked", f"{int(m.get('records_in') or 0):,}")
        table.add_row("persons (master index)", f"{int(m.get('persons_out') or 0):,}")
        table.add_row("repeat entries avoided", f"{int(m.get('repeat_entries_avoided') or 0):,}")
        table.add_row("records per person", f"{m.get('records_per_person') or 0:.2f}")
        share = m.get("persons_in_2plus_feeds")
        table.add_row("persons known to 2+ feeds", f"{(share or 0):.1%}")
    if summary.relinked:
        table.add_row("pairs scored by the model", f"{summary.predicted_pairs:,}")
        table.add_row("model", f"{'trained and saved to' if summary.trained else 'loaded from'} {settings.model_path}")
    if summary.version is not None:
        state = "new" if summary.version_created else "unchanged"
        table.add_row("published version", f"{summary.version} ({state})")
    table.add_row("warehouse", str(settings.warehouse))
    console.print(table)


def print_evaluation(console: Console, report: Any) -> None:
    """Pairwise precision/recall/F1 and cluster counts."""
    data = report.to_dict()
    table = Table(title="evaluation against truth (pairwise)", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in data.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int):
            table.add_row(key, f"{value:,}")
        elif value is not None and not isinstance(value, dict | list):
            table.add_row(key, str(value))
    console.print(table)
