"""The auditors' metrics, computed from the published tables and stored per version.

Why SQL: an auditor must be able to recompute every stored figure by hand. Each metric is
one query in ``METRIC_QUERIES`` returning ``scope, numerator, denominator, value`` rows;
docs/metrics.md defines each one in words (numerator, denominator, target, why) and
``sharehub report --query NAME`` runs it read-only. Stored long in
``audit.sharing_metrics`` (one row per version, metric and scope) so adding a metric never
changes the table's shape.

The queries read the tables of the version being measured: ``shared.person`` and
``shared.person_xref`` (the published version), ``staging.person_records`` and
``linkage.person_features`` (the record values that version was built from), and the batch
ledger ``raw.batches``. That is why :func:`record` refuses any version but the newest.

A department is the prefix of its feeds' names (``ps_population`` and ``ps_housing`` are
public security ``ps``; ``ca_recipients`` civil affairs; ``hw_ehr_person`` health), the
same codes the shared-table contracts grant columns to.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb

from sharehub.errors import ConfigError

log = logging.getLogger(__name__)

# The departments that deliver feeds, hence subscribe to person data and can be measured.
DEPARTMENTS: tuple[str, ...] = ("ps", "ca", "hw")

# Golden-record fields that carry a value keyed about a person (each has a *_source column).
PERSON_FIELDS: tuple[str, ...] = (
    "name", "id_number", "sex", "birth_date", "phone", "address", "house_code",
)

# The department whose keying each field is meant to come from under the survivorship rules
# of sharehub/publish/golden.py (the first-ranked source): public security population for
# identity and the residence register; no department for the phone (the most recent wins).
SOURCE_DEPARTMENT: dict[str, str | None] = {
    "name": "ps", "id_number": "ps", "sex": "ps", "birth_date": "ps",
    "phone": None, "address": "ps", "house_code": "ps",
}

# What each department needs *from the hub*: the person fields its grant on shared.person
# (contracts/shared_person.yaml) lets it read as values, minus token-only columns (a token
# joins, it cannot be entered in place of keying) and minus the fields it is itself the
# designated source of (public security keys the register; it is not served it).
# tests/unit/test_metrics.py derives this from the contract and fails when they drift.
NEEDED_FIELDS: dict[str, tuple[str, ...]] = {
    "ps": ("phone",),
    "ca": ("name", "sex", "birth_date", "phone", "address"),
    "hw": ("name", "sex", "birth_date", "phone", "address"),
}

# Policy targets (share, 0..1). Metrics without a written target are not listed.
TARGETS: dict[str, float] = {"sharing_rate": 0.90, "repeat_entry_reduction": 0.80}

_NEEDED_VALUES = ", ".join(
    f"('{department}', '{field}')" for department, fields in NEEDED_FIELDS.items() for field in fields
)
# sharing_rate: the golden value's source record of the needed field, picked per slot row
# (only the fields some department needs, so the other *_source columns are not read).
_SOURCE_OF_FIELD = "\n".join(
    f"                           WHEN '{field}' THEN g.{field}_source"
    for field in PERSON_FIELDS
    if any(field in fields for fields in NEEDED_FIELDS.values())
)
# repeat_entry_reduction: how many of a person's records hold each field, and a record is a
# sole holder when, for some field, it holds a value and no other record of its person does.
_HOLDER_COUNTS = ",\n                   ".join(
    f"count(*) FILTER (WHERE {field}) AS {field}" for field in PERSON_FIELDS
)
_SOLE_HOLDER = "\n                   OR ".join(
    f"(h.{field} AND n.{field} = 1)" for field in PERSON_FIELDS
)

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

# metric name -> SQL returning (scope, numerator, denominator, value) rows.
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
    # Repeat keyings before the hub: records beyond the first of each person
    # (records_in - persons_out). How many the hub makes unnecessary: repeat_entry_reduction.
    "repeat_keyings": """
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
    # Match rate to another feed: share of a feed's records whose person has a record in
    # another feed: the feed's records less those of persons known to that feed only (every
    # record in one feed: min(feed) = max(feed); feed is required in person_xref), which one
    # GROUP BY over the index finds. Records without a person (none in a published version)
    # count nowhere.
    "feed_records_shared": """
        WITH alone AS (
            SELECT min(feed) AS feed, count(*) AS records FROM shared.person_xref
            WHERE person_id IS NOT NULL
            GROUP BY person_id HAVING min(feed) = max(feed)
        ),
        records AS (
            SELECT feed, count(*) AS records FROM shared.person_xref
            WHERE person_id IS NOT NULL
            GROUP BY feed
        ),
        unshared AS (SELECT feed, sum(records) AS records FROM alone GROUP BY feed)
        SELECT coalesce(r.feed, 'all'), sum(r.records - coalesce(u.records, 0)), sum(r.records),
               sum(r.records - coalesce(u.records, 0)) / nullif(sum(r.records), 0)
        FROM records r LEFT JOIN unshared u ON u.feed = r.feed
        GROUP BY GROUPING SETS ((r.feed), ())
        ORDER BY 1
    """,
    # Match rate: share of a feed's records linked to at least one other record (any feed):
    # the feed's records less those of persons with a single record, which one GROUP BY over
    # the index finds (joining every record to its person's record count costs 1.5 times
    # as much). Records without a person (none in a published version) count nowhere.
    "feed_records_linked": """
        WITH alone AS (
            SELECT min(feed) AS feed FROM shared.person_xref
            WHERE person_id IS NOT NULL
            GROUP BY person_id HAVING count(*) = 1
        ),
        records AS (
            SELECT feed, count(*) AS records FROM shared.person_xref
            WHERE person_id IS NOT NULL
            GROUP BY feed
        ),
        unlinked AS (SELECT feed, count(*) AS records FROM alone GROUP BY feed)
        SELECT coalesce(r.feed, 'all'), sum(r.records - coalesce(u.records, 0)), sum(r.records),
               sum(r.records - coalesce(u.records, 0)) / nullif(sum(r.records), 0)
        FROM records r LEFT JOIN unlinked u ON u.feed IS NOT DISTINCT FROM r.feed
        GROUP BY GROUPING SETS ((r.feed), ())
        ORDER BY 1
    """,
    # Coverage: share of the persons in the index that the department holds a record of.
    # One pass counts the persons of each department and of the whole index (the grouping
    # set without a department, GROUPING = 1).
    "coverage": """
        WITH persons AS (
            SELECT GROUPING(department) = 1 AS everyone, department,
                   count(DISTINCT person_id) AS persons
            FROM (SELECT split_part(feed, '_', 1) AS department, person_id FROM shared.person_xref)
            GROUP BY GROUPING SETS ((department), ())
        )
        SELECT d.department, d.persons, i.persons, d.persons / nullif(i.persons, 0)
        FROM persons d, persons i
        WHERE NOT d.everyone AND i.everyone
        ORDER BY 1
    """,
    # Data-sharing rate (target 90%): of the values a department needs from the hub for the
    # persons it holds (NEEDED_FIELDS; only values the hub has), the share the hub serves
    # from another department's record (the golden value's *_source). The CASE reads the
    # needed field's source straight from the person's row: no unpivot of all seven fields.
    "sharing_rate": f"""
        WITH needed(department, field) AS (VALUES {_NEEDED_VALUES}),
        held AS (
            SELECT DISTINCT split_part(feed, '_', 1) AS department, person_id
            FROM shared.person_xref
        ),
        -- One row per slot: a department, a person it holds, a field it needs, and the
        -- record the golden value of that field came from (its *_source column, picked by
        -- the CASE). No source means the hub has no value: not a slot.
        slots AS (
            SELECT department,
                   split_part(source_record, '_', 1) <> department AS from_other
            FROM (
                SELECT h.department,
                       CASE n.field
{_SOURCE_OF_FIELD}
                       END AS source_record
                FROM held h
                JOIN needed n ON n.department = h.department
                JOIN shared.person g ON g.person_id = h.person_id
            )
            WHERE source_record IS NOT NULL
        )
        SELECT coalesce(department, 'all'), count(*) FILTER (WHERE from_other), count(*),
               count(*) FILTER (WHERE from_other) / nullif(count(*), 0)
        FROM slots
        GROUP BY GROUPING SETS ((department), ())
        ORDER BY 1
    """,
    # Repeat-entry reduction (target 80%): repeat keyings (records beyond a person's first)
    # that the hub makes unnecessary. A record must still be keyed when it alone holds some
    # value of its person (the hub could not supply it); every person is keyed once.
    # Each person's holder counts come from one GROUP BY joined back to its records, and
    # the usability tests run on each table before the joins, so the joins carry flags, not
    # strings: a window over each person's records on the joined values (the formulation
    # before 2026-11-27) costs 1.7 times as much, and an unpivot to (record, field) rows
    # three times the window.
    "repeat_entry_reduction": f"""
        WITH holds AS (
            -- One row per current record (record_id is unique in each of the three tables):
            -- which golden fields it holds a usable value for. A record lacking its staged
            -- values or its features is still a keying, holding nothing (the LEFT JOIN keeps
            -- it with every field NULL, which no FILTER or AND below counts as held).
            SELECT x.person_id, {", ".join(f"v.{field}" for field in PERSON_FIELDS)}
            FROM shared.person_xref x
            LEFT JOIN (
                SELECT r.record_id, f.name, f.id_number, f.sex, f.birth_date, f.phone,
                       r.address, r.house_code
                FROM (
                    SELECT record_id,
                           address IS NOT NULL AS address,
                           house_code IS NOT NULL AND feed = 'ps_population' AS house_code
                    FROM staging.person_records
                ) r
                JOIN (
                    SELECT unique_id,
                           name_std IS NOT NULL AS name,
                           id_norm IS NOT NULL AND coalesce(id_valid, false) AS id_number,
                           sex IS NOT NULL AS sex,
                           birth_date IS NOT NULL AS birth_date,
                           phone_std IS NOT NULL AS phone
                    FROM linkage.person_features
                ) f ON f.unique_id = r.record_id
            ) v ON v.record_id = x.record_id
        ),
        -- Per person, how many of its records hold each field.
        holders AS (
            SELECT person_id,
                   {_HOLDER_COUNTS}
            FROM holds
            GROUP BY person_id
        ),
        -- A record is a sole holder when, for some field, it holds a value and is the only
        -- record of its person that does (that field's holder count is 1).
        sole AS (
            SELECT h.person_id,
                   {_SOLE_HOLDER} AS sole_holder
            FROM holds h
            JOIN holders n ON n.person_id IS NOT DISTINCT FROM h.person_id
        ),
        -- after: the sole holders (each counted once, however many fields it alone holds),
        -- at least the one keying every person needs.
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
    # Quality pass rate: rows staged / rows landed over the feed's loaded batches (the
    # deliveries the version's staging state was built from). The rest were quarantined.
    "quality_pass_rate": """
        SELECT coalesce(feed, 'all'), sum(rows_staged), sum(rows_landed),
               sum(rows_staged) / nullif(sum(rows_landed), 0)
        FROM raw.batches
        WHERE status = 'loaded'
        GROUP BY GROUPING SETS ((feed), ())
        ORDER BY 1
    """,
    # Timeliness: hours from the newest loaded delivery's extracted_at (UTC+8, as the ledger
    # stores it) to the version's published_at (the publishing machine's local time, turned
    # into UTC+8 through the session time zone). Scope 'all': the stalest feed.
    "timeliness_hours": """
        WITH published AS (
            SELECT timezone('Asia/Shanghai', published_at::TIMESTAMPTZ) AS at
            FROM audit.publish_versions ORDER BY version DESC LIMIT 1
        ),
        newest AS (
            SELECT feed, max(coalesce(extracted_at, received_at)) AS as_of
            FROM raw.batches WHERE status = 'loaded' GROUP BY feed
        ),
        hours AS (
            SELECT n.feed, date_diff('second', n.as_of, p.at) / 3600 AS h
            FROM newest n CROSS JOIN published p
        )
        SELECT coalesce(feed, 'all'), max(h), NULL, max(h)
        FROM hours
        GROUP BY GROUPING SETS ((feed), ())
        ORDER BY 1
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


