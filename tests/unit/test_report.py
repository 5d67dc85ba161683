"""The auditors' report on a hand-built warehouse: headline numbers, no external URL,
the same bytes twice, clear errors, the CLI. Rendering in a browser: tests/integration."""

from __future__ import annotations

from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from sharehub import report_charts as charts
from sharehub.cli import main
from sharehub.errors import NotFound
from sharehub.feeds.ledger import ensure_ledger, record_loaded, record_rejected
from sharehub.report import QUERIES, build_report, run_query, write_report

METRICS = [
    # version, metric, scope, numerator, denominator, value
    (1, "sharing_rate", "all", 600, 1000, 0.6),
    (1, "repeat_entry_reduction", "all", 70, 100, 0.7),
    (2, "sharing_rate", "all", 32798, 43485, 0.754225),
    (2, "sharing_rate", "ps", 2949, 9122, 0.323284),
    (2, "sharing_rate", "ca", 3983, 4063, 0.980310),
    (2, "sharing_rate", "hw", 25866, 30300, 0.853663),
    (2, "repeat_entry_reduction", "all", 9645, 10124, 0.952687),
    (2, "coverage", "ps", 10139, 10417, 0.973313),
    (2, "persons_out", "all", 10417, None, 10417),
    (2, "records_in", "all", 20541, None, 20541),
    (2, "quality_pass_rate", "ps_population", 9925, 9930, 0.999496),
    (2, "quality_pass_rate", "all", 9925, 9930, 0.999496),
    (2, "timeliness_hours", "ps_population", 30.5, None, 30.5),
    (2, "feed_records_linked", "ps_population", 7072, 9676, 0.730880),
]


