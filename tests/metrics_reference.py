"""The plain formulations of the auditors' metrics that faster METRIC_QUERIES replaced.

Before 2026-11-27 these were the METRIC_QUERIES: a window per person for the sole holders,
every record joined to its person's counts for the match rates, separate counts of the
index for coverage. They stay here as the reference the rewritten queries must equal row
for row: on random tables (tests/unit/test_metrics.py) and on a generated district over
several days (tests/integration/test_metrics_generated.py).
"""

from __future__ import annotations

import duckdb

from sharehub import metrics

_WINDOW_SOLE_HOLDER = "\n OR ".join(
    f"({f} AND count(*) FILTER (WHERE {f}) OVER person = 1)" for f in metrics.PERSON_FIELDS
)
REFERENCE_QUERIES: dict[str, str] = {
    "feed_records_shared": """
        WITH pf AS (SELECT person_id, count(DISTINCT feed) n FROM shared.person_xref GROUP BY 1)
        SELECT coalesce(x.feed, 'all'), count(*) FILTER (WHERE pf.n >= 2), count(*),
               count(*) FILTER (WHERE pf.n >= 2) / nullif(count(*), 0)
        FROM shared.person_xref x JOIN pf ON pf.person_id = x.person_id
        GROUP BY GROUPING SETS ((x.feed), ())
        ORDER BY 1
    """,
    "feed_records_linked": """
        WITH pr AS (SELECT person_id, count(*) n FROM shared.person_xref GROUP BY 1)
        SELECT coalesce(x.feed, 'all'), count(*) FILTER (WHERE pr.n >= 2), count(*),
               count(*) FILTER (WHERE pr.n >= 2) / nullif(count(*), 0)
        FROM shared.person_xref x JOIN pr ON pr.person_id = x.person_id
        GROUP BY GROUPING SETS ((x.feed), ())
        ORDER BY 1
    """,
    "coverage": """
        SELECT split_part(feed, '_', 1), count(DISTINCT person_id),
               (SELECT count(DISTINCT person_id) FROM shared.person_xref),
               count(DISTINCT person_id)
                 / nullif((SELECT count(DISTINCT person_id) FROM shared.person_xref), 0)
        FROM shared.person_xref
        GROUP BY 1 ORDER BY 1
    """,
    "repeat_entry_reduction": f"""
        WITH holds AS (
            SELECT x.person_id,
                   f.name_std IS NOT NULL AS name,
                   f.id_norm IS NOT NULL AND coalesce(f.id_valid, false) AS id_number,
                   f.sex IS NOT NULL AS sex,
                   f.birth_date IS NOT NULL AS birth_date,
                   f.phone_std IS NOT NULL AS phone,
                   r.address IS NOT NULL AS address,
                   r.house_code IS NOT NULL AND r.feed = 'ps_population' AS house_code
            FROM shared.person_xref x
            LEFT JOIN (
                staging.person_records r
                JOIN linkage.person_features f ON f.unique_id = r.record_id
            ) ON r.record_id = x.record_id
        ),
        sole AS (
            SELECT person_id, {_WINDOW_SOLE_HOLDER} AS sole_holder
            FROM holds
            WINDOW person AS (PARTITION BY person_id)
        ),
        per_person AS (
            SELECT count(*) AS before,
                   greatest(1, count(*) FILTER (WHERE sole_holder)) AS after
            FROM sole
            GROUP BY person_id
        )
        SELECT 'all', sum(before - after), sum(before - 1),
               sum(before - after) / nullif(sum(before - 1), 0)
        FROM per_person
    """,
}


def assert_same_as_reference(con: duckdb.DuckDBPyConnection) -> None:
    """Each rewritten metric returns exactly the reference rows (values and their types)."""
    for name, reference in REFERENCE_QUERIES.items():
        want = con.execute(reference).fetchall()
        got = con.execute(metrics.METRIC_QUERIES[name]).fetchall()
        assert got == want, name
        assert [type(v) for row in got for v in row] == [type(v) for row in want for v in row], name


