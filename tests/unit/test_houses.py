"""The master house index and residence links, on hand-built rows in an in-memory DuckDB.

The staging tables are written out here with the column names of ``staging.ps_housing``
(contracts/ps_housing.yaml) and ``staging.person_records`` (docs/architecture.md) rather
than built by the feed code, so the tests state exactly the rows they need.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from linkage.houses import HOUSE_CANDIDATES, HOUSE_CHECKS, build_house_index, house_id
from linkage.residence import build_residence
from linkage.standardize import standardize_records
from sharehub.errors import ContractViolation

Con = duckdb.DuckDBPyConnection

PERSON_RECORDS_DDL = """
CREATE OR REPLACE TABLE staging.person_records (
    record_id VARCHAR, feed VARCHAR, source_key VARCHAR, batch_id VARCHAR, name VARCHAR,
    id_number VARCHAR, id_type VARCHAR, sex_raw VARCHAR, birth_raw VARCHAR, phone VARCHAR,
    address VARCHAR, hukou_address VARCHAR, house_code VARCHAR, record_status VARCHAR,
    updated_at TIMESTAMP
)"""
PS_HOUSING_DDL = """
CREATE OR REPLACE TABLE staging.ps_housing (
    house_code VARCHAR, address VARCHAR, usage VARCHAR, occupancy VARCHAR,
    owner_name VARCHAR, owner_id_number VARCHAR, record_status VARCHAR, is_current BOOLEAN
)"""

FLAT = "幸福里小区3号楼2单元501室"


@pytest.fixture
def con() -> Con:
    con = duckdb.connect()
    for schema in ("staging", "linkage", "shared"):
        con.execute(f"CREATE SCHEMA {schema}")
    return con


def house(
    code: str,
    address: str | None,
    *,
    owner: str | None = "王芳",
    status: str = "active",
    usage: str = "住宅",
    occupancy: str = "自住",
) -> dict[str, Any]:
    return {
        "house_code": code,
        "address": address,
        "usage": usage,
        "occupancy": occupancy,
        "owner_name": owner,
        "record_status": status,
    }


def person(
    record_id: str,
    address: str | None = None,
    *,
    house_code: str | None = None,
    status: str = "active",
) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "address": address,
        "house_code": house_code,
        "record_status": status,
    }


def load(
    con: Con,
    houses: list[dict[str, Any]],
    persons: list[dict[str, Any]],
    person_ids: dict[str, str] | None = None,
) -> None:
    """Write the staging tables, standardise features and give every record a person id."""
    con.execute(PS_HOUSING_DDL)
    for h in houses:
        con.execute(
            "INSERT INTO staging.ps_housing VALUES (?, ?, ?, ?, ?, NULL, ?, true)",
            [
                h["house_code"],
                h["address"],
                h["usage"],
                h["occupancy"],
                h["owner_name"],
                h["record_status"],
            ],
        )
    con.execute(PERSON_RECORDS_DDL)
    owners = [
        {
            "record_id": f"ps_housing:{h['house_code']}",
            "address": None,
            "house_code": h["house_code"],
            "record_status": h["record_status"],
        }
        for h in houses
        if h["owner_name"]
    ]
    for p in persons + owners:
        feed, _, key = p["record_id"].partition(":")
        con.execute(
            "INSERT INTO staging.person_records (record_id, feed, source_key, name, address, "
            "house_code, record_status) VALUES (?, ?, ?, '张伟', ?, ?, ?)",
            [p["record_id"], feed, key, p["address"], p["house_code"], p["record_status"]],
        )
    features = standardize_records(con.execute("SELECT * FROM staging.person_records").df())
    con.register("_features", features)
    con.execute("CREATE OR REPLACE TABLE linkage.person_features AS SELECT * FROM _features")
    con.unregister("_features")
    ids = person_ids or {}
    con.execute("CREATE OR REPLACE TABLE linkage.person_ids (record_id VARCHAR, person_id VARCHAR)")
    for (rid,) in con.execute("SELECT record_id FROM staging.person_records").fetchall():
        con.execute("INSERT INTO linkage.person_ids VALUES (?, ?)", [rid, ids.get(rid, "P" + rid)])


def links(con: Con) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(record_id, role) → (person_id, house_id, link_source, valid)."""
    rows = con.execute(
        "SELECT record_id, role, person_id, house_id, link_source, valid FROM linkage.residence"
    ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def build(con: Con) -> Any:
    result = build_house_index(con)
    build_residence(con)
    return result


def test_three_address_formats_link_to_one_dwelling(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT), house("H2", "幸福里小区3号楼2单元502室")],
        [
            person("ca_recipients:M1", "幸福里3-2-501"),
            person("hw_ehr_person:E1", "北京市朝阳区幸福里小区3栋2单元501"),
            person("ps_population:P1", FLAT),
        ],
    )
    result = build(con)
    got = links(con)
    for rid in ("ca_recipients:M1", "hw_ehr_person:E1", "ps_population:P1"):
        assert got[(rid, "resident")] == ("P" + rid, house_id("H1"), "address_match", True)
    assert result.feeds["ca_recipients"].address_matched == 1
    assert result.feeds["ca_recipients"].address_match_rate == 1.0
    row = con.execute(
        "SELECT addr_estate, addr_building, addr_unit, addr_room, addr_key, status "
        "FROM linkage.houses WHERE house_code = 'H1'"
    ).fetchall()
    assert row == [("幸福里", "3", "2", "501", "幸福里|3|2|501", "active")]


