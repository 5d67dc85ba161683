"""The auditors' metrics, computed from the published tables and stored per version.

Definitions are written in docs/metrics.md; each metric here is one SQL query over
``shared.person_xref`` so an auditor can rerun it by hand. Stored long (one row per metric
and scope) so adding a metric never changes the table's shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb

log = logging.getLogger(__name__)

_DDL = """
CREATE TABLE IF NOT EXISTS audit.sharing_metrics (
    version INTEGER NOT NULL,
    metric VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    numerator DOUBLE,
    denominator DOUBLE,
    value DOUBLE,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (version, metric, scope)
)
"""

# metric name -> (SQL returning scope, numerator, denominator, value; description)
METRIC_QUERIES: dict[str, str] = {
    # Every current person record that the hub linked (all feeds, housing owners included).
    "records_in": """
        SELECT 'all', count(*), NULL, count(*) FROM shared.person_xref
    """,
    # Distinct persons in the master person index.
    "persons_out": """
        SELECT 'all', count(DISTINCT person_id), NULL, count(DISTINCT person_id)
        FROM shared.person_xref
    """,
    # Records that re-key a person already known: records_in - persons_out.
    "repeat_entries_avoided": """
        SELECT 'all', count(*) - count(DISTINCT person_id), count(*),
               count(*) - count(DISTINCT person_id)
        FROM shared.person_xref
    """,
    # Source records per person before the hub (after it, one entry per person).
    "records_per_person": """
        SELECT 'all', count(*), count(DISTINCT person_id),
               count(*) / nullif(count(DISTINCT person_id), 0)
        FROM shared.person_xref
    """,
    # Persons known to two or more departments' feeds: the people sharing can serve.
    "persons_in_2plus_feeds": """
        SELECT 'all', count(*) FILTER (WHERE n >= 2), count(*),
               count(*) FILTER (WHERE n >= 2) / nullif(count(*), 0)
        FROM (SELECT person_id, count(DISTINCT feed) n FROM shared.person_xref GROUP BY 1)
    """,
    # Per feed: share of its records whose person is also known to another feed.
    "feed_records_shared": """
        WITH pf AS (SELECT person_id, count(DISTINCT feed) n FROM shared.person_xref GROUP BY 1)
        SELECT x.feed, count(*) FILTER (WHERE pf.n >= 2), count(*),
               count(*) FILTER (WHERE pf.n >= 2) / nullif(count(*), 0)
        FROM shared.person_xref x JOIN pf USING (person_id)
        GROUP BY x.feed
    """,
}


@dataclass(frozen=True)
class Metric:
    """One stored metric value."""

    metric: str
    scope: str
    numerator: float | None
    denominator: float | None
    value: float | None


def compute(con: duckdb.DuckDBPyConnection) -> list[Metric]:
    """Compute every metric from the published shared tables."""
    metrics = []
    for name, sql in METRIC_QUERIES.items():
        for scope, num, den, value in con.execute(sql).fetchall():
            metrics.append(
                Metric(
                    name,
                    str(scope),
                    None if num is None else float(num),
                    None if den is None else float(den),
                    None if value is None else float(value),
                )
            )
    return metrics


def record(
    con: duckdb.DuckDBPyConnection, version: int, *, now: datetime | None = None
) -> list[Metric]:
    """Compute the metrics and store them for ``version`` (replacing any earlier computation)."""
    now = now or datetime.now()
    con.execute(_DDL)
    metrics = compute(con)
    con.execute("DELETE FROM audit.sharing_metrics WHERE version = ?", [version])
    con.executemany(
        "INSERT INTO audit.sharing_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(version, m.metric, m.scope, m.numerator, m.denominator, m.value, now) for m in metrics],
    )
    log.info("recorded %d metrics for version %d", len(metrics), version)
    return metrics