def build(con: duckdb.DuckDBPyConnection) -> None:
    for schema in ("audit", "linkage", "raw", "quarantine"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute("""CREATE TABLE audit.publish_versions (version INTEGER, published_at TIMESTAMP,
        run_id VARCHAR, content_hash UBIGINT, persons BIGINT, records BIGINT)""")
    con.execute("INSERT INTO audit.publish_versions VALUES "
                "(1, '2026-11-26 12:00', 'run-1', 1, 10269, 20255), "
                "(2, '2026-11-27 12:00', 'run-2', 2, 10417, 20541)")
    con.execute("""CREATE TABLE audit.sharing_metrics (version INTEGER, metric VARCHAR,
        scope VARCHAR, numerator DOUBLE, denominator DOUBLE, value DOUBLE, computed_at TIMESTAMP)""")
    con.executemany("INSERT INTO audit.sharing_metrics VALUES (?, ?, ?, ?, ?, ?, '2026-11-27')",
                    METRICS)
    ensure_ledger(con)
    record_loaded(con, feed="ps_population", batch_id="20261101-001", extract_type="full",
                  checksum="c", rows_declared=9930, rows_landed=9930, rows_staged=9925,
                  rows_quarantined=5, received_at=datetime(2026, 11, 27, 1),
                  loaded_at=datetime(2026, 11, 27, 1), extracted_at=datetime(2026, 11, 26, 2))
    record_rejected(con, feed="ca_recipients", batch_id="20261101-002", extract_type="full",
                    checksum="x", rows_declared=3, reason="checksum mismatch <b>",
                    received_at=datetime(2026, 11, 27))
    con.execute("INSERT INTO quarantine.rows (feed, batch_id, row_number, column_name, check_name) "
                "SELECT 'ps_population', '20261101-001', i, '出生日期', 'format' FROM range(5) t(i)")
    con.execute("CREATE TABLE linkage.predictions AS SELECT * FROM (VALUES "
                "(-3.2, 0.1), (2.5, 0.85), (12.0, 0.9998), (12.7, 0.9998), (30.1, 1.0)) "
                "t(match_weight, match_probability)")
    con.execute("CREATE TABLE linkage.link_runs (run_id VARCHAR, linked_at TIMESTAMP, "
                "threshold DOUBLE)")
    con.execute("INSERT INTO linkage.link_runs VALUES ('run-2', '2026-11-27 12:00', 0.95)")


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    build(con)
    return con


class _Refs(HTMLParser):
    """Every tag and every attribute value that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [f"{name}={value}" for name, value in attrs if value]


def test_headline_numbers_and_verdicts_are_in_the_html(con: duckdb.DuckDBPyConnection) -> None:
    html = build_report(con)
    assert 'id="headline-sharing_rate"' in html and 'id="headline-repeat_entry_reduction"' in html
    sharing = html.split('id="headline-sharing_rate"')[1].split("</div></div>")[0]
    assert "75.4%" in sharing and "target 90.0%" in sharing and "not met" in sharing
    assert "32,798 of 43,485" in sharing
    reduction = html.split('id="headline-repeat_entry_reduction"')[1].split("</div></div>")[0]
    assert "95.3%" in reduction and "<b>met</b>" in reduction
    for department, shown in (("ps", "32.3%"), ("ca", "98.0%"), ("hw", "85.4%")):
        assert shown in html.split(f'id="sharing-{department}"')[1].split("</tr>")[0]
    assert "version 2" in html and "10,417" in html


def test_no_external_reference_script_or_remote_style(con: duckdb.DuckDBPyConnection) -> None:
    html = build_report(con)
    refs = _Refs()
    refs.feed(html)
    assert not refs.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not [a for a in refs.attributes if "://" in a or a.startswith(("src=", "href="))]
    style = html.split("<style>")[1].split("</style>")[0]
    assert "url(" not in style and "@import" not in style
    assert "http://" not in html and "https://" not in html  # not even in plain text today


def test_every_figure_says_how_to_reproduce_it(con: duckdb.DuckDBPyConnection) -> None:
    html = build_report(con)
    assert html.count('<div class="repro"><b>Reproduce</b>') >= 7
    for name in ("sharing_rate", "repeat_entry_reduction", "trend", "ledger", "quarantine",
                 "match_weights", "coverage"):
        assert f"sharehub report --warehouse WAREHOUSE --query {name}" in html, name
    assert "checksum mismatch &lt;b&gt;" in html  # delivered text is escaped, never markup


def test_the_same_warehouse_gives_the_same_bytes(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    first = write_report(con, tmp_path / "a" / "report.html").read_bytes()
    assert write_report(con, tmp_path / "b.html").read_bytes() == first
    assert not list(tmp_path.glob("**/.*.partial"))


def test_trend_and_histogram_are_drawn(con: duckdb.DuckDBPyConnection) -> None:
    html = build_report(con)
    trend = html.split('aria-label="Data-sharing rate per version"')[1].split("</svg>")[0]
    assert "<polyline" in trend and "v1" in trend and "v2" in trend and "target 90.0%" in trend
    histogram = html.split('aria-label="Match weights of scored record pairs"')[1].split("</svg>")[0]
    assert histogram.count("<rect") == 4 and "weight 4.25" in histogram  # 12.0, 12.7: one bin
    assert "5 scored pairs; 3 at or above the link threshold" in html


def test_missing_metrics_and_unknown_queries_are_clear_errors() -> None:
    with pytest.raises(NotFound, match="sharehub run"):
        build_report(duckdb.connect())
    con = duckdb.connect()
    build(con)
    with pytest.raises(NotFound, match="no query named 'nope'; known: records_in"):
        run_query(con, "nope")
    columns, rows = run_query(con, "ledger")
    assert columns[:3] == ["feed", "batches_loaded", "batches_rejected"] and len(rows) == 2
    assert set(QUERIES) >= {"sharing_rate", "trend", "match_weights"}


def test_cli_writes_the_report_and_prints_a_query(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    build(con)
    con.close()
    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(main, ["report", "--out", str(out), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert "75.4%" in out.read_text(encoding="utf-8")
    result = runner.invoke(main, ["report", "--query", "versions", "--warehouse", str(warehouse)])
    assert result.exit_code == 0 and "run-2" in result.output, result.output
    result = runner.invoke(main, ["report", "--warehouse", str(warehouse)])
    assert result.exit_code == 1 and "exactly one of --out" in result.output


def test_charts_cope_with_one_version_and_no_data() -> None:
    one = charts.line_chart({"overall": [(3, 0.5)]}, title="t", target=0.9)
    assert "<circle" in one and "<polyline" not in one and "v3" in one
    assert "no data" in charts.histogram([], title="h")
    bars = charts.bar_chart([("a", 0.95), ("b", 0.5), ("c", None)], title="b", target=0.9)
    assert bars.count("<rect") == 2 and "n/a" in bars and charts.PALETTE[1] in bars
    assert charts.share(0.9995) == "100.0%" and charts.share(None) == "n/a"