def test_ambiguous_key_is_not_linked_and_is_counted(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT), house("H9", "北京市朝阳区幸福里3栋2单元501")],
        [person("hw_ehr_person:E1", "幸福里3-2-501")],
    )
    result = build(con)
    assert result.ambiguous_keys == 1
    assert result.feeds["hw_ehr_person"].ambiguous == 1
    assert result.feeds["hw_ehr_person"].linked == 0
    assert ("hw_ehr_person:E1", "resident") not in links(con)
    outcome = con.execute("SELECT addr_outcome, house_id FROM linkage.house_matches").fetchall()
    assert outcome == [("ambiguous", None)]


def test_an_active_dwelling_wins_over_a_deregistered_one_with_the_same_key(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT, status="deregistered"), house("H9", "幸福里3-2-501")],
        [person("hw_ehr_person:E1", FLAT)],
    )
    result = build(con)
    assert result.ambiguous_keys == 0
    assert links(con)[("hw_ehr_person:E1", "resident")][1] == house_id("H9")


def test_only_the_full_room_level_key_matches(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT)],
        [
            person("hw_ehr_person:E1", "幸福里小区3号楼2单元"),  # no room
            person("hw_ehr_person:E2", "幸福里小区3号楼2单元502室"),  # the neighbour's room
            person("hw_ehr_person:E3", None),
        ],
    )
    result = build(con)
    assert not [k for k in links(con) if k[1] == "resident"]
    outcomes = dict(
        con.execute("SELECT record_id, addr_outcome FROM linkage.house_matches").fetchall()
    )
    assert outcomes == {
        "hw_ehr_person:E1": "no_key",
        "hw_ehr_person:E2": "no_match",
        "hw_ehr_person:E3": "no_address",
    }
    assert result.feeds["hw_ehr_person"].with_address == 2


def test_population_house_code_links_directly(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT), house("H2", "阳光花园1号楼1单元101室")],
        [
            person("ps_population:P1", "幸福里3-2-501", house_code="H2"),  # code wins
            person("ps_population:P2", None, house_code=" H1 "),
            person("ps_population:P3", "阳光花园1-1-101", house_code="H404"),  # unknown code
        ],
    )
    result = build(con)
    got = links(con)
    assert got[("ps_population:P1", "resident")][1:3] == (house_id("H2"), "house_code")
    assert got[("ps_population:P2", "resident")][1:3] == (house_id("H1"), "house_code")
    assert got[("ps_population:P3", "resident")][1:3] == (house_id("H2"), "address_match")
    pop = result.feeds["ps_population"]
    assert (pop.with_house_code, pop.known_house_code, pop.by_house_code, pop.by_address) == (
        3,
        2,
        2,
        1,
    )
    assert (pop.code_and_address, pop.code_address_agree) == (1, 0)


def test_owner_is_linked_as_owner(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT), house("H2", "阳光花园1号楼1单元101室", owner=None)],
        [person("ps_population:P1", FLAT, house_code="H1")],
        person_ids={"ps_housing:H1": "PX", "ps_population:P1": "PX"},
    )
    result = build(con)
    got = links(con)
    assert got[("ps_housing:H1", "owner")] == ("PX", house_id("H1"), "owner", True)
    assert got[("ps_population:P1", "resident")] == ("PX", house_id("H1"), "house_code", True)
    assert result.owners == 1
    owner_ids = dict(
        con.execute("SELECT house_code, owner_record_id FROM linkage.houses").fetchall()
    )
    assert owner_ids == {"H1": "ps_housing:H1", "H2": None}


