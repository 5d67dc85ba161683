"""How the CLI shows results to a person (rich tables). No logic beyond formatting.

Values from deliveries are shown through :func:`safe_text`: never as rich markup (a name
like ``[/]`` would break the output, ``[red]`` would restyle it), with control characters
made visible (an ESC in a quarantined name must not drive the operator's terminal) and
long values cut (a 1 MB field is named and measured, not dumped).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import click
import duckdb
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sharehub.settings import Settings

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SHOWN = 80  # characters of a delivered value shown before it is cut


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
        # Text, not markup: a reason starts with "[feed=… batch=…]", which rich would eat.
        table.add_row(Text(f"batch {batch.feed}/{batch.batch_id}"), safe_text(detail, limit=2000))
    if not summary.batches:
        table.add_row("batches", "none pending")
    m = summary.metrics
    if m:
        table.add_row("person records linked", f"{int(m.get('records_in') or 0):,}")
        table.add_row("persons (master index)", f"{int(m.get('persons_out') or 0):,}")
        table.add_row("repeat keyings today (records − persons)", f"{int(m.get('repeat_keyings') or 0):,}")
        table.add_row("records per person", f"{m.get('records_per_person') or 0:.2f}")
        share = m.get("persons_in_2plus_feeds")
        table.add_row("persons known to 2+ feeds", f"{(share or 0):.1%}")
        from sharehub.metrics import TARGETS

        for name, label in (("sharing_rate", "data-sharing rate"),
                            ("repeat_entry_reduction", "repeat-entry reduction")):
            target = TARGETS[name]
            if m.get(name) is not None:
                verdict = "met" if (m[name] or 0) >= target else "not met"
                table.add_row(label, f"{m[name]:.1%} (target {target:.0%}: {verdict})")
    if summary.relinked:
        table.add_row("linkage", f"{summary.link_mode} on {summary.link_backend} "
                                 f"({summary.rescored_records:,} records scored, "
                                 f"{summary.reclustered_records:,} re-clustered)")
        table.add_row("pairs scored by the model", f"{summary.predicted_pairs:,}")
        table.add_row("model", f"{'trained and saved to' if summary.trained else 'loaded from'} {settings.model_path}")
    if summary.version is not None:
        state = "new" if summary.version_created else "unchanged"
        table.add_row("published version", f"{summary.version} ({state})")
    table.add_row("warehouse", str(settings.warehouse))
    console.print(table)


_MEASURES = ("precision", "recall", "f1", "true_pairs", "predicted_pairs", "true_positive_pairs",
             "false_negative_pairs", "false_positive_pairs", "clusters_predicted", "true_persons",
             "records_evaluated", "records_missing_from_clusters", "records_without_truth",
             "twin_pairs", "twin_pairs_merged")


def _measure(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return "—"
    if key == "twin_pairs_merged" and data.get("twin_pairs_merged_share") is not None:
        return f"{value:,} ({data['twin_pairs_merged_share']:.1%})"
    return f"{value:.4f}" if isinstance(value, float) else f"{value:,}"


def print_evaluation(console: Console, reports: Any) -> None:
    """One column per method (sharehub first, then any baselines) with the pairwise
    measures, then sharehub's wrong and missed links grouped by the damage done to
    their records. ``reports`` maps method name → EvaluationReport (a lone report is
    shown as sharehub's)."""
    from sharehub.generate.damage import TAGS

    if not isinstance(reports, dict):
        reports = {"sharehub": reports}
    data = {name: report.to_dict() for name, report in reports.items()}
    table = Table(title="evaluation against truth (pairwise)", title_justify="left")
    table.add_column("measure")
    for name in data:
        table.add_column(name, justify="right")
    for key in _MEASURES:
        table.add_row(key, *(_measure(values, key) for values in data.values()))
    console.print(table)
    first, values = next(iter(data.items()))
    causes = values.get("errors_by_cause")
    if causes is None:
        console.print("errors by cause: the truth file has no damage column")
        return
    table = Table(title=f"{first}: errors by cause (FN: one person split; FP: two persons "
                        "merged; a pair counts once per damage tag on either record)",
                  title_justify="left")
    for column, justify in (("cause", "left"), ("FN pairs", "right"), ("FP pairs", "right"),
                            ("meaning", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for c in causes:
        meaning = "no damage on either record" if c["cause"] == "none" else TAGS.get(c["cause"], "")
        table.add_row(c["cause"], f"{c['false_negative_pairs']:,}",
                      f"{c['false_positive_pairs']:,}", meaning)
    if not causes:
        table.add_row("—", "0", "0", "no errors")
    console.print(table)


def safe_text(value: Any, limit: int | None = SHOWN) -> Text:
    """A delivered value as inert text: no markup, control characters escaped, long ones cut."""
    if value is None:
        return Text("")
    raw = str(value)
    cut = limit is not None and len(raw) > limit
    shown = _CONTROL.sub(
        lambda m: m.group().encode("unicode_escape").decode("ascii"), raw[:limit] if cut else raw
    )
    if cut:
        shown += f"… ({len(raw):,} characters)"
    return Text(shown)


def known_feed(feed: str | None) -> None:
    """Refuse a --feed the hub does not have (a typo would otherwise show "no rows")."""
    from schemas.contract import FEEDS

    if feed is not None and feed not in FEEDS:
        raise click.BadParameter(f"{feed!r}; expected one of {', '.join(FEEDS)}", param_hint="--feed")


def _table() -> Table:
    """A borderless table that fits 80 columns (one space of padding between columns)."""
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))


def _count(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def print_ledger(
    console: Console,
    con: duckdb.DuckDBPyConnection,
    feed: str | None,
    now: datetime,
) -> bool:
    """`sharehub batches`: one table per feed, its freshness, and why batches were refused.

    The last column checks invariant 1 per batch (rows in = staged + quarantined); reasons
    and notes are printed under the table in full, where they can wrap.
    """
    from sharehub.errors import ContractViolation
    from sharehub.feeds.freshness import freshness
    from sharehub.feeds.ledger import check_ledger

    columns = {str(r[0]) for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = 'batches'").fetchall()}
    notes = "notes" if "notes" in columns else "NULL"
    rows = con.execute(
        f"""SELECT feed, batch_id, extract_type, status, rows_declared, rows_landed, rows_staged,
                   rows_quarantined, reason, {notes},
                   status = 'rejected' AND EXISTS (
                       SELECT 1 FROM raw.batches l WHERE l.feed = b.feed
                       AND l.batch_id = b.batch_id AND l.status = 'loaded') AS fixed
            FROM raw.batches b WHERE ? IS NULL OR feed = ?
            ORDER BY feed, batch_id, coalesce(loaded_at, received_at)""",
        [feed, feed],
    ).fetchall()
    if not rows:
        console.print(f"batch ledger (raw.batches): no batches{f' for {feed}' if feed else ''}")
        return True
    fresh = {f.feed: f for f in freshness(con, now)}
    console.print(Text("batch ledger (raw.batches): rows in = staged + quarantined for every "
                       "loaded batch", style="bold"))
    for name in dict.fromkeys(r[0] for r in rows):
        state = fresh.get(name)
        title = Text(state.describe() if state else name, style="bold")
        if state is not None and state.stale:
            title.stylize("red")
        console.print()
        console.print(title)
        table = _table()
        table.add_column("batch", overflow="fold")
        table.add_column("type", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for header in ("in", "staged", "quarantined"):
            table.add_column(header, justify="right", no_wrap=True)
        table.add_column("in=s+q", justify="center", no_wrap=True)
        details: list[Text] = []
        for (_, batch, kind, status, declared, landed, staged, quarantined, reason, note,
             fixed) in (r for r in rows if r[0] == name):
            balanced = "" if status != "loaded" else (
                "ok" if landed == (staged or 0) + (quarantined or 0) else "BROKEN")
            shown_status = Text(str(status), style={"loaded": "green", "rejected": "red"}.get(
                str(status), ""))
            table.add_row(safe_text(batch), safe_text(kind), shown_status, _count(landed),
                          _count(staged), _count(quarantined),
                          Text(balanced, style="green" if balanced == "ok" else "bold red"))
            if status == "rejected":
                line = Text(f"  {batch} rejected", style="red")
                if declared is not None:
                    line.append(f" ({int(declared):,} rows declared)")
                if fixed:
                    line.append(" — fixed: a later delivery of this batch was loaded", style="green")
                line.append(": ")
                line.append(safe_text(reason, limit=2000))
                details.append(line)
            elif note:
                details.append(Text(f"  {batch} note: ").append(safe_text(note, limit=2000)))
        console.print(table)
        for line in details:
            console.print(line)
    console.print()
    try:
        check_ledger(con, feed)
    except ContractViolation as exc:
        console.print(Text("recount FAILED: ", style="bold red").append_text(safe_text(exc, limit=2000)))
        return False
    console.print(Text("recount: every loaded batch balances against raw and quarantine "
                       "(rows in = staged + quarantined)", style="green"))
    return True


def print_quarantine(
    console: Console,
    con: duckdb.DuckDBPyConnection,
    feed: str | None,
    batch: str | None,
    limit: int,
    show_row: bool,
) -> None:
    """`sharehub quarantine`: a summary by column and check, then every failing row.

    Each row lists all its failures (column, check, offending value, reason), not only
    the first; ``show_row`` adds the row as delivered (values cut at the display limit).
    """
    where = "(? IS NULL OR feed = ?) AND (? IS NULL OR batch_id = ?)"
    params = [feed, feed, batch, batch]
    total = int(con.execute(f"SELECT count(*) FROM quarantine.rows WHERE {where}", params).fetchall()[0][0])
    scope = " ".join(p for p in (f"feed {feed}" if feed else "", f"batch {batch}" if batch else "") if p)
    if total == 0:
        console.print(f"quarantine (quarantine.rows): no quarantined rows{f' for {scope}' if scope else ''}")
        return
    console.print(Text(f"quarantine (quarantine.rows): {total:,} row{'' if total == 1 else 's'}"
                       f"{f' for {scope}' if scope else ''}, by first failure", style="bold"))
    summary = _table()
    for header in ("feed", "batch", "column", "check"):
        summary.add_column(header, overflow="fold")
    summary.add_column("rows", justify="right", no_wrap=True)
    for row in con.execute(
        f"""SELECT feed, batch_id, column_name, check_name, count(*) FROM quarantine.rows
            WHERE {where} GROUP BY ALL ORDER BY feed, batch_id, column_name, check_name""",
        params,
    ).fetchall():
        summary.add_row(*[safe_text(v) for v in row[:4]], _count(row[4]))
    console.print(summary)
    cursor = con.execute(
        f"""SELECT feed, batch_id, row_number, source_key, column_name, check_name, failure_value,
                   reason, CAST(failures AS VARCHAR), CAST(row_json AS VARCHAR)
            FROM quarantine.rows WHERE {where}
            ORDER BY feed, batch_id, row_number LIMIT ?""",
        [*params, limit],
    )
    for (row_feed, row_batch, row_number, key, column, check, value, reason, failures,
         row_json) in cursor.fetchall():
        head = Text(f"{row_feed} / ", style="bold")
        head.append(safe_text(row_batch)).append(f" / row {row_number}")
        head.append(" (key ").append(safe_text(key) if key is not None else Text("missing")).append(")")
        console.print()
        console.print(head)
        listed = json.loads(failures) if failures else [
            {"column": column, "check": check, "value": value, "reason": reason}]
        for failure in listed:
            line = Text("  column ").append_text(safe_text(failure.get("column")))
            line.append(f"  check {failure.get('check')}  value ")
            shown = failure.get("value")
            line.append(repr_text(shown))
            console.print(line)
            console.print(Text("    reason: ").append(safe_text(failure.get("reason"), limit=500)))
        if show_row and row_json:
            console.print(Text("  row as delivered:"))
            for name, cell in json.loads(row_json).items():
                console.print(Text("    ").append(safe_text(name)).append(" = ").append(repr_text(cell)))
    console.print()
    if total > limit:
        console.print(f"showing {limit:,} of {total:,} quarantined rows; use --limit to see more")


def repr_text(value: Any) -> Text:
    """A delivered value quoted (so blanks and spaces show), as inert text; missing → NULL."""
    if value is None:
        return Text("NULL", style="dim")
    return Text("'").append(safe_text(value)).append("'")
