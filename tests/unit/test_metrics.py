"""Auditors' metrics on inline rows: every figure computed by hand, then by the SQL.

Three persons, four feeds (golden values built by the real survivorship rules):

- PA: ps_population:1, hw_ehr_person:9, ca_recipients:5. Identity and address from
  public security; the phone from health (newest mobile, civil affairs last).
- PB: ps_population:2 only, no phone anywhere.
- PC: hw_ehr_person:7 and a housing owner ps_housing:H9. Identity and address from
  health (authority before housing owners); the phone only the owner record has.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from metrics_reference import assert_same_as_reference

from sharehub import metrics
from sharehub.errors import ConfigError
from sharehub.feeds.ledger import ensure_ledger, record_loaded, record_rejected
from sharehub.publish.contract import shared_contract
from sharehub.publish.golden import AUTHORITY, golden_person_sql

RECORDS = [
    # record_id, person_id, status, updated_at, address, house_code
    ("ps_population:1", "PA", "active", "2026-10-01", "幸福里3-2-501", "H1"),
    ("hw_ehr_person:9", "PA", "active", "2026-11-01", "幸福里3号楼2单元501室", None),
    ("ca_recipients:5", "PA", "active", "2026-11-05", "幸福里3栋2单元501", None),
    ("ps_population:2", "PB", "active", "2026-09-01", "光明路8号", "H2"),
    ("hw_ehr_person:7", "PC", "active", "2026-10-10", "长安街1号", None),
    ("ps_housing:H9", "PC", "active", "2026-08-01", None, "H9"),
]
FEATURES = [
    # unique_id, name_std, id_norm, id_valid, sex, birth_date, phone_std, phone_kind
    ("ps_population:1", "张伟", "110105194803120011", True, "M", "1948-03-12", "13800000001", "mobile"),
    ("hw_ehr_person:9", "张伟", None, False, "M", "1948-03-12", "13900000002", "mobile"),
    ("ca_recipients:5", "张伟", "110105194803120011", True, "M", "1948-03-12", "13700000003", "mobile"),
    ("ps_population:2", "李娜", "110105199001010022", True, "F", "1990-01-01", None, None),
    ("hw_ehr_person:7", "王芳", "110105198501010023", True, "F", "1985-01-01", None, None),
    ("ps_housing:H9", "王芳", "110105198501010023", True, None, None, "13600000009", "mobile"),
]
PUBLISHED_AT = datetime(2026, 11, 27, 12, 0)


def build(con: duckdb.DuckDBPyConnection) -> None:
    """The tables a published version leaves behind, golden records by the real rules."""
    for schema in ("staging", "linkage", "shared", "audit"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute("""CREATE TABLE staging.person_records (record_id VARCHAR, feed VARCHAR,
        source_key VARCHAR, batch_id VARCHAR, record_status VARCHAR, updated_at TIMESTAMP,
        address VARCHAR, house_code VARCHAR)""")
    con.executemany(
        "INSERT INTO staging.person_records VALUES (?, split_part(?, ':', 1), split_part(?, ':', 2), "
        "'b-' || split_part(?, ':', 1), ?, ?, ?, ?)",
        [(r[0], r[0], r[0], r[0], *r[2:]) for r in RECORDS])
    con.execute("""CREATE TABLE linkage.person_features (unique_id VARCHAR, name_std VARCHAR,
        id_norm VARCHAR, id_valid BOOLEAN, sex VARCHAR, birth_date DATE, phone_std VARCHAR,
        phone_kind VARCHAR, is_placeholder_name BOOLEAN DEFAULT false)""")
    con.executemany("INSERT INTO linkage.person_features (unique_id, name_std, id_norm, id_valid, "
                    "sex, birth_date, phone_std, phone_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", FEATURES)
    con.execute("CREATE TABLE linkage.person_ids AS SELECT * FROM "
                "(VALUES " + ", ".join(f"('{r[0]}', '{r[1]}')" for r in RECORDS) + ") t(record_id, person_id)")
    con.execute("""CREATE TABLE shared.person_xref AS
        SELECT p.person_id, r.feed, r.source_key, r.record_id, NULL::DOUBLE AS match_probability,
               r.record_status, r.batch_id
        FROM linkage.person_ids p JOIN staging.person_records r USING (record_id)""")
    con.execute(f"CREATE TABLE shared.person AS {golden_person_sql()}")
    con.execute("""CREATE TABLE audit.publish_versions (version INTEGER, published_at TIMESTAMP,
        run_id VARCHAR, content_hash UBIGINT, persons BIGINT, records BIGINT)""")
    con.execute("INSERT INTO audit.publish_versions VALUES (1, ?, 'r1', 1, 3, 6)", [PUBLISHED_AT])
    ensure_ledger(con)
    for feed, batch, landed, staged, extracted, received in [
        ("ps_population", "b1", 10, 8, datetime(2026, 11, 26, 2), datetime(2026, 11, 26, 3)),
        ("ps_population", "b2", 5, 5, datetime(2026, 11, 27, 2), datetime(2026, 11, 27, 3)),
        ("hw_ehr_person", "h1", 4, 4, None, datetime(2026, 11, 27, 6)),
    ]:
        record_loaded(con, feed=feed, batch_id=batch, extract_type="full", checksum=batch,
                      rows_declared=landed, rows_landed=landed, rows_staged=staged,
                      rows_quarantined=landed - staged, received_at=received, loaded_at=received,
                      extracted_at=extracted)
    record_rejected(con, feed="ca_recipients", batch_id="c1", extract_type="full", checksum="x",
                    rows_declared=3, reason="checksum mismatch", received_at=datetime(2026, 11, 27))


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")  # a publisher in the district's zone
    build(con)
    return con


def figures(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[float | None, ...]]:
    return {(m.metric, m.scope): (m.numerator, m.denominator, m.value)
            for m in metrics.record(con, 1, now=PUBLISHED_AT)}


def test_needed_fields_are_the_grants_less_tokens_and_own_source_fields() -> None:
    contract = shared_contract("person")
    assert set(metrics.DEPARTMENTS) == {g.department for g in contract.grants}
    for department in metrics.DEPARTMENTS:
        grant = contract.grant(department)
        assert grant is not None
        values = [c for c in grant.columns if c in metrics.PERSON_FIELDS
                  and (c not in contract.token_columns or c in grant.raw_columns)]
        expected = tuple(f for f in values if metrics.SOURCE_DEPARTMENT[f] != department)
        assert metrics.NEEDED_FIELDS[department] == expected, department


def test_source_departments_are_the_golden_rules_first_choice(con: duckdb.DuckDBPyConnection) -> None:
    first = min(AUTHORITY, key=AUTHORITY.__getitem__)
    assert {metrics.SOURCE_DEPARTMENT[f] for f in ("name", "id_number", "sex", "birth_date")} \
        == {first.split("_")[0]}
    # PA has a record in every department: each field comes from its source department.
    sources = con.execute(
        "SELECT " + ", ".join(f"{f}_source" for f in metrics.PERSON_FIELDS)
        + " FROM shared.person WHERE person_id = 'PA'").fetchall()[0]
    for field, source in zip(metrics.PERSON_FIELDS, sources, strict=True):
        if metrics.SOURCE_DEPARTMENT[field] is not None:
            assert source.split("_")[0] == metrics.SOURCE_DEPARTMENT[field], field


def test_every_golden_value_names_its_feed_record_and_batch(con: duckdb.DuckDBPyConnection) -> None:
    unpivot = " UNION ALL ".join(
        f"SELECT person_id, '{f}' AS field, {f}_source AS source FROM shared.person "
        f"WHERE {f} IS NOT NULL" for f in metrics.PERSON_FIELDS)
    rows = con.execute(f"""SELECT g.field, g.source, x.person_id = g.person_id, x.feed, x.batch_id
        FROM ({unpivot}) g LEFT JOIN shared.person_xref x ON x.record_id = g.source""").fetchall()
    assert len(rows) == 19  # PA all 7 fields, PB 6 (no phone), PC 6 (no house code)
    for field, source, same_person, feed, batch in rows:
        assert same_person, (field, source)
        assert source.split(":")[0] == feed and batch == f"b-{feed}", (field, source)


def test_metrics_are_exact_on_inline_rows(con: duckdb.DuckDBPyConnection) -> None:
    got = figures(con)
    expected = {
        # ps needs the phone: PA's comes from health, PC's from its own housing record;
        # PB has none anywhere, so it is not counted. Health: PA 4 of 5 (its own phone),
        # PC 1 of 5 (only the phone comes from public security).
        ("sharing_rate", "ps"): (1, 2, 0.5),
        ("sharing_rate", "ca"): (5, 5, 1.0),
        ("sharing_rate", "hw"): (5, 10, 0.5),
        ("sharing_rate", "all"): (11, 17, 11 / 17),
        # 3 repeat keyings (PA 2, PC 1); PC's two records each alone hold a value.
        ("repeat_entry_reduction", "all"): (2, 3, 2 / 3),
        ("coverage", "ps"): (3, 3, 1.0),
        ("coverage", "ca"): (1, 3, 1 / 3),
        ("coverage", "hw"): (2, 3, 2 / 3),
        ("feed_records_linked", "ps_population"): (1, 2, 0.5),
        ("feed_records_linked", "all"): (5, 6, 5 / 6),
        ("feed_records_shared", "ps_housing"): (1, 1, 1.0),
        ("quality_pass_rate", "ps_population"): (13, 15, 13 / 15),
        ("quality_pass_rate", "hw_ehr_person"): (4, 4, 1.0),
        ("quality_pass_rate", "all"): (17, 19, 17 / 19),
        # newest extract 02:00 and publication 12:00, both UTC+8; health: received 06:00
        ("timeliness_hours", "ps_population"): (10, None, 10),
        ("timeliness_hours", "hw_ehr_person"): (6, None, 6),
        ("timeliness_hours", "all"): (10, None, 10),
        ("records_in", "all"): (6, None, 6),
        ("persons_out", "all"): (3, None, 3),
        ("repeat_keyings", "all"): (3, 6, 3),
    }
    for key, (num, den, value) in expected.items():
        assert got[key][:2] == (num, den), key
        assert got[key][2] == pytest.approx(value), key
    assert ("quality_pass_rate", "ca_recipients") not in got  # only rejected: nothing landed
    assert {scope for metric, scope in got if metric == "sharing_rate"} == {"all", "ps", "ca", "hw"}


def test_timeliness_reads_published_at_in_the_session_time_zone(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")  # published 12:00 UTC = 20:00 in the district
    assert figures(con)[("timeliness_hours", "ps_population")][2] == pytest.approx(18)


def test_metrics_whose_tables_are_missing_are_skipped(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE raw.batches")
    got = figures(con)
    assert not any(metric in ("quality_pass_rate", "timeliness_hours") for metric, _ in got)
    assert got[("sharing_rate", "all")][2] == pytest.approx(11 / 17)


def test_record_replaces_its_version_and_refuses_an_older_one(con: duckdb.DuckDBPyConnection) -> None:
    first = figures(con)
    count = "SELECT count(*) FROM audit.sharing_metrics WHERE version = 1"
    rows = con.execute(count).fetchall()
    assert figures(con) == first
    assert con.execute(count).fetchall() == rows == [(len(first),)]
    con.execute("INSERT INTO audit.publish_versions VALUES (2, ?, 'r2', 2, 3, 6)", [PUBLISHED_AT])
    with pytest.raises(ConfigError, match="published version 2"):
        metrics.record(con, 1)


def test_every_metric_is_defined_in_docs_with_its_target() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    for name in metrics.METRIC_QUERIES:
        assert f"`{name}`" in docs, f"{name} is not defined in docs/metrics.md"
    for name, target in metrics.TARGETS.items():
        assert name in metrics.METRIC_QUERIES
        assert f"{target:.0%}" in docs


# Repeat-entry reduction, per person: its records as (source key, feed, has an address,
# house_code, name, id_valid, sex, phone), a record without staged values or features when
# the name is "missing"; expected (repeats spared, repeats) = (before - after, before - 1).
Records = list[tuple[object, ...]]
_FULL = (True, "H1", "张伟", True, "M", "13800000001")
REPEAT_ENTRY_CASES: dict[str, tuple[Records, tuple[int, int]]] = {
    # One record: keyed once, nothing to spare.
    "single record": ([("ps_population:1", "ps_population", *_FULL)], (0, 0)),
    # The population record alone holds the phone, the address and the house code: it is one
    # keying however many fields it alone holds, so both other records are spared.
    "one record sole holder of several fields": ([
        ("ps_population:1", "ps_population", *_FULL),
        ("hw_ehr_person:1", "hw_ehr_person", False, None, "张伟", True, "M", None),
        ("ca_recipients:1", "ca_recipients", False, None, "张伟", True, "M", None),
    ], (2, 2)),
    # Each record alone holds one field (phone, address): both must still be keyed.
    "two records each alone hold a field": ([
        ("hw_ehr_person:1", "hw_ehr_person", False, None, "张伟", True, "M", "13800000001"),
        ("ca_recipients:1", "ca_recipients", True, None, "张伟", True, "M", None),
    ], (0, 1)),
    # Two records with the same fields: no sole holder, yet the person is keyed once.
    "no sole holder": ([
        ("hw_ehr_person:1", "hw_ehr_person", True, None, "张伟", True, "M", "13800000001"),
        ("ca_recipients:1", "ca_recipients", True, None, "张伟", True, "M", "13800000001"),
    ], (1, 1)),
    # Unusable values hold nothing: the invalid ID does not make the population record's
    # valid one a shared value, so each record alone holds a field (ID, phone).
    "invalid ID": ([
        ("ps_population:1", "ps_population", False, None, "张伟", True, "M", None),
        ("hw_ehr_person:1", "hw_ehr_person", False, None, "张伟", False, "M", "13800000001"),
    ], (0, 1)),
    # Nor does a house code outside the residence register (a housing owner's).
    "house code outside the register": ([
        ("ps_population:1", "ps_population", False, "H1", "张伟", True, "M", None),
        ("ps_housing:H1", "ps_housing", False, "H1", "张伟", True, "M", "13800000001"),
    ], (0, 1)),
    # A linked record without staged values is a keying that holds nothing.
    "record without values": ([
        ("ps_population:1", "ps_population", *_FULL),
        ("hw_ehr_person:1", "hw_ehr_person", False, None, "missing", False, None, None),
    ], (1, 1)),
}


def _repeat_entry(persons: dict[str, Records]) -> tuple[object, ...]:
    """The metric's row over the given persons' records (tables with only the columns it reads)."""
    con = duckdb.connect()
    for schema in ("staging", "linkage", "shared"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("CREATE TABLE shared.person_xref (person_id VARCHAR, feed VARCHAR, record_id VARCHAR)")
    con.execute("""CREATE TABLE staging.person_records (record_id VARCHAR, feed VARCHAR,
        address VARCHAR, house_code VARCHAR)""")
    con.execute("""CREATE TABLE linkage.person_features (unique_id VARCHAR, name_std VARCHAR,
        id_norm VARCHAR, id_valid BOOLEAN, sex VARCHAR, birth_date DATE, phone_std VARCHAR)""")
    for person, rows in persons.items():
        for source_key, feed, has_address, house_code, name, id_valid, sex, phone in rows:
            record_id = f"{source_key}{person}"  # unique across persons
            con.execute("INSERT INTO shared.person_xref VALUES (?, ?, ?)", [person, feed, record_id])
            if name == "missing":
                continue
            con.execute("INSERT INTO staging.person_records VALUES (?, ?, ?, ?)",
                        [record_id, feed, "幸福里3-2-501" if has_address else None, house_code])
            con.execute("INSERT INTO linkage.person_features VALUES (?, ?, '110105194803120011', ?, "
                        "?, DATE '1948-03-12', ?)", [record_id, name, id_valid, sex, phone])
    rows = con.execute(metrics.METRIC_QUERIES["repeat_entry_reduction"]).fetchall()
    assert len(rows) == 1 and rows[0][0] == "all"
    return rows[0][1:]


@pytest.mark.parametrize("case", REPEAT_ENTRY_CASES)
def test_repeat_entry_reduction_per_person(case: str) -> None:
    rows, (spared, repeats) = REPEAT_ENTRY_CASES[case]
    value = spared / repeats if repeats else None
    assert _repeat_entry({"P": rows}) == (spared, repeats, value)


def test_repeat_entry_reduction_pools_persons() -> None:
    # All cases side by side with the same values: holders are counted within each person
    # only, and the rate is the pooled sums (4 of 7 repeats spared), not a mean of rates.
    persons = {f"P{i}": rows for i, (rows, _) in enumerate(REPEAT_ENTRY_CASES.values())}
    assert _repeat_entry(persons) == (4, 7, 4 / 7)


def _random_tables(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Tables with the columns the metrics read, filled at random: persons with one to five
    records in any feeds (the same feed twice too), any field missing, invalid IDs, house
    codes outside the register, records lacking their staged values or their features,
    and a few records without a person."""
    rng = random.Random(seed)
    for schema in ("staging", "linkage", "shared"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("CREATE TABLE shared.person_xref (person_id VARCHAR, feed VARCHAR, record_id VARCHAR)")
    con.execute("""CREATE TABLE staging.person_records (record_id VARCHAR, feed VARCHAR,
        address VARCHAR, house_code VARCHAR)""")
    con.execute("""CREATE TABLE linkage.person_features (unique_id VARCHAR, name_std VARCHAR,
        id_norm VARCHAR, id_valid BOOLEAN, sex VARCHAR, birth_date DATE, phone_std VARCHAR)""")
    feeds = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")
    xref, staged, features = [], [], []
    for n in range(400):
        # records without a person: one alone (even seeds) or several together (odd seeds)
        person = None if n == 0 or (seed % 2 and n % 97 == 0) else f"P{n}"
        for k in range(1 if n == 0 else rng.choice((1, 1, 2, 2, 3, 4, 5))):
            feed = rng.choice(feeds)
            record_id = f"{feed}:{n}-{k}"
            xref.append((person, feed, record_id))

            def maybe(value: object) -> object:
                return value if rng.random() < 0.6 else None

            if rng.random() < 0.95:
                staged.append((record_id, feed, maybe("光明路8号"), maybe("H1")))
            if rng.random() < 0.95:
                features.append((record_id, maybe("李娜"), maybe("110105199001010022"),
                                 rng.choice((True, False, None)), maybe("F"), maybe("1990-01-01"),
                                 maybe("13800000001")))
    for table, rows in (("shared.person_xref", xref), ("staging.person_records", staged),
                        ("linkage.person_features", features)):
        columns = [c for c, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
        con.register("_rows", pd.DataFrame(rows, columns=columns))
        con.execute(f"INSERT INTO {table} SELECT * FROM _rows")
        con.unregister("_rows")


@pytest.mark.parametrize("seed", range(5))
def test_rewritten_metrics_equal_their_plain_formulations(seed: int) -> None:
    con = duckdb.connect()
    _random_tables(con, seed)
    assert_same_as_reference(con)
    # and the random tables reach every case the rewrites distinguish
    rows = dict((s, (n, d)) for s, n, d, _ in con.execute(metrics.METRIC_QUERIES["feed_records_linked"]).fetchall())
    assert all(0 < n < d for n, d in rows.values())
    spared, repeats, _ = con.execute(metrics.METRIC_QUERIES["repeat_entry_reduction"]).fetchall()[0][1:]
    assert 0 < spared < repeats


def test_rewritten_metrics_equal_their_plain_formulations_on_inline_rows(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert_same_as_reference(con)