def test_ended_records_and_dwellings_give_invalid_links(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT), house("H2", "阳光花园1号楼1单元101室", status="deregistered")],
        [
            person("ps_population:P1", FLAT, house_code="H1", status="deregistered"),
            person("hw_ehr_person:E1", "阳光花园1-1-101"),
        ],
    )
    build(con)
    got = links(con)
    assert got[("ps_population:P1", "resident")][3] is False
    assert got[("hw_ehr_person:E1", "resident")][3] is False
    assert got[("ps_housing:H2", "owner")][3] is False
    assert got[("ps_housing:H1", "owner")][3] is True


def test_rerun_gives_identical_tables_and_ids_depend_only_on_the_code(con: Con) -> None:
    load(
        con,
        [house("H1", FLAT), house("H2", "阳光花园1号楼1单元101室")],
        [
            person("ca_recipients:M1", "幸福里3-2-501"),
            person("ps_population:P1", None, house_code="H2"),
        ],
    )
    build(con)
    tables = ("linkage.houses", "linkage.house_matches", "linkage.residence")
    first = {t: con.execute(f"SELECT * FROM {t}").fetchall() for t in tables}
    build(con)
    assert {t: con.execute(f"SELECT * FROM {t}").fetchall() for t in tables} == first
    assert house_id("H1") == house_id("H1") != house_id("H2")
    assert house_id("H1").startswith("H") and "H1" not in house_id("H1")[1:]
    ids = dict(con.execute("SELECT house_code, house_id FROM linkage.houses").fetchall())
    assert ids == {"H1": house_id("H1"), "H2": house_id("H2")}


def test_building_without_standardised_features_is_refused(con: Con) -> None:
    load(con, [house("H1", FLAT)], [])
    con.execute("DROP TABLE linkage.person_features")
    with pytest.raises(ContractViolation, match="person_features"):
        build_house_index(con)


def test_residence_without_house_index_is_refused(con: Con) -> None:
    load(con, [house("H1", FLAT)], [])
    with pytest.raises(ContractViolation, match="build_house_index"):
        build_residence(con)


def failed_checks(con: Con) -> list[str]:
    """Build the shared candidates as sharehub.publish does and run the house checks."""
    con.execute(
        "CREATE OR REPLACE TABLE shared.person_xref__candidate AS "
        "SELECT person_id, record_id FROM linkage.person_ids"
    )
    for name, sql in HOUSE_CANDIDATES.items():
        con.execute(f"CREATE OR REPLACE TABLE shared.{name}__candidate AS {sql}")
    return [
        f"{name}: {description}"
        for name, checks in HOUSE_CHECKS.items()
        for description, sql in checks
        if con.execute(sql.format(t=f"shared.{name}__candidate") + " LIMIT 5").fetchall()
    ]


def test_publish_checks_pass_on_a_built_index_and_catch_dangling_links(con: Con) -> None:
    load(con, [house("H1", FLAT)], [person("ca_recipients:M1", "幸福里3-2-501")])
    build(con)
    assert failed_checks(con) == []
    columns = [d[0] for d in con.execute("SELECT * FROM shared.residence__candidate").description]
    assert columns == ["person_id", "house_id", "record_id", "feed", "link_source", "role", "valid"]
    # Person ids moved after residence was built: the stale link must not be published.
    con.execute(
        "UPDATE linkage.person_ids SET person_id = 'PNEW' WHERE record_id = 'ca_recipients:M1'"
    )
    con.execute(
        "INSERT INTO linkage.residence VALUES ('PX', 'HNONE', 'hw_ehr_person:E9', "
        "'hw_ehr_person', 'address_match', 'resident', true)"
    )
    assert failed_checks(con) == [
        "residence: every residence row points to an existing house",
        "residence: every residence row points to a person in person_xref",
        "residence: the linking record belongs to that person in person_xref",
    ]


