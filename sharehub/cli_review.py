"""``sharehub review``: the clerical review queue on the command line.

A thin shell over `linkage.review`: list the uncertain cases, show one with its evidence
and a waterfall chart, record a decision. Decisions take effect at the next
``sharehub run`` (which links when a decision is pending) and in every run after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from sharehub.cli_common import console, domain_errors, warehouse_option
from sharehub.settings import Settings


def _pair(row: dict[str, Any]) -> Text:
    return Text(f"{row['unique_id_l']}\n{row['unique_id_r']}")


def _text(value: Any) -> Text:
    from sharehub.cli_views import safe_text

    if isinstance(value, float):
        return Text(f"{value:.4f}")
    return safe_text(value)


@click.group()
def review() -> None:
    """Resolve the uncertain cases of the master index: list, show, decide.

    Grey-zone pairs (match probability between the review floor and the match threshold)
    and clusters holding two different valid ID numbers wait in linkage.review_queue.
    A decision (match / no-match) is kept for good and honoured by every later run.

    Example: sharehub review list
    """


@review.command("list")
@click.option("--status", type=click.Choice(["open", "decided", "all"]), default="open",
              show_default=True, help="Which queue items to show.")
@click.option("--decisions", is_flag=True, help="Show the decision log (the audit trail) instead.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@warehouse_option
@domain_errors
def list_(status: str, decisions: bool, limit: int, warehouse: Path | None) -> None:
    """List the review queue, most uncertain first, or every decision taken.

    Example: sharehub review list --status all
    """
    from linkage import review as lib
    from sharehub.warehouse import connect

    con = connect(Settings.from_env(warehouse=warehouse), read_only=True)
    try:
        rows = lib.decision_log(con) if decisions else lib.list_items(con, status)
    finally:
        con.close()
    if not rows:
        console.print("no decisions yet" if decisions else f"review queue ({status}): no items")
        return
    table = Table(box=box.SIMPLE_HEAD, title_justify="left", padding=(0, 1, 0, 0))
    if decisions:
        table.title = f"review decisions: {len(rows):,}"
        for column in ("no", "review_id", "records", "decision"):
            table.add_column(column, no_wrap=True)
        table.add_column("by, when: why", overflow="fold")
        for row in rows[:limit]:
            table.add_row(str(row["decision_no"]), row["review_id"], _pair(row), row["decision"],
                          Text(f"{row['decided_by']}, {row['decided_at']:%Y-%m-%d %H:%M}: "
                               f"{row['reason']}"))  # fmt: skip
    else:
        table.title = f"review queue ({status}): {len(rows):,} items"
        for column in ("review_id", "kind", "p", "records", "same", "status"):
            table.add_column(column, no_wrap=column != "status")
        for row in rows[:limit]:
            p = row["match_probability"]
            table.add_row(row["review_id"], row["kind"], "—" if p is None else f"{p:.3f}",
                          _pair(row), "yes" if row["same_person"] else "no",
                          row["decision"] or row["status"])  # fmt: skip
    console.print(table)
    if len(rows) > limit:
        console.print(f"… {len(rows) - limit:,} more; raise --limit to see them")
    if not decisions:
        console.print("next: sharehub review show REVIEW_ID")


@review.command()
@click.argument("ref", metavar="REVIEW_ID")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Waterfall chart HTML (default: review/<REVIEW_ID>.html beside the warehouse).")
@click.option("--model", "model_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Trained model JSON (default: $SHAREHUB_MODEL_PATH).")
@warehouse_option
@domain_errors
def show(ref: str, out: Path | None, model_path: Path | None, warehouse: Path | None) -> None:
    """Show one case: both records side by side, per-field evidence and match weight,
    earlier decisions, and a Splink waterfall chart written to HTML.

    REVIEW_ID is an id from `sharehub review list`, or any two records as RECORD,RECORD.

    Example: sharehub review show R3F2A9C01B7D4
    """
    from linkage import review as lib

    settings = Settings.from_env(warehouse=warehouse, model_path=model_path)
    con = lib.review_connection(settings.warehouse)
    try:
        rid = lib.resolve(con, ref)[0]
        target = out or settings.warehouse.parent / "review" / f"{rid}.html"
        found = lib.explain(con, ref, model_path=settings.model_path, out=target)
    finally:
        con.close()
    item = found.item or {}
    console.print(Text.assemble(
        ("review ", "bold"), found.review_id, f"  {item.get('kind', 'not in the queue')}",
        f"  status {item.get('status', '—')}"))  # fmt: skip
    records = Table(title="records", title_justify="left")
    records.add_column("field")
    for record in found.records:
        records.add_column(str(record["record_id"]), overflow="fold")
    for column in [c for c in (found.records[0] if found.records else {}) if c != "record_id"]:
        records.add_row(column, *[_text(r.get(column)) for r in found.records])
    console.print(records)
    evidence = Table(title="evidence (match weight = log2 Bayes factor)", title_justify="left")
    for column in ("comparison", "level", "left", "right", "weight"):
        evidence.add_column(column, overflow="fold", justify="right" if column == "weight" else "left")
    for row in found.evidence:
        if str(row["column_name"]).startswith("tf_") and abs(row["log2_bayes_factor"] or 0) < 0.005:
            continue  # a term-frequency adjustment that adjusts nothing
        evidence.add_row(_text(row["column_name"]), _text(row["label_for_charts"]),
                         _text(row["value_l"]), _text(row["value_r"]),
                         f"{float(row['log2_bayes_factor'] or 0):+.2f}")  # fmt: skip
    console.print(evidence)
    console.print(f"match weight {found.match_weight:+.2f}, "
                  f"match probability {found.match_probability:.4f}")
    for d in found.decisions:
        console.print(Text(f"decided {d['decision']} by {d['decided_by']} at "
                           f"{d['decided_at']:%Y-%m-%d %H:%M}: {d['reason']}"))  # fmt: skip
    console.print(f"waterfall chart: {found.chart}")
    console.print(f"next: sharehub review decide {found.review_id} match|no-match "
                  "--by NAME --reason TEXT")


@review.command()
@click.argument("ref", metavar="REVIEW_ID")
@click.argument("decision", type=click.Choice(["match", "no-match"]))
@click.option("--by", "by", required=True, help="Who decides (kept in the audit trail).")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@warehouse_option
@domain_errors
def decide(ref: str, decision: str, by: str, reason: str, warehouse: Path | None) -> None:
    """Decide a case: match joins the two records' persons, no-match keeps them apart.

    The decision is appended to linkage.review_decisions (never changed; a later
    decision on the same pair overrides it) and applied by the next `sharehub run` and
    every run after it, incremental or --full-relink.

    Example: sharehub review decide R3F2A9C01B7D4 no-match --by 王芳 --reason "twins: different ID numbers"
    """
    from linkage import review as lib
    from sharehub.warehouse import connect

    con = connect(Settings.from_env(warehouse=warehouse))
    try:
        row = lib.decide(con, ref, decision, by=by, reason=reason)
    finally:
        con.close()
    console.print(Text(f"decision {row.decision_no}: {row.review_id} "
                       f"({row.unique_id_l} ~ {row.unique_id_r}) {row.decision} by {row.decided_by}"))
    console.print("takes effect at the next `sharehub run` (it links even if nothing new arrived)")
