"""Great Expectations suites derived from the shared-table contracts, on inline rows."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from sharehub.errors import PublishAborted
from sharehub.publish import expectations as ex
from sharehub.publish.contract import shared_contract


def kinds(suite: Any) -> list[tuple[str, Any]]:
    """(expectation type, its column / column list / bounds) for every expectation."""
    found = []
    for e in suite.expectations:
        config = e.configuration
        kwargs = config.kwargs
        detail = kwargs.get("column") or kwargs.get("column_list") or (
            kwargs.get("min_value"), kwargs.get("max_value"))
        found.append((config.type, detail))
    return found


def test_suite_follows_the_person_xref_contract() -> None:
    suite = ex.build_suite(shared_contract("person_xref"), previous_rows=1000)
    got = kinds(suite)
    assert ("expect_column_values_to_be_unique", "record_id") in got
    assert ("expect_column_values_to_not_be_null", "record_id") in got
    assert ("expect_column_values_to_not_be_null", "person_id") in got
    assert ("expect_column_values_to_be_between", "match_probability") in got
    assert ("expect_column_values_to_be_null", "_orphan_0") in got  # person_id ⊂ person.person_id
    assert ("expect_table_row_count_to_be_between", (700, 1300)) in got  # ±20% ±100 rows
    columns = next(d for t, d in got if t == "expect_table_columns_to_match_ordered_list")
    assert columns == ["person_id", "feed", "source_key", "record_id", "match_probability",
                       "record_status", "batch_id", "valid_to", "_orphan_0"]
    in_set = next(e for e in suite.expectations if e.configuration.kwargs.get("column") == "feed"
                  and e.configuration.type == "expect_column_values_to_be_in_set")
    assert set(in_set.configuration.kwargs["value_set"]) == {
        "ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"}


def test_row_count_bound_needs_a_previous_version() -> None:
    for previous in (None, 0):
        got = kinds(ex.build_suite(shared_contract("person"), previous_rows=previous))
        assert all(t != "expect_table_row_count_to_be_between" for t, _ in got)


def test_compound_keys_and_composite_links() -> None:
    contract = shared_contract("residence")
    got = kinds(ex.build_suite(contract))
    assert ("expect_compound_columns_to_be_unique", ["record_id", "role"]) in got
    assert [str(link.target) for link in ex.own_links(contract)] == [
        "person.person_id", "house.house_id", "person_xref(record_id, person_id)"]
    assert [str(link.source) for link in ex.coverage_links(shared_contract("person_xref"))] == [
        "staging.person_records.record_id"]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """Candidates of person, person_xref and benefits, with one fault of each kind."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.person_records AS SELECT * FROM (VALUES "
                "('ps_population:1'), ('ca_recipients:M1'), ('ca_recipients:M2'), ('hw_ehr_person:E9')) t(record_id)")
    con.execute("""CREATE TABLE person_xref AS SELECT * FROM (VALUES
        ('PA', 'ps_population', '1', 'ps_population:1', 0.99, 'active', 'b1', NULL::TIMESTAMP),
        ('PA', 'ca_recipients', 'M1', 'ca_recipients:M1', 0.99, 'active', 'b1', NULL),
        ('PB', 'ca_recipients', 'M2', 'ca_recipients:M2', 1.5, 'active', 'b1', NULL))
        t(person_id, feed, source_key, record_id, match_probability, record_status, batch_id, valid_to)""")
    con.execute("ALTER TABLE person_xref ALTER match_probability TYPE DOUBLE")
    con.execute("CREATE TABLE person AS SELECT * FROM (VALUES ('PA'), ('PB')) t(person_id)")
    con.execute("""CREATE TABLE benefits AS SELECT record_id, person_id, benefit_type,
        monthly_amount::DECIMAL(12,2) AS monthly_amount, status, registered_on::DATE AS registered_on,
        record_status, batch_id FROM (VALUES
        ('ca_recipients:M1', 'PA', '低保', 700.0, '在保', '2020-01-01', 'active', 'b1'),
        ('ca_recipients:M2', 'PZ', '低保么', 100.0, '在保', '2020-01-01', 'active', 'b1'),
        ('ca_recipients:M2', NULL, '高龄津贴', -5.0, '停保', NULL, 'inactive', 'b1'))
        t(record_id, person_id, benefit_type, monthly_amount, status, registered_on, record_status, batch_id)""")
    return con


def test_failures_name_table_expectation_column_and_examples(con: duckdb.DuckDBPyConnection) -> None:
    failures = ex.validate(con, ["person_xref", "benefits"], lambda name: name)
    found = {(f.table, f.description): f for f in failures}
    unique = found[("benefits", "record_id is unique")]
    assert unique.expectation == "expect_column_values_to_be_unique" and unique.column == "record_id"
    assert unique.examples == ({"record_id": "ca_recipients:M2"},)
    assert found[("benefits", "person_id is not null")].unexpected_count == 1
    accepted = next(f for (t, d), f in found.items() if d.startswith("benefit_type is one of"))
    assert accepted.examples == ({"benefit_type": "低保么", "record_id": "ca_recipients:M2"},)
    assert found[("benefits", "monthly_amount lies in [0, None]")].unexpected_count == 1
    orphan = next(f for f in failures if f.expectation == "expect_column_values_to_be_null"
                  and f.table == "benefits" and f.column == "person_id")
    assert orphan.examples[0]["not in person.person_id"] == "PZ"  # benefits.person_id ⊂ person.person_id
    assert found[("person_xref", "match_probability lies in [0, 1]")].unexpected_count == 1
    coverage = found[("person_xref", "Every staged person record is cross-referenced.")]
    assert coverage.examples == ("hw_ehr_person:E9",)


def test_check_raises_publish_aborted_with_every_failure(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(PublishAborted) as info:
        ex.check(con, ["benefits"], lambda name: name)
    failures = info.value.details["failures"]
    assert {f.table for f in failures} == {"benefits"} and len(failures) >= 5
    assert "shared.benefits: record_id is unique failed (2 rows)" in str(info.value)
    assert "previous version stays published" in str(info.value)


def test_a_clean_table_passes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM benefits WHERE person_id IS DISTINCT FROM 'PA'")
    con.execute("DELETE FROM staging.person_records WHERE record_id = 'hw_ehr_person:E9'")
    con.execute("UPDATE person_xref SET match_probability = 1 WHERE match_probability > 1")
    assert ex.validate(con, ["person_xref", "benefits"], lambda name: name) == []


def test_type_drift_is_a_failure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TABLE person AS SELECT 1 AS person_id")
    [failure] = ex.type_failures(con, shared_contract("person"), lambda name: name)
    assert failure.examples == ({"column": "person_id", "expected": "VARCHAR", "found": "INTEGER"},)