def test_a_rebuild_reuses_unchanged_parses_and_parses_changed_addresses(
    con: Con, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(con, [house("H1", FLAT), house("H2", "阳光花园1号楼1单元101室")],
         [person("ca_recipients:M1", "幸福里3-2-501")])  # fmt: skip
    build(con)
    first = con.execute("SELECT * FROM linkage.houses ORDER BY house_code").fetchall()
    import linkage.houses as houses_module

    parsed: list[str] = []
    real = houses_module.standardize_address

    def counting(address: str | None) -> Any:
        parsed.append(str(address))
        return real(address)

    monkeypatch.setattr(houses_module, "standardize_address", counting)
    build(con)
    assert parsed == [] and con.execute("SELECT * FROM linkage.houses ORDER BY house_code").fetchall() == first
    con.execute("UPDATE staging.ps_housing SET address = '阳光花园1栋1单元102室' WHERE house_code = 'H2'")
    build(con)
    assert parsed == ["阳光花园1栋1单元102室"]
    key = con.execute("SELECT addr_key FROM linkage.houses WHERE house_code = 'H2'").fetchall()
    assert key == [("阳光花园|1|1|102",)]
    build_house_index(con, reuse=False)  # a full re-link parses everything again
    assert sorted(parsed[1:]) == sorted([FLAT, "阳光花园1栋1单元102室"])


def test_sql_house_ids_equal_house_id_and_a_missing_address_has_no_parse(con: Con) -> None:
    codes = ["京朝110105-0001", "H1", "ÅB 房"]
    load(con, [house(c, FLAT) for c in codes[:2]] + [house(codes[2], None)],
         [person("ps_population:P1", None, house_code="ÅB 房")])  # fmt: skip
    build(con)
    ids = dict(con.execute("SELECT house_code, house_id FROM linkage.houses").fetchall())
    assert ids == {c: house_id(c) for c in codes}
    row = con.execute(
        "SELECT address, addr_std, addr_estate, addr_building, addr_unit, addr_room, addr_key "
        "FROM linkage.houses WHERE house_code = 'ÅB 房'"
    ).fetchall()
    assert row == [(None,) * 7]
    assert links(con)[("ps_population:P1", "resident")][1:3] == (house_id("ÅB 房"), "house_code")
    first = con.execute("SELECT * FROM linkage.houses").fetchall()
    build(con)  # the NULL address is standardised again, never joined to a stale parse
    assert con.execute("SELECT * FROM linkage.houses").fetchall() == first


def test_records_without_person_id_or_features_are_counted(
    con: Con, caplog: pytest.LogCaptureFixture
) -> None:
    load(con, [house("H1", FLAT)], [person("ca_recipients:M1", "幸福里3-2-501"),
                                    person("ps_population:P1", None, house_code="H1")])  # fmt: skip
    con.execute("DELETE FROM linkage.person_ids WHERE record_id = 'ca_recipients:M1'")
    con.execute("DELETE FROM linkage.person_features WHERE unique_id = 'ps_population:P1'")
    with caplog.at_level("WARNING"):
        build_house_index(con)
        rows = build_residence(con)
    assert "1 person records have no row in linkage.person_features" in caplog.text
    assert "1 house links dropped" in caplog.text
    assert rows == 2  # P1 still links by its code; the owner; M1 has no person id
    assert set(links(con)) == {("ps_population:P1", "resident"), ("ps_housing:H1", "owner")}


# --- daily updates in place ------------------------------------------------------------

HOUSE_TABLES = ("linkage.houses", "linkage.house_matches", "linkage.residence")

# Four days of the register and the records: a dwelling deregistered while another takes
# its address key, then re-registered (the key turns ambiguous); an address changed; an
# owner named, another emptied; records ended, gone and back; two persons merged, split.
NEIGHBOUR = "阳光花园1号楼1单元102室"
DAYS: list[tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]] = [
    (
        [house("H1", FLAT), house("H2", "阳光花园1号楼1单元101室"), house("H3", NEIGHBOUR, owner=None)],
        [person("ca_recipients:M1", "幸福里3-2-501"), person("hw_ehr_person:E1", "阳光花园1-1-102"),
         person("ps_population:P1", None, house_code="H2"), person("ps_population:P2", FLAT)],
        {},
    ),
    (
        [house("H1", FLAT, status="deregistered"), house("H2", "阳光花园1栋1单元103室"),
         house("H3", NEIGHBOUR, owner="李娜"), house("H4", "幸福里3-2-501")],
        [person("hw_ehr_person:E1", "阳光花园1-1-103"),
         person("ps_population:P1", None, house_code="H2", status="deregistered"),
         person("ps_population:P2", FLAT), person("hw_ehr_person:E2", FLAT)],
        {"ps_population:P1": "PX", "ps_population:P2": "PX"},
    ),
    (
        [house("H1", FLAT), house("H2", "阳光花园1栋1单元103室", owner=None),
         house("H3", NEIGHBOUR, owner="李娜"), house("H4", "幸福里3-2-501")],
        [person("ca_recipients:M1", "幸福里3-2-501"), person("hw_ehr_person:E1", "阳光花园1-1-103"),
         person("ps_population:P1", None, house_code="H2"), person("ps_population:P2", FLAT),
         person("hw_ehr_person:E2", FLAT)],
        {},
    ),
]  # fmt: skip


