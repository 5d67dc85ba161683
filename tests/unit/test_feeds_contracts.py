"""Contract ↔ model drift: the contracts, the pandera schemas and the tables must agree."""

from __future__ import annotations

import json
from importlib.resources import files

import duckdb
import jsonschema
import pandera.pandas as pa
import pytest
import yaml

import contracts
from schemas.contract import FEEDS, feed_contract, reduce_contract
from schemas.feeds import CHECKS, REASONS, feed_schema
from schemas.staging import PersonRecords
from sharehub.feeds.person_records import COLUMNS as PERSON_RECORD_COLUMNS
from sharehub.feeds.person_records import build_person_records
from sharehub.feeds.staging import META_COLUMNS, ensure_feed_tables

ODCS_SCHEMA = json.loads((files("open_data_contract_standard") / "schema.json").read_text(encoding="utf-8"))


def test_every_feed_has_a_contract_shipped_as_package_data() -> None:
    assert set(FEEDS) <= set(contracts.available())


@pytest.mark.parametrize("feed", FEEDS)
def test_contract_is_valid_odcs(feed: str) -> None:
    document = yaml.safe_load(contracts.text(feed))
    errors = [e.message for e in jsonschema.Draft202012Validator(ODCS_SCHEMA).iter_errors(document)]
    assert errors == []
    assert contracts.load(feed).name == feed


@pytest.mark.parametrize("feed", FEEDS)
def test_contract_states_owner_sla_classification_and_names(feed: str) -> None:
    contract = feed_contract(feed)
    assert contract.owner
    assert contract.latency is not None and contract.latency.total_seconds() > 0
    for column in contract.columns:
        assert column.classification in {"internal", "personal", "sensitive", "sensitive-health"}
        assert column.name.isidentifier() and column.name == column.name.lower()
    assert len({c.physical for c in contract.columns}) == len(contract.columns)
    assert contract.key.required and contract.key.unique


def test_health_tags_are_classified_sensitive_health() -> None:
    assert feed_contract("hw_ehr_person").column("key_population").classification == "sensitive-health"


@pytest.mark.parametrize("feed", FEEDS)
def test_pandera_schema_matches_contract(feed: str) -> None:
    contract = feed_contract(feed)
    schema = feed_schema(feed)
    assert list(schema.columns) == [c.name for c in contract.columns]
    for spec in contract.columns:
        column: pa.Column = schema.columns[spec.name]
        names = {check.name for check in column.checks}
        assert column.nullable is (not spec.required), spec.name
        assert column.unique is spec.unique, spec.name
        assert column.title == spec.physical
        assert ("valid_values" in names) is bool(spec.valid_values), spec.name
        assert ("max_length" in names) is (spec.max_length is not None), spec.name
        assert ("format" in names) is (spec.logical_type != "string"), spec.name
        if spec.logical_type == "string":
            assert set(contract.table_checks) <= names


def test_every_named_check_is_implemented_and_used() -> None:
    used = {name for feed in FEEDS for name in feed_contract(feed).table_checks}
    assert used == set(CHECKS)
    assert set(CHECKS) <= set(REASONS)


def test_headers_agree_with_the_generator() -> None:
    layouts = pytest.importorskip("sharehub.generate.layouts")
    assert [c.physical for c in feed_contract("ps_population").columns] == list(layouts.POPULATION_HEADER)
    assert [c.physical for c in feed_contract("ps_housing").columns] == list(layouts.HOUSING_HEADER)
    assert [c.physical for c in feed_contract("ca_recipients").columns] == list(layouts.RECIPIENTS_HEADER)
    assert [c.physical for c in feed_contract("hw_ehr_person").columns] == list(layouts.HEALTH_COLUMNS)
    assert feed_contract("ca_recipients").sheet == layouts.SHEET


@pytest.mark.parametrize("feed", FEEDS)
def test_raw_and_staging_tables_follow_the_contract(feed: str) -> None:
    con = duckdb.connect()
    for schema in ("raw", "staging"):
        con.execute(f"CREATE SCHEMA {schema}")
    contract = feed_contract(feed)
    ensure_feed_tables(con, contract)

    def columns(table: str) -> dict[str, str]:
        return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())

    assert columns(f"raw.{feed}") == {"batch_id": "VARCHAR", "row_number": "BIGINT",
                                      **{c.name: "VARCHAR" for c in contract.columns}}
    assert columns(f"staging.{feed}") == {**{c.name: c.duckdb_type for c in contract.columns}, **META_COLUMNS}


def test_person_records_match_the_documented_interface() -> None:
    con = duckdb.connect()
    for schema in ("raw", "staging", "quarantine"):
        con.execute(f"CREATE SCHEMA {schema}")
    assert build_person_records(con) == 0
    described = con.execute("SELECT column_name, column_type FROM (DESCRIBE staging.person_records)").fetchall()
    assert [name for name, _ in described] == list(PERSON_RECORD_COLUMNS)
    assert list(PersonRecords.to_schema().columns) == list(PERSON_RECORD_COLUMNS)
    assert {kind for name, kind in described if name != "updated_at"} == {"VARCHAR"}
    assert dict(described)["updated_at"] == "TIMESTAMP"


@pytest.mark.parametrize("feed", FEEDS)
def test_extra_column_policy_is_a_contract_decision(feed: str) -> None:
    """Every feed contract says what extra columns do (see docs/ingest.md): all ignore them."""
    document = yaml.safe_load(contracts.text(feed))
    declared = {p["property"]: p["value"] for p in document["schema"][0]["customProperties"]}
    assert declared["extraColumns"] == feed_contract(feed).extra_columns == "ignore"


def test_an_unknown_extra_column_policy_fails_when_the_contract_is_read() -> None:
    odcs = contracts.load("ps_population").model_copy(deep=True)
    [policy] = [p for p in odcs.schema_[0].customProperties or [] if p.property == "extraColumns"]
    policy.value = "keep"
    with pytest.raises(ValueError, match="extraColumns is 'keep'"):
        reduce_contract(odcs)


@pytest.mark.parametrize("feed", ["ps_population", "ps_housing", "ca_recipients"])
def test_file_feeds_require_at_least_one_row(feed: str) -> None:
    assert feed_contract(feed).min_rows == 1
