"""The auditors' report: one self-contained HTML file read from the warehouse.

Why one file with inline CSS and SVG and no script: auditors open it offline, archive it
with the version it describes and forward it by mail; nothing in it may fetch anything.
Why figures come with their commands: a number an auditor cannot recompute is a claim,
not evidence, so every figure names the ``sharehub report --query NAME`` that prints its
rows and the SQL behind it (``METRIC_QUERIES`` for the stored metrics, ``REPORT_QUERIES``
for the rest). The report only reads: headline figures are the values stored in
``audit.sharing_metrics`` for the newest measured version; the ledger, the quarantine and
the match weights are read as they are now. No generation time is written, so the same
warehouse gives the same bytes. Layout and charts: docs/report.md, ``report_charts``.
"""

from __future__ import annotations

import logging
import math
import shlex
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from sharehub import report_charts as charts
from sharehub.errors import NotFound
from sharehub.metrics import DEPARTMENTS, METRIC_QUERIES, NEEDED_FIELDS, TARGETS
from sharehub.report_sections import (
    DEPARTMENT_NAMES,
    LABELS,
    PAGE,
    definitions,
    figure,
    quality_section,
    table,
)
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

TREND_METRICS = ("sharing_rate", "repeat_entry_reduction", "quality_pass_rate", "coverage")

# Named read-only queries behind the figures that are not stored metrics.
REPORT_QUERIES: dict[str, str] = {
    "versions": """
        SELECT version, published_at, run_id, persons, records
        FROM audit.publish_versions ORDER BY version
    """,
    "trend": f"""
        SELECT version, metric, scope, numerator, denominator, value
        FROM audit.sharing_metrics
        WHERE metric IN ({", ".join(f"'{m}'" for m in TREND_METRICS)})
        ORDER BY version, metric, scope
    """,
    "ledger": """
        SELECT feed,
               count(*) FILTER (WHERE status = 'loaded') AS batches_loaded,
               count(*) FILTER (WHERE status = 'rejected') AS batches_rejected,
               sum(rows_landed) AS rows_landed, sum(rows_staged) AS rows_staged,
               sum(rows_quarantined) AS rows_quarantined,
               max(coalesce(extracted_at, received_at)) FILTER (WHERE status = 'loaded')
                   AS newest_extracted_at
        FROM raw.batches GROUP BY feed ORDER BY feed
    """,
    "quarantine": """
        SELECT feed, column_name, check_name, count(*) AS rows, count(DISTINCT batch_id) AS batches
        FROM quarantine.rows GROUP BY ALL ORDER BY rows DESC, feed, column_name, check_name
    """,
    "rejected": """
        SELECT feed, batch_id, received_at, reason FROM raw.batches
        WHERE status = 'rejected' ORDER BY received_at DESC, feed, batch_id
    """,
    "match_weights": """
        SELECT floor(match_weight) AS bin, count(*) AS pairs,
               count(*) FILTER (WHERE match_probability >= (
                   SELECT threshold FROM linkage.link_runs ORDER BY linked_at DESC LIMIT 1
               )) AS linked_pairs
        FROM linkage.predictions GROUP BY 1 ORDER BY 1
    """,
}
QUERIES: dict[str, str] = {**METRIC_QUERIES, **REPORT_QUERIES}