def fresh() -> Con:
    con = duckdb.connect()
    for schema in ("staging", "linkage", "shared"):
        con.execute(f"CREATE SCHEMA {schema}")
    return con


def content(con: Con) -> dict[str, Any]:
    """Every house table as a sorted multiset of rows, with its columns and types."""
    return {
        t: (
            con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall(),
            [tuple(r[:2]) for r in con.execute(f"DESCRIBE {t}").fetchall()],
        )
        for t in HOUSE_TABLES
    }


def house_keys(con: Con) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
        "WHERE schema_name = 'linkage' AND table_name = 'houses' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') ORDER BY ALL"
    ).fetchall()


def test_daily_updates_in_place_equal_a_rebuild(con: Con, caplog: pytest.LogCaptureFixture) -> None:
    keys: list[tuple[Any, ...]] = []
    for day, (houses, persons, ids) in enumerate([*DAYS, DAYS[-1]]):
        load(con, houses, persons, ids)
        caplog.clear()
        with caplog.at_level("INFO", logger="linkage"):
            result = build_house_index(con)
            rows = build_residence(con)
        logged = caplog.text
        rebuilt = fresh()  # the same inputs, built from scratch
        load(rebuilt, houses, persons, ids)
        assert build_house_index(rebuilt) == result
        assert build_residence(rebuilt) == rows
        assert content(con) == content(rebuilt)
        keys = keys or house_keys(rebuilt)
        assert house_keys(con) == keys == [("PRIMARY KEY", ["house_id"]), ("UNIQUE", ["house_code"])]
        assert ("rebuilt" in logged) == (day == 0)
    # The last day repeated the one before: nothing was rewritten.
    assert "linkage.houses 0 rewritten (0 rows deleted, 0 inserted), linkage.house_matches 0 " \
        "rewritten" in logged
    assert "linkage.residence 0 rewritten" in logged
    got = links(con)
    assert result.ambiguous_keys == 1  # H1 came back beside H4: FLAT names two dwellings
    assert ("ps_population:P2", "resident") not in got
    assert got[("ps_population:P1", "resident")][1:] == (house_id("H2"), "house_code", True)
    assert ("ps_housing:H2", "owner") not in got and ("ps_housing:H3", "owner") in got


def test_day_two_moves_links_as_a_rebuild_would(con: Con) -> None:
    for houses, persons, ids in DAYS[:2]:
        load(con, houses, persons, ids)
        build(con)
    got = links(con)
    # H1 deregistered: H4, active, now holds the key, so FLAT links there by address.
    assert got[("hw_ehr_person:E2", "resident")] == ("Phw_ehr_person:E2", house_id("H4"),
                                                     "address_match", True)
    assert got[("ps_population:P2", "resident")][:2] == ("PX", house_id("H4"))
    assert got[("ps_population:P1", "resident")] == ("PX", house_id("H2"), "house_code", False)
    assert got[("hw_ehr_person:E1", "resident")][1] == house_id("H2")  # the changed address
    assert got[("ps_housing:H1", "owner")][3] is False
    assert ("ca_recipients:M1", "resident") not in got


def test_a_full_build_or_a_table_without_its_keys_is_rebuilt(
    con: Con, caplog: pytest.LogCaptureFixture
) -> None:
    houses, persons, ids = DAYS[0]
    load(con, houses, persons, ids)
    build(con)
    expected = content(con)
    with caplog.at_level("INFO", logger="linkage"):
        build_house_index(con, reuse=False)
        build_residence(con, reuse=False)
    assert "linkage.houses rebuilt, linkage.house_matches rebuilt" in caplog.text
    assert "linkage.residence rebuilt" in caplog.text
    assert content(con) == expected
    # An index written without its keys (as by hand) is rebuilt, keys included.
    con.execute("CREATE OR REPLACE TABLE linkage.houses AS SELECT * FROM linkage.houses")
    assert house_keys(con) == []
    caplog.clear()
    with caplog.at_level("INFO", logger="linkage"):
        build_house_index(con)
    assert "linkage.houses rebuilt, linkage.house_matches 0 rewritten" in caplog.text
    assert house_keys(con) == [("PRIMARY KEY", ["house_id"]), ("UNIQUE", ["house_code"])]
    assert content(con) == expected
