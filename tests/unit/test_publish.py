"""Publication on inline rows: golden values and their sources, versions, atomic failure."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from test_publish_validation import edited

from linkage.unpublished import forget_unpublished
from sharehub import metrics
from sharehub.errors import PublishAborted
from sharehub.publish import publish

RECORDS = [
    # record_id, feed, status, updated_at, address, house_code
    ("ps_population:1", "ps_population", "active", "2026-10-01", "幸福里3-2-501", "H1"),
    ("hw_ehr_person:9", "hw_ehr_person", "active", "2026-11-01", "幸福里小区3号楼2单元501室", None),
    ("ca_recipients:5", "ca_recipients", "active", "2026-11-05", "幸福里3栋2单元501", None),
    ("ps_population:2", "ps_population", "active", "2026-09-01", "光明路8号", "H2"),
]
FEATURES = [
    # unique_id, name_std, id_norm, id_valid, sex, birth_date, phone_std, phone_kind, placeholder
    ("ps_population:1", "张伟", "110105194803120011", True, "M", "1948-03-12", "13800000001", "mobile", False),
    ("hw_ehr_person:9", "章伟", None, False, "M", "1948-03-12", "13900000002", "mobile", False),
    ("ca_recipients:5", "张伟", "110105194803120011", True, "M", "1948-03-12", "13700000003", "mobile", False),
    ("ps_population:2", "李娜", "110105199001010022", True, "F", "1990-01-01", None, None, False),
]
IDS = [("ps_population:1", "PA"), ("hw_ehr_person:9", "PA"), ("ca_recipients:5", "PA"),
       ("ps_population:2", "PB")]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for schema in ("staging", "linkage", "shared", "audit"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("""CREATE TABLE staging.person_records (record_id VARCHAR, feed VARCHAR,
        source_key VARCHAR, batch_id VARCHAR, record_status VARCHAR, updated_at TIMESTAMP,
        address VARCHAR, house_code VARCHAR)""")
    con.executemany("INSERT INTO staging.person_records VALUES (?, ?, split_part(?, ':', 2), 'b1', ?, ?, ?, ?)",
                    [(r[0], r[1], r[0], *r[2:]) for r in RECORDS])
    con.execute("""CREATE TABLE linkage.person_features (unique_id VARCHAR, name_std VARCHAR,
        id_norm VARCHAR, id_valid BOOLEAN, sex VARCHAR, birth_date DATE, phone_std VARCHAR,
        phone_kind VARCHAR, is_placeholder_name BOOLEAN)""")
    con.executemany("INSERT INTO linkage.person_features VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", FEATURES)
    con.execute("CREATE TABLE linkage.person_ids (record_id VARCHAR, person_id VARCHAR)")
    con.executemany("INSERT INTO linkage.person_ids VALUES (?, ?)", IDS)
    con.execute("""CREATE TABLE linkage.cluster_edges (unique_id_l VARCHAR, unique_id_r VARCHAR,
        match_weight DOUBLE, match_probability DOUBLE)""")
    con.execute("INSERT INTO linkage.cluster_edges VALUES ('ps_population:1', 'hw_ehr_person:9', 12, 0.999),"
                " ('ps_population:1', 'ca_recipients:5', 20, 0.99999)")
    con.execute("""CREATE TABLE linkage.person_id_changes (old_person_id VARCHAR, new_person_id VARCHAR,
        kind VARCHAR, run_id VARCHAR, changed_at TIMESTAMP, records BIGINT, batch_ids VARCHAR)""")
    con.execute("""CREATE TABLE linkage.record_end_dates (record_id VARCHAR, record_status VARCHAR,
        ended_at TIMESTAMP, ended_batch_id VARCHAR)""")
    return con


def test_golden_values_follow_the_written_rules_and_name_their_source(con: duckdb.DuckDBPyConnection) -> None:
    publish(con, run_id="r1", now=datetime(2026, 11, 27))
    row = con.execute("""SELECT name, name_source, id_number, phone, phone_source, address,
                         address_source, house_code, source_records, feeds
                         FROM shared.person WHERE person_id = 'PA'""").fetchall()[0]
    assert row[0:2] == ("张伟", "ps_population:1")  # identity: public security first
    assert row[2] == "110105194803120011"
    assert row[3:5] == ("13900000002", "hw_ehr_person:9")  # newest mobile, civil affairs last
    assert row[5:8] == ("幸福里3-2-501", "ps_population:1", "H1")  # residence register first
    assert row[8] == 3 and row[9] == ["ca_recipients", "hw_ehr_person", "ps_population"]


def test_xref_carries_the_best_link_probability_to_four_places(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("UPDATE linkage.cluster_edges SET match_probability = 0.98765432 "
                "WHERE unique_id_r = 'hw_ehr_person:9'")
    publish(con, run_id="r1")
    got = dict(con.execute("SELECT record_id, match_probability FROM shared.person_xref").fetchall())
    # 0.99999 is published as 1.0 (at least 0.99995): beyond four places it is daily noise
    assert got == {"ps_population:1": 1.0, "hw_ehr_person:9": 0.9877,
                   "ca_recipients:5": 1.0, "ps_population:2": None}


def test_same_input_is_not_a_new_version(con: duckdb.DuckDBPyConnection) -> None:
    first = publish(con, run_id="r1")
    again = publish(con, run_id="r2")
    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created) == (1, False)
    con.execute("UPDATE linkage.person_ids SET person_id = 'PC' WHERE record_id = 'hw_ehr_person:9'")
    edited(con, "hw_ehr_person:9")
    assert publish(con, run_id="r3").version == 2


def test_failing_candidate_leaves_previous_version(con: duckdb.DuckDBPyConnection) -> None:
    publish(con, run_id="r1")
    before = con.execute("SELECT * FROM shared.person_xref ORDER BY record_id").fetchall()
    con.execute("INSERT INTO linkage.person_ids VALUES ('ps_population:2', 'PZ')")  # record in 2 persons
    edited(con, "ps_population:2")
    with pytest.raises(PublishAborted, match="record_id is unique failed") as info:
        publish(con, run_id="r2")
    assert "ps_population:2" in str(info.value)
    assert con.execute("SELECT * FROM shared.person_xref ORDER BY record_id").fetchall() == before
    assert con.execute("SELECT max(version) FROM audit.publish_versions").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM information_schema.tables "
                       "WHERE table_name LIKE '%__candidate'").fetchall() == [(0,)]


def test_metrics_are_exact_on_inline_rows(con: duckdb.DuckDBPyConnection) -> None:
    result = publish(con, run_id="r1")
    stored = {(m.metric, m.scope): m for m in metrics.record(con, result.version)}
    assert stored[("records_in", "all")].value == 4
    assert stored[("persons_out", "all")].value == 2
    assert stored[("repeat_keyings", "all")].value == 2
    assert stored[("records_per_person", "all")].value == 2.0
    assert stored[("persons_in_2plus_feeds", "all")].value == 0.5
    assert stored[("feed_records_shared", "ps_population")].value == 0.5
    assert stored[("feed_records_shared", "hw_ehr_person")].value == 1.0
    rows = con.execute("SELECT count(*) FROM audit.sharing_metrics WHERE version = 1").fetchall()
    metrics.record(con, result.version)  # recomputing a version replaces, never duplicates
    assert con.execute("SELECT count(*) FROM audit.sharing_metrics WHERE version = 1").fetchall() == rows


def test_publish_version_records_metrics_and_copies_to_postgres_when_configured(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub import pipeline
    from sharehub import publish as publish_package
    from sharehub.settings import Settings

    calls: list[int] = []
    monkeypatch.setattr(publish_package, "publish_to_postgres",
                        lambda _con, _settings, version: calls.append(version) or "copied")
    off = pipeline.publish_version(con, Settings.from_env({}), run_id="r1")
    assert (off.version, off.created, off.metrics_recorded, off.postgres) == (1, True, True, None)
    assert calls == []
    on = Settings.from_env({}, publish_url="postgresql://example/db")
    again = pipeline.publish_version(con, on, run_id="r2")
    # nothing new to publish, but the copy is retried so subscribers catch up
    assert (again.version, again.created, again.metrics_recorded) == (1, False, False)
    assert calls == [1] and again.postgres == "copied"


def _full_golden(con: duckdb.DuckDBPyConnection) -> set[tuple[object, ...]]:
    from sharehub.publish.golden import golden_person_sql

    return {tuple(map(repr, row)) for row in con.execute(golden_person_sql()).fetchall()}


def _published_person(con: duckdb.DuckDBPyConnection) -> set[tuple[object, ...]]:
    return {tuple(map(repr, row)) for row in con.execute("SELECT * FROM shared.person").fetchall()}


def test_golden_rows_of_unchanged_persons_are_kept_and_the_rest_recomputed(
    con: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    publish(con, run_id="r1", now=datetime(2026, 11, 26))
    assert con.execute("SELECT count(*) FROM linkage.unpublished").fetchall() == [(0,)]
    # day 2: 李娜's phone arrives, the health record moves to a new person PC, and PB's
    # golden row must follow; PA loses a record, so its row is recomputed too
    con.execute("UPDATE linkage.person_features SET phone_std = '13600000009', "
                "phone_kind = 'mobile' WHERE unique_id = 'ps_population:2'")
    con.execute("UPDATE linkage.person_ids SET person_id = 'PC' WHERE record_id = 'hw_ehr_person:9'")
    con.execute("DELETE FROM linkage.cluster_edges WHERE unique_id_r = 'hw_ehr_person:9'")
    edited(con, "ps_population:2", "hw_ehr_person:9")
    with caplog.at_level("INFO", logger="sharehub.publish.golden"):
        second = publish(con, run_id="r2", now=datetime(2026, 11, 27))
    assert second.created
    assert "3 persons recomputed" in caplog.text  # PA, PB and the new PC
    assert _published_person(con) == _full_golden(con)
    # nothing changed: nothing recomputed, and the same version stays
    caplog.clear()
    with caplog.at_level("INFO", logger="sharehub.publish.golden"):
        assert not publish(con, run_id="r3").created
    assert "0 persons recomputed" in caplog.text


def test_golden_rows_are_recomputed_in_full_when_rules_changes_or_published_rows_are_in_doubt(
    con: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharehub.publish import tables

    publish(con, run_id="r1", now=datetime(2026, 11, 26))
    # a version built by other SELECTs (survivorship rules) is no baseline: unchanged
    # persons' rows are computed again too, though nobody noted a change
    con.execute("UPDATE linkage.person_features SET name_std = '李婧' WHERE unique_id = 'ps_population:2'")
    monkeypatch.setitem(tables._CANDIDATES, "person", tables._CANDIDATES["person"] + " -- new rules")
    with caplog.at_level("INFO", logger="sharehub.publish.golden"):
        publish(con, run_id="r2", now=datetime(2026, 11, 27))
    assert "recomputed" not in caplog.text
    assert _published_person(con) == _full_golden(con)
    # a shared.person edited outside the hub is no baseline either (content hash differs)
    con.execute("UPDATE shared.person SET name = 'tampered' WHERE person_id = 'PA'")
    con.execute("UPDATE linkage.person_features SET name_std = '李娜' WHERE unique_id = 'ps_population:2'")
    edited(con, "ps_population:2")
    caplog.clear()
    with caplog.at_level("INFO", logger="sharehub.publish.golden"):
        publish(con, run_id="r3", now=datetime(2026, 11, 28))
    assert "recomputed" not in caplog.text
    assert _published_person(con) == _full_golden(con)
    # an edit nobody noted (a stage that forgot the table) is not seen: the set is the contract
    con.execute("UPDATE linkage.person_features SET name_std = '李婧' WHERE unique_id = 'ps_population:2'")
    publish(con, run_id="r4", now=datetime(2026, 11, 29))
    assert _published_person(con) != _full_golden(con)
    forget_unpublished(con)  # what a stage that cannot say what it rewrote does
    publish(con, run_id="r5", now=datetime(2026, 11, 30))
    assert _published_person(con) == _full_golden(con)


def _add_health_records(con: duckdb.DuckDBPyConnection, n: int) -> None:
    for i in range(n):
        rid = f"hw_ehr_person:{1000 + i}"
        con.execute("INSERT INTO staging.person_records VALUES (?, 'hw_ehr_person', ?, 'b2', "
                    "'active', '2026-11-20', NULL, NULL)", [rid, str(1000 + i)])
        con.execute("INSERT INTO linkage.person_features VALUES (?, '王某', NULL, false, 'F', "
                    "'1990-01-01', NULL, NULL, false)", [rid])
        con.execute("INSERT INTO linkage.person_ids VALUES (?, ?)", [rid, f"PH{i}"])
        edited(con, rid)


def test_a_feed_publishing_for_the_first_time_is_not_held_to_the_row_count_bound(
    con: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    # a first load whose feeds arrive on different days: public security alone first
    for table, column in (("staging.person_records", "record_id"),
                          ("linkage.person_features", "unique_id"), ("linkage.person_ids", "record_id")):
        con.execute(f"DELETE FROM {table} WHERE {column} NOT LIKE 'ps_population:%'")
    con.execute("DELETE FROM linkage.cluster_edges")
    assert publish(con, run_id="r1").records == 2
    _add_health_records(con, 80)  # health arrives: +80 records, far beyond ±20 % / ±50 rows
    with caplog.at_level("WARNING", logger="sharehub.publish.tables"):
        second = publish(con, run_id="r2")
    assert second.created and second.records == 82
    assert "hw_ehr_person publish for the first time" in caplog.text
    # once every feed has published, the bound holds again: losing them is refused
    con.execute("DELETE FROM linkage.person_ids WHERE record_id LIKE 'hw_ehr_person:%'")
    forget_unpublished(con)  # what changed is not known: every row is computed
    with pytest.raises(PublishAborted, match="row count lies in"):
        publish(con, run_id="r3")
