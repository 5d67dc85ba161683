"""Write-audit-publish on inline rows: the restricted tables, and failing expectations roll back."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from sharehub.errors import PublishAborted
from sharehub.publish import expectations, publish
from sharehub.publish.contract import shared_contract

SHARED = ("person", "person_xref", "person_id_changes", "benefits", "health_tags", "house", "residence")


def district(persons: int) -> duckdb.DuckDBPyConnection:
    """``persons`` residents with a population record each; the first also has a civil-affairs
    and two health records (one deleted)."""
    con = duckdb.connect()
    for schema in ("staging", "linkage", "shared", "audit"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"""CREATE TABLE staging.person_records AS
        SELECT 'ps_population:' || i AS record_id, 'ps_population' AS feed, i::VARCHAR AS source_key,
               'b1' AS batch_id, 'active' AS record_status, TIMESTAMP '2026-11-01' AS updated_at,
               '光明路' || i || '号' AS address, 'H' || i AS house_code
        FROM range({persons}) t(i)""")
    con.execute("""INSERT INTO staging.person_records VALUES
        ('ca_recipients:M1', 'ca_recipients', 'M1', 'b1', 'active', '2026-11-01', NULL, NULL),
        ('hw_ehr_person:E1', 'hw_ehr_person', 'E1', 'b1', 'active', '2026-11-01', NULL, NULL),
        ('hw_ehr_person:E2', 'hw_ehr_person', 'E2', 'b1', 'deleted', '2026-11-02', NULL, NULL)""")
    con.execute("""CREATE TABLE linkage.person_features AS
        SELECT record_id AS unique_id, '张伟' || source_key AS name_std, NULL::VARCHAR AS id_norm,
               false AS id_valid, 'M' AS sex, DATE '1948-03-12' AS birth_date, NULL::VARCHAR AS phone_std,
               NULL::VARCHAR AS phone_kind, false AS is_placeholder_name
        FROM staging.person_records""")
    con.execute("""CREATE TABLE linkage.person_ids AS
        SELECT record_id, CASE WHEN feed = 'ps_population' THEN 'P' || source_key ELSE 'P0' END AS person_id
        FROM staging.person_records""")
    con.execute("""CREATE TABLE linkage.cluster_edges (unique_id_l VARCHAR, unique_id_r VARCHAR,
        match_weight DOUBLE, match_probability DOUBLE)""")
    con.execute("""CREATE TABLE linkage.person_id_changes (old_person_id VARCHAR, new_person_id VARCHAR,
        kind VARCHAR, run_id VARCHAR, changed_at TIMESTAMP, records BIGINT, batch_ids VARCHAR)""")
    con.execute("""CREATE TABLE linkage.record_end_dates (record_id VARCHAR, record_status VARCHAR,
        ended_at TIMESTAMP, ended_batch_id VARCHAR)""")
    con.execute("""CREATE TABLE staging.ca_recipients AS SELECT * FROM (VALUES
        ('M1', '低保', 697.50::DECIMAL(12,2), '在保', DATE '2017-04-05', 'active', true, 'b1'),
        ('M1', '低保', 600.00::DECIMAL(12,2), '在保', DATE '2017-04-05', 'active', false, 'b0'))
        t(recipient_no, benefit_type, monthly_amount, status, registered_on, record_status, is_current, batch_id)""")
    con.execute("""CREATE TABLE staging.hw_ehr_person AS SELECT * FROM (VALUES
        ('E1', '65岁以上老年人;高血压', TIMESTAMP '2026-11-01', 'active', true),
        ('E2', '严重精神障碍', TIMESTAMP '2026-11-02', 'deleted', true))
        t(record_id, key_population, updated_at, record_status, is_current)""")
    return con


def edited(con: duckdb.DuckDBPyConnection, *records: str) -> None:
    """Note ``records`` as changed for publication, as the stage writing them would
    (`linkage.unpublished`): these tests edit the tables publication reads directly."""
    from linkage.unpublished import note_unpublished

    if records:
        note_unpublished(con, "SELECT * FROM (VALUES " + ", ".join(f"('{r}')" for r in records) + ")")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    tables = [f"shared.{t}" for t in SHARED] + ["audit.publish_versions"]
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def test_benefits_and_health_tags_are_keyed_by_person() -> None:
    con = district(3)
    publish(con, run_id="r1", now=datetime(2026, 11, 27))
    assert con.execute("SELECT record_id, person_id, benefit_type, monthly_amount FROM shared.benefits").fetchall() \
        == [("ca_recipients:M1", "P0", "低保", pytest.approx(697.5))]
    assert con.execute("SELECT person_id, tag, source_records FROM shared.health_tags ORDER BY tag").fetchall() == [
        ("P0", "65岁以上老年人", ["hw_ehr_person:E1"]), ("P0", "高血压", ["hw_ehr_person:E1"])]
    # the deleted record's tag is not published; the dwellings are empty until the house index exists
    assert con.execute("SELECT count(*) FROM shared.house").fetchall() == [(0,)]


def test_failing_expectation_rolls_back_and_names_examples() -> None:
    con = district(3)
    publish(con, run_id="r1")
    before = snapshot(con)
    con.execute("UPDATE staging.hw_ehr_person SET key_population = '高血压;吸烟' WHERE record_id = 'E1'")
    con.execute("UPDATE linkage.person_ids SET person_id = 'P9' WHERE record_id = 'ps_population:2'")
    with pytest.raises(PublishAborted) as info:
        publish(con, run_id="r2")
    failures = {(f.table, f.expectation): f for f in info.value.details["failures"]}
    tag = failures[("health_tags", "expect_column_values_to_be_in_set")]
    assert tag.column == "tag" and tag.examples[0]["tag"] == "吸烟"
    assert snapshot(con) == before
    assert con.execute("SELECT count(*) FROM information_schema.tables "
                       "WHERE table_name LIKE '%__candidate'").fetchall() == [(0,)]
    con.execute("UPDATE staging.hw_ehr_person SET key_population = '高血压' WHERE record_id = 'E1'")
    assert publish(con, run_id="r3").version == 2  # fixed at source: the next version goes out


def test_row_count_jump_beyond_the_contract_bound_is_refused() -> None:
    con = district(400)
    publish(con, run_id="r1")
    gone = "regexp_matches(record_id, '^ps_population:[12]')"  # 222 of 400 persons
    edited(con, *(r[0] for r in con.execute(f"SELECT record_id FROM linkage.person_ids WHERE {gone}").fetchall()))
    con.execute(f"DELETE FROM linkage.person_ids WHERE {gone}")
    con.execute(f"DELETE FROM staging.person_records WHERE {gone}")
    with pytest.raises(PublishAborted, match="row count lies in") as info:
        publish(con, run_id="r2")
    failure = next(f for f in info.value.details["failures"] if f.table == "person")
    assert failure.expectation == "expect_table_row_count_to_be_between" and failure.examples == (178,)
    assert con.execute("SELECT count(*) FROM shared.person").fetchall() == [(400,)]


def test_missing_required_source_is_refused_missing_optional_source_is_empty() -> None:
    con = district(2)
    con.execute("DROP TABLE staging.hw_ehr_person")
    assert publish(con, run_id="r1").created
    assert con.execute("SELECT count(*) FROM shared.health_tags").fetchall() == [(0,)]
    con.execute("DROP TABLE linkage.person_id_changes")
    with pytest.raises(PublishAborted, match=r"linkage\.person_id_changes"):
        publish(con, run_id="r2")


def test_candidate_sources_are_read_from_the_sql() -> None:
    from sharehub.publish.golden import golden_person_sql
    from sharehub.publish.tables import _CANDIDATES, sources

    assert sources(golden_person_sql()) == {
        "linkage.person_ids", "staging.person_records", "linkage.person_features"}
    assert sources(_CANDIDATES["health_tags"]) == {"staging.hw_ehr_person", "linkage.person_ids"}


def _candidates(con: duckdb.DuckDBPyConnection) -> None:
    """``cand.person`` and ``cand.person_xref``: copies of the published version to edit."""
    con.execute("CREATE SCHEMA cand")
    for name in ("person", "person_xref"):
        con.execute(f"CREATE TABLE cand.{name} AS SELECT * FROM shared.{name}")


def _validate_changed(con: duckdb.DuckDBPyConnection, name: str) -> list[expectations.ExpectationFailure]:
    return expectations.validate(con, [name], lambda n: f"cand.{n}", {name: 20},
                                 baseline=lambda n: f"shared.{n}")  # fmt: skip


def test_only_changed_and_at_risk_rows_are_validated_against_a_baseline() -> None:
    con = district(20)
    publish(con, run_id="r1")
    _candidates(con)
    con.execute("UPDATE cand.person SET phone = '13800000000' WHERE person_id = 'P3'")
    sql = expectations.batch_sql(shared_contract("person"), lambda n: f"cand.{n}", "shared.person")
    assert [r[0] for r in con.execute(f"SELECT person_id FROM ({sql})").fetchall()] == ["P3"]
    assert _validate_changed(con, "person") == []


def test_a_new_row_duplicating_an_unchanged_key_is_caught() -> None:
    con = district(20)
    publish(con, run_id="r1")
    _candidates(con)
    con.execute("INSERT INTO cand.person_xref SELECT 'P1', feed, source_key, record_id, "
                "match_probability, record_status, batch_id, valid_to "
                "FROM cand.person_xref WHERE record_id = 'ps_population:5'")  # fmt: skip
    failures = _validate_changed(con, "person_xref")
    assert [(f.expectation, f.column) for f in failures] == [
        ("expect_column_values_to_be_unique", "record_id")]
    assert failures[0].unexpected_count == 2  # the new row and the unchanged one


def test_an_unchanged_row_whose_target_went_away_is_caught() -> None:
    con = district(20)
    publish(con, run_id="r1")
    _candidates(con)
    con.execute("DELETE FROM cand.person WHERE person_id = 'P7'")
    failures = _validate_changed(con, "person_xref")
    assert [(f.expectation, f.examples) for f in failures] == [
        ("expect_column_values_to_be_null", ({"record_id": "ps_population:7", "not in person.person_id": "P7"},))]


def test_published_tables_changed_behind_the_hubs_back_are_validated_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    con = district(20)
    publish(con, run_id="r1")
    # A bad value arrives, and the published table was edited outside publish() to hold
    # the same row: checking only what differs from it would let the row through.
    con.execute("UPDATE linkage.person_features SET sex = 'X' WHERE unique_id = 'ps_population:2'")
    con.execute("UPDATE shared.person SET sex = 'X' WHERE person_id = 'P2'")
    with pytest.raises(PublishAborted, match="sex is one of"):
        publish(con, run_id="r2")
    assert "validating in full" in caplog.text


def test_a_second_copy_of_an_unchanged_row_is_caught() -> None:
    con = district(20)
    publish(con, run_id="r1")
    _candidates(con)
    con.execute("INSERT INTO cand.person_xref SELECT * FROM cand.person_xref WHERE record_id = 'ps_population:4'")
    failures = _validate_changed(con, "person_xref")
    assert [(f.expectation, f.unexpected_count) for f in failures] == [
        ("expect_column_values_to_be_unique", 2)]
