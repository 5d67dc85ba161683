"""Shared-table contracts: valid ODCS, complete, and granting only the minimum necessary."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest
import yaml

import contracts
from sharehub.publish import subscribers as sub
from sharehub.publish import tables
from sharehub.publish.contract import (
    DEPARTMENTS,
    RowCountBound,
    reduce_contract,
    shared_contract,
    shared_names,
)

ODCS_SCHEMA = json.loads((files("open_data_contract_standard") / "schema.json").read_text(encoding="utf-8"))
SHARED = shared_names()
REQUIRED = {"person", "person_xref", "house", "residence", "person_id_changes", "benefits", "health_tags"}


def view_columns(table: str, department: str) -> tuple[str, ...] | None:
    grant = shared_contract(table).grant(department)
    return grant.columns if grant else None


def test_every_required_shared_table_and_every_candidate_has_a_contract() -> None:
    assert set(SHARED) >= REQUIRED
    assert set(tables._CANDIDATES) <= set(SHARED)


@pytest.mark.parametrize("name", SHARED)
def test_contract_is_valid_odcs_and_reduces(name: str) -> None:
    document = yaml.safe_load(contracts.text(f"shared_{name}"))
    errors = [e.message for e in jsonschema.Draft202012Validator(ODCS_SCHEMA).iter_errors(document)]
    assert errors == []
    contract = shared_contract(name)
    assert contract.name == name and contract.columns and contract.key
    assert all(g.reason for g in contract.grants)


@pytest.mark.parametrize("name", SHARED)
def test_links_point_at_existing_shared_columns(name: str) -> None:
    for link in shared_contract(name).links:
        for ref in (link.source, link.target):
            if ref.shared:
                assert set(ref.columns) <= set(shared_contract(ref.table).names), str(ref)


@pytest.mark.parametrize("name", SHARED)
def test_postgres_copy_holds_only_granted_columns(name: str) -> None:
    contract = shared_contract(name)
    granted = {c for g in contract.grants for c in g.columns}
    assert {c.source for c in sub.stored_columns(contract)} == granted


def test_record_level_provenance_stays_in_the_hub() -> None:
    person = {c.source for c in sub.stored_columns(shared_contract("person"))}
    assert not {c for c in person if c.endswith("_source")} and "feeds" not in person
    residence = {c.source for c in sub.stored_columns(shared_contract("residence"))}
    assert not {"record_id", "feed"} & residence  # would reveal a benefit or health record


def test_raw_resident_ids_go_to_public_security_only() -> None:
    raw = {(n, g.department, c) for n in SHARED for g in shared_contract(n).grants for c in g.raw_columns}
    assert raw == {("person", "ps", "id_number")}
    person = shared_contract("person")
    assert person.token_columns == ("id_number",)
    assert [c.name for c in sub.stored_columns(person) if c.source == "id_number"] == [
        "id_number", "id_number__token"]


def test_who_sees_what() -> None:
    assert view_columns("health_tags", "ps") is None  # public security sees no health data
    assert view_columns("benefits", "ps") is None  # nor benefits
    assert view_columns("benefits", "hw") == ("person_id", "benefit_type", "status")  # no amount
    assert "monthly_amount" in (view_columns("benefits", "ca") or ())
    assert shared_contract("health_tags").grant("ca").rows.values == ("残疾人",)  # type: ignore[union-attr]
    for table in SHARED:  # auditors: metrics only
        assert (view_columns(table, "audit") is not None) == (table == "sharing_metrics")
    for department in ("ps", "ca", "hw"):  # xref rows of a department's own feeds only
        rows = shared_contract("person_xref").grant(department).rows  # type: ignore[union-attr]
        assert rows is not None and rows.column == "feed"
        assert all(feed.startswith(department) for feed in rows.values)


def test_every_department_has_something_to_read() -> None:
    for department in DEPARTMENTS:
        assert any(shared_contract(n).grant(department) for n in SHARED), department


def test_view_exposes_tokens_under_the_column_name_and_filters_rows() -> None:
    person = shared_contract("person")
    ca = sub.view_query(person, person.grant("ca"), "shared_v3").as_string(None)  # type: ignore[arg-type]
    ps = sub.view_query(person, person.grant("ps"), "shared_v3").as_string(None)  # type: ignore[arg-type]
    assert '"id_number__token" AS "id_number"' in ca and '"shared_v3"."person"' in ca
    assert '"id_number__token"' not in ps and '"id_number"' in ps
    tags = shared_contract("health_tags")
    assert sub.view_query(tags, tags.grant("ca"), "s").as_string(None).endswith(  # type: ignore[arg-type]
        """WHERE "tag" IN ('残疾人')""")


@pytest.mark.parametrize(("duckdb_type", "expected"), [
    ("VARCHAR", "text"), ("DECIMAL(12,2)", "numeric(12,2)"), ("VARCHAR[]", "text[]"),
    ("TIMESTAMP", "timestamp"), ("BIGINT", "bigint"), ("BOOLEAN", "boolean"),
])
def test_postgres_types(duckdb_type: str, expected: str) -> None:
    assert sub.pg_type(duckdb_type) == expected


def test_row_count_bound() -> None:
    bound = RowCountBound(-20, 20, 50)
    assert bound.bounds(1000) == (750, 1250)
    assert bound.bounds(10) == (0, 62)


def _contract(**changes: object) -> dict[str, object]:
    document = yaml.safe_load(contracts.text("shared_benefits"))
    document.update(changes)
    return document


@pytest.mark.parametrize(("role", "message"), [
    ({"role": "sharehub_ps", "description": "x", "customProperties": [
        {"property": "department", "value": "ps"}, {"property": "columns", "value": ["nope"]}]}, "unknown"),
    ({"role": "sharehub_ps", "description": "x", "customProperties": [
        {"property": "department", "value": "ps"}, {"property": "columns", "value": ["person_id"]},
        {"property": "rawColumns", "value": ["person_id"]}]}, "rawColumns"),
    ({"role": "someone", "description": "x", "customProperties": [
        {"property": "department", "value": "ps"}, {"property": "columns", "value": ["person_id"]}]}, "department"),
    ({"role": "sharehub_ps", "customProperties": [
        {"property": "department", "value": "ps"}, {"property": "columns", "value": ["person_id"]}]}, "why"),
])
def test_a_bad_grant_is_refused_when_the_contract_is_read(role: dict[str, object], message: str) -> None:
    from open_data_contract_standard.model import OpenDataContractStandard

    with pytest.raises(ValueError, match=message):
        reduce_contract(OpenDataContractStandard.model_validate(_contract(roles=[role])))