def run_query(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one named query (a metric's or a figure's): column names and rows."""
    if name not in QUERIES:
        raise NotFound(f"no query named {name!r}; known: {', '.join(QUERIES)}")
    cursor = con.execute(QUERIES[name])
    columns = [d[0] for d in cursor.description or []]
    if name in METRIC_QUERIES:
        columns = ["scope", "numerator", "denominator", "value"]
    return columns, cursor.fetchall()


def _rows(con: duckdb.DuckDBPyConnection, name: str, *needs: str) -> list[tuple[Any, ...]]:
    """A report query's rows, or none when a table it reads is absent from this warehouse."""
    if not all(table_exists(con, t) for t in needs):
        return []
    return run_query(con, name)[1]


def _warehouse_path(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] else "WAREHOUSE"


def _latest(con: duckdb.DuckDBPyConnection) -> tuple[int, dict[tuple[str, str], tuple[Any, ...]]]:
    if not table_exists(con, "audit.sharing_metrics"):
        raise NotFound("no metrics in this warehouse (audit.sharing_metrics is missing); "
                       "run `sharehub run` so that a version is published and measured")
    rows = con.execute(
        "SELECT version, metric, scope, numerator, denominator, value FROM audit.sharing_metrics "
        "WHERE version = (SELECT max(version) FROM audit.sharing_metrics)"
    ).fetchall()
    if not rows:
        raise NotFound("audit.sharing_metrics is empty; run `sharehub run` to publish and measure")
    return int(rows[0][0]), {(r[1], r[2]): r[3:] for r in rows}


def _value(latest: dict[tuple[str, str], tuple[Any, ...]], metric: str, scope: str) -> float | None:
    row = latest.get((metric, scope))
    return None if row is None or row[2] is None else float(row[2])


def _card(metric: str, latest: dict[tuple[str, str], tuple[Any, ...]]) -> str:
    value, target = _value(latest, metric, "all"), TARGETS[metric]
    num, den = (latest.get((metric, "all")) or (None, None, None))[:2]
    met = value is not None and value >= target
    verdict = "met" if met else "not met"
    return (
        f'<div class="card {"ok" if met else "bad"}" id="headline-{metric}">'
        f'<div class="label">{escape(LABELS[metric])}</div>'
        f'<div class="big">{charts.share(value)}</div>'
        f'<div class="target">target {charts.share(target)}: <b>{verdict}</b></div>'
        f'<div class="detail">{_count(num)} of {_count(den)}</div></div>'
    )


def _count(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f}"


def _headline(latest: dict[tuple[str, str], tuple[Any, ...]], version: int, wh: str) -> str:
    cmd = f"sharehub report{wh}"
    small = [("persons_out", "persons in the master index", _count),
             ("records_in", "source records linked", _count),
             ("records_per_person", "records per person (before the hub)", lambda v: f"{v:.2f}"),
             ("persons_in_2plus_feeds", "persons known to 2+ feeds", charts.share)]
    stats = "".join(
        f'<div class="stat" id="stat-{m}"><b>{"n/a" if (v := _value(latest, m, "all")) is None else f(v)}'
        f"</b> {escape(label)}</div>"
        for m, label, f in small
    )
    per_dept = table(
        ["department", "needs from the hub", "filled from another department", "needed values",
         "sharing rate"],
        [[DEPARTMENT_NAMES[d], ", ".join(NEEDED_FIELDS[d]),
          _count((latest.get(("sharing_rate", d)) or (None,))[0]),
          _count((latest.get(("sharing_rate", d)) or (None, None))[1]),
          charts.share(_value(latest, "sharing_rate", d))] for d in DEPARTMENTS],
        row_ids=[f"sharing-{d}" for d in DEPARTMENTS],
    )
    body = (f'<div class="cards">{_card("sharing_rate", latest)}'
            f'{_card("repeat_entry_reduction", latest)}</div><div class="stats">{stats}</div>'
            + per_dept)
    return figure(
        f"Headline: version {version} against the policy targets", body,
        [f"{cmd} --query sharing_rate", f"{cmd} --query repeat_entry_reduction",
         f"sharehub export audit.sharing_metrics --out metrics.csv{wh}"],
        _sql("sharing_rate", "repeat_entry_reduction"), section_id="headline",
        note="Stored values of the version; the queries recompute them from the warehouse.",
    )


def _trend(con: duckdb.DuckDBPyConnection, cmd: str) -> str:
    rows = _rows(con, "trend", "audit.sharing_metrics")
    points: dict[tuple[str, str], list[tuple[int, float | None]]] = {}
    for version, metric, scope, _num, _den, value in rows:
        points.setdefault((metric, scope), []).append((int(version), value))
    versions = _rows(con, "versions", "audit.publish_versions")
    numbers = [int(v[0]) for v in versions]
    sharing = {scope: points.get(("sharing_rate", scope), []) for scope in ("all", *DEPARTMENTS)}
    charts_html = charts.line_chart(
        {("overall" if s == "all" else s): p for s, p in sharing.items()},
        title="Data-sharing rate per version", versions=numbers, target=TARGETS["sharing_rate"],
    ) + charts.line_chart(
        {"repeat-entry reduction": points.get(("repeat_entry_reduction", "all"), []),
         "quality pass rate": points.get(("quality_pass_rate", "all"), [])},
        title="Repeat-entry reduction and quality pass rate per version", versions=numbers,
        target=TARGETS["repeat_entry_reduction"],
    )
    listing = table(["version", "published at", "run", "persons", "records"],
                    [[v, f"{t:%Y-%m-%d %H:%M}", r, f"{p:,}", f"{n:,}"] for v, t, r, p, n in versions])
    return figure("Trend over published versions", charts_html + listing,
                  [f"{cmd} --query trend", f"{cmd} --query versions"], _sql("trend", "versions"),
                  note="Versions measured before a metric existed have no point for it.")


def _departments(latest: dict[tuple[str, str], tuple[Any, ...]], cmd: str) -> str:
    sharing = charts.bar_chart(
        [(DEPARTMENT_NAMES[d], _value(latest, "sharing_rate", d)) for d in DEPARTMENTS],
        title="Data-sharing rate per department", target=TARGETS["sharing_rate"])
    coverage = charts.bar_chart(
        [(DEPARTMENT_NAMES[d], _value(latest, "coverage", d)) for d in DEPARTMENTS],
        title="Coverage per department")
    feeds = sorted({s for m, s in latest if m == "feed_records_linked" and s != "all"})
    linked = charts.bar_chart([(f, _value(latest, "feed_records_linked", f)) for f in feeds],
                              title="Records linked to another record, per feed")
    shared = charts.bar_chart([(f, _value(latest, "feed_records_shared", f)) for f in feeds],
                              title="Records linked to another feed, per feed")
    return (
        figure("Data-sharing rate per department (target dashed)", sharing,
               [f"{cmd} --query sharing_rate"], _sql("sharing_rate"))
        + figure("Coverage: share of the persons in the index each department holds", coverage,
                 [f"{cmd} --query coverage"], _sql("coverage"))
        + figure("Match rates per feed", "<h3>linked to at least one other record</h3>" + linked
                 + "<h3>linked to a record of another feed</h3>" + shared,
                 [f"{cmd} --query feed_records_linked", f"{cmd} --query feed_records_shared"],
                 _sql("feed_records_linked", "feed_records_shared"))
    )


def _histogram(con: duckdb.DuckDBPyConnection, cmd: str) -> str:
    rows = _rows(con, "match_weights", "linkage.predictions", "linkage.link_runs")
    threshold_rows = (con.execute("SELECT threshold FROM linkage.link_runs ORDER BY linked_at DESC "
                                  "LIMIT 1").fetchall() if rows else [])
    marker, label = None, ""
    if threshold_rows and 0 < float(threshold_rows[0][0]) < 1:
        t = float(threshold_rows[0][0])
        marker = math.log2(t / (1 - t))  # Splink: probability = 2^w / (1 + 2^w)
        label = f"link threshold p={t:g} (weight {marker:.2f})"
    svg = charts.histogram([(float(b), int(n)) for b, n, _ in rows],
                           title="Match weights of scored record pairs", marker=marker,
                           marker_label=label)
    total, linked = sum(int(r[1]) for r in rows), sum(int(r[2] or 0) for r in rows)
    note = (f"{total:,} scored pairs; {linked:,} at or above the link threshold. Pairs far right "
            "of the threshold are clear matches; a thick band just left of it would mean "
            "missed links worth a review." if rows else "No scored pairs in this warehouse.")
    return figure("Match-weight histogram", svg, [f"{cmd} --query match_weights"],
                  _sql("match_weights"), note=note, section_id="histogram")


def _slas() -> dict[str, timedelta | None]:
    """Each feed's latency SLA from its contract (None where it declares none)."""
    from schemas.contract import FEEDS, feed_contract

    return {feed: feed_contract(feed).latency for feed in FEEDS}


def build_report(con: duckdb.DuckDBPyConnection) -> str:
    """The report as one HTML string (pure read of the warehouse)."""
    version, latest = _latest(con)
    warehouse = _warehouse_path(con)
    wh = f" --warehouse {shlex.quote(warehouse)}"
    cmd = f"sharehub report{wh}"
    published = con.execute(
        "SELECT published_at, run_id FROM audit.publish_versions WHERE version = ?", [version]
    ).fetchall() if table_exists(con, "audit.publish_versions") else []
    when = f"published {published[0][0]:%Y-%m-%d %H:%M} by {published[0][1]}" if published else ""
    sections = [
        _headline(latest, version, wh),
        _trend(con, cmd),
        _departments(latest, cmd),
        quality_section(
            latest,
            _rows(con, "ledger", "raw.batches"),
            _rows(con, "quarantine", "quarantine.rows"),
            _rows(con, "rejected", "raw.batches"),
            _slas(),
            [f"{cmd} --query ledger", f"{cmd} --query quality_pass_rate",
             f"{cmd} --query timeliness_hours", f"{cmd} --query quarantine",
             f"{cmd} --query rejected", f"sharehub batches{wh}", f"sharehub quarantine{wh}"],
            _sql("ledger", "quality_pass_rate", "timeliness_hours", "quarantine", "rejected"),
        ),
        _histogram(con, cmd),
        figure("Definitions", definitions(), [f"{cmd} --query NAME"], {}, section_id="definitions",
               note="Full definitions, with why each is counted the way it is: docs/metrics.md. "
                    f"Regenerate this file: sharehub report --out report.html{wh}"),
    ]
    return PAGE.format(
        title=escape(f"sharehub audit report, version {version}"),
        subtitle=escape(f"warehouse {warehouse}; version {version} {when}"),
        body="".join(sections),
    )


def _sql(*names: str) -> dict[str, str]:
    return {name: _dedent(QUERIES[name]) for name in names}


def _dedent(sql: str) -> str:
    lines = [line for line in sql.splitlines() if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
    return "\n".join(line[indent:] for line in lines)


def write_report(con: duckdb.DuckDBPyConnection, out: Path) -> Path:
    """Write the report to ``out`` (through a temporary name, so no half file is seen)."""
    text = build_report(con)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    log.info("report written to %s (%d bytes)", out, len(text.encode("utf-8")))
    return out