@functools.cache
def _sources(sql: str) -> frozenset[str]:
    """Schema-qualified tables a query reads (DuckDB's parser; aliases dropped). Cached: the
    queries are constants, parsing them again for every version is waste."""
    found = duckdb.get_table_names(sql, qualified=True)
    return frozenset(re.split(r"\s+AS\s+", n, flags=re.IGNORECASE)[0].strip() for n in found if "." in n)


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every schema-qualified table and view of the warehouse, read once per computation
    (not once per query)."""
    rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    return {f"{s}.{t}" for s, t in rows}


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def compute(con: duckdb.DuckDBPyConnection) -> list[Metric]:
    """Compute every metric whose source tables exist.

    Why skip rather than fail: a warehouse that never had a delivery through the ledger
    (a hand-built one in a test, or shared tables restored from a backup) can still be
    measured on what it has; the skipped metrics are logged.
    """
    existing = _existing_tables(con)
    metrics = []
    for name, sql in METRIC_QUERIES.items():
        missing = sorted(_sources(sql) - existing)
        if missing:
            log.info("metric %s not computed: %s missing", name, ", ".join(missing))
            continue
        for scope, num, den, value in con.execute(sql).fetchall():
            metrics.append(Metric(name, str(scope), _float(num), _float(den), _float(value)))
    return metrics


def record(
    con: duckdb.DuckDBPyConnection, version: int, *, now: datetime | None = None
) -> list[Metric]:
    """Compute the metrics and store them for ``version`` (replacing any earlier computation).

    Only the newest published version can be measured: the shared tables hold no other.
    """
    now = now or datetime.now()
    if "audit.publish_versions" in _existing_tables(con):
        rows = con.execute("SELECT max(version) FROM audit.publish_versions").fetchall()
        latest = rows[0][0]
        if latest is not None and int(latest) != version:
            raise ConfigError(
                f"metrics can only be recorded for the published version {latest} (the one "
                f"the shared tables hold), not version {version}"
            )
    con.execute(_DDL)
    metrics = compute(con)
    con.execute("DELETE FROM audit.sharing_metrics WHERE version = ?", [version])
    if metrics:
        # One statement for all rows: executemany prepares and runs one INSERT per metric.
        con.execute(
            "INSERT INTO audit.sharing_metrics SELECT ?, unnest(?::STRUCT(metric VARCHAR, "
            "scope VARCHAR, numerator DOUBLE, denominator DOUBLE, value DOUBLE)[], "
            "recursive := true), ?",
            [version, [asdict(m) for m in metrics], now],
        )
    log.info("recorded %d metrics for version %d", len(metrics), version)
    return metrics
