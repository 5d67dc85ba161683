"""Building blocks of the auditors' report: page template, figure frame, tables, quality.

Why apart from ``sharehub.report``: that module decides *what* the report says (which
queries, which figures); this one decides how a figure, a table and the page look, so the
HTML and CSS live in one place and the report logic stays readable. Everything here is
pure (values in, escaped HTML out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sharehub import report_charts as charts

# Cells that read as numbers (counts, shares, hours, times) are right-aligned, unwrapped.
_NUMBER = re.compile(r"^-?[\d,.:\- ]+( h|%)?$")

DEPARTMENT_NAMES = {"ps": "ps public security", "ca": "ca civil affairs", "hw": "hw health"}

LABELS = {
    "sharing_rate": "Data-sharing rate",
    "repeat_entry_reduction": "Repeat-entry reduction",
}

# metric -> (numerator, denominator, target): the short form of docs/metrics.md, so that
# the report explains itself when the repository is not at hand.
DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "sharing_rate": (
        "needed values the hub serves from another department's record",
        "values the department needs from the hub for the persons it holds, where the hub "
        "has a value", "90%"),
    "repeat_entry_reduction": (
        "repeat keyings the hub makes unnecessary",
        "repeat keyings before the hub (records beyond each person's first)", "80%"),
    "coverage": ("persons the department holds a record of", "persons in the index", "-"),
    "feed_records_linked": ("records of the feed linked to another record",
                            "records of the feed", "-"),
    "feed_records_shared": ("records of the feed linked to a record of another feed",
                            "records of the feed", "-"),
    "quality_pass_rate": ("rows staged", "rows landed (loaded batches)", "-"),
    "timeliness_hours": ("hours from the newest delivery's extraction to publication", "-",
                         "the feed contract's latency SLA"),
}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: "Noto Sans", "Segoe UI", Helvetica, Arial, "Noto Sans CJK SC",
  "Microsoft YaHei", sans-serif; margin: 0 auto; max-width: 980px; padding: 16px 24px;
  color: #222; line-height: 1.4; }}
h1 {{ margin-bottom: 0; }} .subtitle {{ color: #555; margin-top: 4px; }}
section {{ border-top: 1px solid #ddd; padding: 8px 0 16px; }}
h2 {{ font-size: 1.25em; }} h3 {{ font-size: 1em; margin: 12px 0 4px; }}
.cards {{ display: flex; gap: 16px; flex-wrap: wrap; }}
.card {{ border: 2px solid #ccc; border-radius: 8px; padding: 12px 18px; min-width: 260px; }}
.card.ok {{ border-color: #009E73; }} .card.bad {{ border-color: #D55E00; }}
.card .label {{ font-weight: bold; }} .card .big {{ font-size: 2.6em; font-weight: bold; }}
.card.ok .target b {{ color: #007a5a; }} .card.bad .target b {{ color: #b34a00; }}
.card .detail {{ color: #555; font-size: .9em; }}
.stats {{ display: flex; gap: 22px; flex-wrap: wrap; margin: 14px 0; }}
table {{ border-collapse: collapse; margin: 8px 0; font-size: .92em; }}
th, td {{ border-bottom: 1px solid #e2e2e2; padding: 3px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.repro {{ background: #f6f8fa; border-left: 3px solid #0072B2; padding: 6px 10px;
  margin-top: 8px; font-size: .88em; }}
.repro pre, details pre {{ margin: 4px 0; white-space: pre-wrap; }}
.note {{ color: #555; font-size: .9em; }} .warn {{ color: #b34a00; font-weight: bold; }}
svg {{ max-width: 100%; height: auto; display: block; margin: 6px 0; }}
@media print {{ details {{ display: none; }} }}
</style></head>
<body><h1>{title}</h1><p class="subtitle">{subtitle}</p>
{body}
</body></html>
"""


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, str) and _NUMBER.match(value):
        return f'<td class="num">{escape(value)}</td>'
    return f"<td>{escape('' if value is None else str(value))}</td>"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *,
          row_ids: Sequence[str] | None = None, empty: str = "none") -> str:
    """An HTML table; numbers right-aligned; ``row_ids`` let tests find a row."""
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        (f'<tr id="{escape(row_ids[i])}">' if row_ids else "<tr>")
        + "".join(_cell(v) for v in row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(title: str, body: str, commands: Sequence[str], queries: dict[str, str], *,
           note: str | None = None, section_id: str | None = None) -> str:
    """A section: title, the figure, a note, then how to reproduce it (commands and SQL)."""
    ident = f' id="{escape(section_id)}"' if section_id else ""
    sql = "".join(
        f"<details><summary>SQL of <code>{escape(name)}</code></summary>"
        f"<pre>{escape(text)}</pre></details>" for name, text in queries.items()
    )
    repro = "".join(f"<pre>{escape(c)}</pre>" for c in commands)
    return (f"<section{ident}><h2>{escape(title)}</h2>{body}"
            + (f'<p class="note">{escape(note)}</p>' if note else "")
            + f'<div class="repro"><b>Reproduce</b>{repro}{sql}</div></section>')


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} h".replace(".0 h", " h")


