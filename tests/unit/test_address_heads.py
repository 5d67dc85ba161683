"""Address heads parsed by jionlp are stored and reused by later runs, under the same rules."""

from __future__ import annotations

import duckdb
import pytest

from linkage import address_heads
from linkage.standardize import addresses, standardize_address

HEAD = "北京市朝阳区幸福里小区"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA linkage")
    return con


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: nothing known, nothing parsed."""
    monkeypatch.setattr(addresses, "_known_heads", {})
    monkeypatch.setattr(addresses, "_new_heads", {})


def test_a_stored_head_is_not_parsed_again(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    first = standardize_address(HEAD + "3号楼2单元501室")
    assert address_heads.store(con) >= 1
    assert con.execute(f"SELECT province, county, rest FROM {address_heads.TABLE} WHERE head = ?",
                       [HEAD]).fetchall() == [("北京市", "朝阳区", "幸福里小区")]  # fmt: skip

    # a later run: a new room of the same estate needs no jionlp call
    monkeypatch.setattr(addresses, "_known_heads", {})
    monkeypatch.setattr(addresses, "_parse_admin", _no_parsing)
    assert address_heads.load(con) >= 1
    again = standardize_address(HEAD + "3号楼2单元502室")
    assert (again.province, again.county, again.estate) == (first.province, first.county, first.estate)
    assert address_heads.store(con) == 0  # nothing new to store


def test_parses_under_other_rules_are_dropped(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    standardize_address(HEAD + "1号楼")
    address_heads.store(con)
    monkeypatch.setattr(addresses, "HEAD_RULES", addresses.HEAD_RULES + 1)
    monkeypatch.setattr(addresses, "_known_heads", {})
    assert address_heads.load(con) == 0  # a jionlp upgrade or a rules bump: parse afresh
    address_heads.store(con)
    assert con.execute(f"SELECT count(*) FROM {address_heads.TABLE}").fetchall() == [(0,)]


def test_loading_without_a_table_knows_nothing(con: duckdb.DuckDBPyConnection) -> None:
    assert address_heads.load(con) == 0


def _no_parsing(head: str) -> addresses.Admin:
    raise AssertionError(f"{head!r} was parsed although a stored parse exists")