def quality_section(
    latest: dict[tuple[str, str], tuple[Any, ...]],
    ledger: Sequence[tuple[Any, ...]],
    quarantine: Sequence[tuple[Any, ...]],
    rejected: Sequence[tuple[Any, ...]],
    slas: dict[str, timedelta | None],
    commands: Sequence[str],
    queries: dict[str, str],
) -> str:
    """Per feed: batches, rows, pass rate, timeliness against its SLA; then the quarantine
    by column and check, and the rejected deliveries with their reasons."""
    rows, ids = [], []
    for feed, loaded, refused, landed, staged, quarantined, newest in ledger:
        rate = latest.get(("quality_pass_rate", feed))
        hours = latest.get(("timeliness_hours", feed))
        h = None if hours is None or hours[2] is None else float(hours[2])
        sla = slas.get(feed)
        within = None if h is None or sla is None else h <= sla.total_seconds() / 3600
        rows.append([feed, loaded, refused, landed or 0, staged or 0, quarantined or 0,
                     charts.share(None if rate is None or rate[2] is None else float(rate[2]), 2),
                     f"{newest:%Y-%m-%d %H:%M}" if isinstance(newest, datetime) else "n/a",
                     _hours(h), _hours(None if sla is None else sla.total_seconds() / 3600),
                     "n/a" if within is None else ("yes" if within else "NO")])
        ids.append(f"quality-{feed}")
    overall = latest.get(("quality_pass_rate", "all"))
    summary = table(
        ["feed", "batches loaded", "batches rejected", "rows landed", "rows staged",
         "rows quarantined", "pass rate", "newest extract (UTC+8)", "extract to publication",
         "SLA", "within SLA"], rows, row_ids=ids, empty="no deliveries in the ledger")
    quarantined = table(["feed", "column", "check", "rows", "batches"], list(quarantine[:20]),
                        empty="no quarantined rows")
    refused = table(["feed", "batch", "received (UTC+8)", "reason"],
                    [[f, b, f"{t:%Y-%m-%d %H:%M}" if isinstance(t, datetime) else "", r]
                     for f, b, t, r in rejected[:10]], empty="no rejected deliveries")
    more = f" (first 20 of {len(quarantine)})" if len(quarantine) > 20 else ""
    body = (f'<p id="quality-all">Overall pass rate <b>'
            f'{charts.share(None if overall is None or overall[2] is None else float(overall[2]), 2)}'
            "</b> of the rows landed in loaded batches were staged; the rest are in the "
            "quarantine with a reason.</p>" + summary
            + f"<h3>Quarantined rows by column and check{more}</h3>" + quarantined
            + "<h3>Rejected deliveries (nothing of them was staged)</h3>" + refused)
    return figure("Quality, quarantine and timeliness", body, commands, queries,
                  section_id="quality",
                  note="Timeliness: hours from the newest loaded delivery's extracted_at to "
                       "the version's publication; the SLA is the feed contract's latency.")


def definitions() -> str:
    """The metric definitions as a table (numerator, denominator, target)."""
    return table(["metric", "numerator", "denominator", "target"],
                 [[m, n, d, t] for m, (n, d, t) in DEFINITIONS.items()])
