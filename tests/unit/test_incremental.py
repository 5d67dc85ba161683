"""Incremental linkage: what counts as changed, and that linking only the change gives
what a full re-link gives.

The district is the hand-built one of `test_linkage_model` (households, twins, damaged
IDs); a "day 2" is made from it by hand: a renamed record, a removed one, a newcomer
who is somebody's second health record, and a death (deregistered).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_linkage_model import _load, build_district

from linkage import incremental
from linkage.changes import (
    FEATURE_HASHES,
    FEATURES,
    MODEL_COLUMNS,
    STANDARDISED,
    fingerprint_sql,
    standardise,
    tf_columns,
    value_sql,
    write_fingerprints,
)
from linkage.incremental import link_incremental
from linkage.predict import link, plan, record_run
from linkage.reweight import MOVED_VALUES
from linkage.standardize import PERSON_RECORD_COLUMNS
from linkage.train import load_model, train_model

TABLE = "linkage.person_features"


def _records(rows: list[dict[str, str]]) -> pd.DataFrame:
    base = dict.fromkeys(PERSON_RECORD_COLUMNS)
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(PERSON_RECORD_COLUMNS), dtype=object)


def _stage(con: duckdb.DuckDBPyConnection, rows: list[dict[str, str]]) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
    frame = _records(rows)  # noqa: F841  (read by duckdb)
    con.execute("CREATE OR REPLACE TABLE staging.person_records AS SELECT * FROM frame")


ZHANG = {"record_id": "ps_population:1", "feed": "ps_population", "name": "张伟",
         "id_number": "110105194803120016", "birth_raw": "19480312", "sex_raw": "男",
         "record_status": "active"}  # fmt: skip
LI = {"record_id": "hw_ehr_person:2", "feed": "hw_ehr_person", "name": "李娜",
      "birth_raw": "1990-05-01", "phone": "13800138000", "record_status": "active"}  # fmt: skip
WANG = {"record_id": "ca_recipients:3", "feed": "ca_recipients", "name": "王芳",
        "birth_raw": "1950-02", "record_status": "active"}  # fmt: skip


def test_standardise_redoes_only_new_or_changed_records() -> None:
    con = duckdb.connect()
    _stage(con, [ZHANG, LI, WANG])
    first = standardise(con)
    assert (first.full, first.standardised, first.records) == (True, 3, 3)
    # 李娜 renamed, 王芳 gone, a newcomer; 张伟 untouched
    newcomer = {**LI, "record_id": "hw_ehr_person:4", "name": "赵敏"}
    _stage(con, [ZHANG, {**LI, "name": "李婧"}, newcomer])
    second = standardise(con)
    assert (second.full, second.standardised, second.removed, second.records) == (False, 2, 1, 3)
    incremental_rows = con.execute(f"SELECT * FROM {TABLE} ORDER BY unique_id").fetchall()
    again = standardise(con, full=True)
    assert again.standardised == 3
    assert con.execute(f"SELECT * FROM {TABLE} ORDER BY unique_id").fetchall() == incremental_rows
    assert standardise(con).standardised == 0  # nothing new: nothing to do


def test_changes_are_sorted_into_rescored_status_only_and_removed() -> None:
    con = duckdb.connect()
    zhao = {"record_id": "hw_ehr_person:6", "feed": "hw_ehr_person", "name": "赵强",
            "phone": "13900139000", "record_status": "active"}  # fmt: skip
    # qian shares LI's phone on day 1; LI moves to zhao's phone on day 2
    qian = {"record_id": "hw_ehr_person:7", "feed": "hw_ehr_person", "name": "钱坤",
            "phone": "13800138000", "record_status": "active"}  # fmt: skip
    _stage(con, [ZHANG, LI, WANG, zhao, qian])
    standardise(con)
    write_fingerprints(con, ["name_std", "phone_std"])
    newcomer = {**WANG, "record_id": "ca_recipients:5"}
    _stage(con, [{**ZHANG, "record_status": "deregistered"}, {**LI, "phone": "13900139000"},
                 newcomer, zhao, qian])  # fmt: skip
    standardise(con)
    # changed: LI and the newcomer; for frequencies: 钱坤, whose phone's count fell (LI
    # left it), and 赵强, whose phone's count rose (王芳's name count is unchanged: one
    # left, one came); status: ZHANG; removed: WANG
    assert incremental._diff(con, ["name_std", "phone_std"]) == (2, 1, 1, 1)
    rescored = {r[0] for r in con.execute("SELECT unique_id FROM _rescore").fetchall()}
    assert rescored == {"hw_ehr_person:2", "ca_recipients:5"}
    # a count that fell may lift pairs below the floor above it: 钱坤 is scored again
    # against the other holders of his phone
    assert con.execute("SELECT unique_id FROM _tf").fetchall() == [("hw_ehr_person:7",)]
    # a count that rose only lowers weights: 赵强's stored pairs are re-weighted instead
    assert con.execute(f"SELECT * FROM {MOVED_VALUES}").fetchall() == [
        ("phone_std", "13900139000", 2)
    ]


@pytest.fixture(scope="module")
def district() -> pd.DataFrame:
    return build_district()


@pytest.fixture(scope="module")
def model(district: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.json"
    con = duckdb.connect()
    _load(con, district)
    train_model(con, TABLE, seed=42, model_path=path)
    return path


def _day2(district: pd.DataFrame) -> pd.DataFrame:
    """A renamed record, a removed one, a second health record, a death."""
    day2 = district.copy()
    ids = list(day2["unique_id"])
    renamed, removed, died = ids[3], ids[10], ids[20]
    day2.loc[day2["unique_id"] == renamed, ["name_std", "given_name"]] = ["王小明", "小明"]
    day2.loc[day2["unique_id"] == died, "record_status"] = "deregistered"
    twin = day2[day2["unique_id"] == ids[30]].copy()
    twin["unique_id"] = "hw_ehr_person:NEW1"
    twin["source_dataset"] = "hw_ehr_person"
    return pd.concat([day2[day2["unique_id"] != removed], twin], ignore_index=True)


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[tuple[str, str]], Counter[tuple[object, ...]]]:
    """A table's columns (name, type) and rows as a multiset: what a rebuild must equal."""
    columns = [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return columns, Counter(con.execute(f"SELECT * FROM {table}").fetchall())


def _partition(con: duckdb.DuckDBPyConnection) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for uid, cid in con.execute("SELECT unique_id, cluster_id FROM linkage.clusters").fetchall():
        groups.setdefault(cid, set()).add(uid)
    return {frozenset(g) for g in groups.values()}


def _pairs(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], float]:
    rows = con.execute(
        "SELECT unique_id_l, unique_id_r, match_probability FROM linkage.predictions"
    ).fetchall()
    return {(a, b): p for a, b, p in rows}


def test_incremental_linkage_equals_a_full_relink(district: pd.DataFrame, model: Path) -> None:
    inc = duckdb.connect()
    _load(inc, district)
    link(inc, TABLE, model_path=model, threshold=0.9)
    write_fingerprints(inc, tf_columns(load_model(model)))
    day2 = _day2(district)
    _load(inc, day2)
    result = link_incremental(inc, model_path=model, threshold=0.9, review_floor=0.01)
    assert (result.changed, result.status_changed, result.removed) == (2, 1, 1)
    # and the records sharing a name or phone whose count moved (term frequencies)
    assert 2 < result.rescored < len(day2) / 4
    assert result.reclustered < len(day2) / 4  # only the touched components

    full = duckdb.connect()
    _load(full, day2)
    link(full, TABLE, model_path=model, threshold=0.9)
    assert _partition(inc) == _partition(full)
    inc_pairs, full_pairs = _pairs(inc), _pairs(full)
    assert set(inc_pairs) == set(full_pairs)
    # pairs not scored again keep yesterday's total count of names: close, not identical
    assert max(abs(inc_pairs[k] - full_pairs[k]) for k in full_pairs) < 0.002
    # as `record_run` does next: the changes the linkage found update the fingerprints
    write_fingerprints(inc, tf_columns(load_model(model)), incremental=True)
    write_fingerprints(full, tf_columns(load_model(model)))
    assert _rows(inc, FEATURE_HASHES) == _rows(full, FEATURE_HASHES)
    left = inc.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%splink%' "
        "OR table_name LIKE '\\_\\_sharehub%' ESCAPE '\\' OR table_name LIKE '\\_%' ESCAPE '\\'"
    ).fetchall()
    assert left == []


def test_reweighted_pairs_equal_a_full_rescore(district: pd.DataFrame, model: Path) -> None:
    """A day that moves the counts of a common name and a common phone but not the totals:
    every kept pair on those values is re-weighted by arithmetic (`linkage.reweight`),
    and with no drift in the totals every pair must equal a full re-link's, not just be
    close to it."""
    names = ["name_std", "surname", "given_name", "name_pinyin", "surname_pinyin", "given_pinyin"]
    common_name = district["name_std"].value_counts().index[0]
    common_phone = district["phone_std"].value_counts().index[0]
    rare = district[
        district["name_std"].map(district["name_std"].value_counts()).eq(1)
        & district["phone_std"].map(district["phone_std"].value_counts()).eq(1)
    ]["unique_id"].tolist()
    template = district[district["name_std"] == common_name].iloc[0]
    day2 = district.copy()
    _edit(day2, rare[0], **{c: template[c] for c in names})  # a common name one more
    _edit(day2, rare[1], phone_std=common_phone)  # a common phone one more
    from linkage.constraints import Constraints, decision_edges_sql
    from linkage.edges import write_cluster_edges
    from linkage.reclustered import reset_reclustered

    no_decisions = decision_edges_sql(Constraints())
    inc = duckdb.connect()
    _load(inc, district)
    link(inc, TABLE, model_path=model, threshold=0.9)
    write_fingerprints(inc, tf_columns(load_model(model)))
    write_cluster_edges(inc, no_decisions, 0.9)
    reset_reclustered(inc)
    _load(inc, day2)
    result = link_incremental(inc, model_path=model, threshold=0.9, review_floor=0.01)
    assert result.changed == 2 and result.reweighted_pairs > 0
    assert result.rescored == 2  # counts only rose or vanished: nobody else is scored again
    # links that stayed above the threshold re-cluster nobody (only the 2 changed records'
    # components are), yet their edges carry the new figures
    assert result.reclustered < 10
    write_cluster_edges(inc, no_decisions, 0.9)

    full = duckdb.connect()
    _load(full, day2)
    link(full, TABLE, model_path=model, threshold=0.9)
    write_cluster_edges(full, no_decisions, 0.9)
    assert _partition(inc) == _partition(full)
    edges = "SELECT * FROM linkage.cluster_edges ORDER BY unique_id_l, unique_id_r, evidence"
    inc_edges, full_edges = inc.execute(edges).fetchall(), full.execute(edges).fetchall()
    assert len(inc_edges) == len(full_edges)
    for a, b in zip(inc_edges, full_edges, strict=True):
        assert a == pytest.approx(b, abs=1e-9), (a, b)
    sql = "SELECT * EXCLUDE (match_key) FROM linkage.predictions ORDER BY unique_id_l, unique_id_r"
    inc_rows, full_rows = inc.execute(sql).fetchall(), full.execute(sql).fetchall()
    assert [r[:4] for r in inc_rows] == [r[:4] for r in full_rows]
    for a, b in zip(inc_rows, full_rows, strict=True):
        assert a == pytest.approx(b, abs=1e-9), (a, b)


def test_nothing_changed_rescores_nothing(district: pd.DataFrame, model: Path) -> None:
    con = duckdb.connect()
    _load(con, district)
    link(con, TABLE, model_path=model, threshold=0.9)
    write_fingerprints(con)
    before = (_partition(con), _pairs(con))
    result = link_incremental(con, model_path=model, threshold=0.9, review_floor=0.01)
    assert (result.rescored, result.scored_pairs, result.reclustered) == (0, 0, 0)
    assert (_partition(con), _pairs(con)) == before


def test_plan_is_incremental_only_on_the_same_model_and_threshold(
    district: pd.DataFrame, model: Path, tmp_path: Path
) -> None:
    con = duckdb.connect()
    _load(con, district)
    assert plan(con, model_path=model, threshold=0.9).reason == "no previous linkage to build on"
    link(con, TABLE, model_path=model, threshold=0.9)
    con.execute("CREATE TABLE linkage.person_ids AS SELECT unique_id AS record_id FROM linkage.clusters")
    first = plan(con, model_path=model, threshold=0.9, full=True)
    assert not first.incremental
    record_run(con, first, run_id="r1", now=pd.Timestamp("2026-11-01").to_pydatetime(),
               model_path=model, threshold=0.9, counts=(1, 1, 1, 1))  # fmt: skip
    assert plan(con, model_path=model, threshold=0.9).incremental
    assert "threshold" in plan(con, model_path=model, threshold=0.8).reason
    other = tmp_path / "other.json"
    other.write_text(model.read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert "model file changed" in plan(con, model_path=other, threshold=0.9).reason
    assert not plan(con, model_path=tmp_path / "none.json", threshold=0.9).incremental
    # a warehouse whose fingerprints are md5 text (before they became UBIGINT) links in full
    con.execute("ALTER TABLE linkage.feature_hashes ALTER feature_hash TYPE VARCHAR")
    assert "older kind" in plan(con, model_path=model, threshold=0.9).reason


def test_addresses_already_standardised_are_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkage.standardize import records as standardize_records_module

    home = "北京市朝阳区幸福里小区3号楼2单元501室"
    con = duckdb.connect()
    _stage(con, [{**ZHANG, "address": home}, LI])
    standardise(con)
    parsed: list[str | None] = []
    real = standardize_records_module.standardize_address

    def counting(value: str | None) -> object:
        parsed.append(value)
        return real(value)

    monkeypatch.setattr(standardize_records_module, "standardize_address", counting)
    # a newborn at 张伟's address, and 李娜 moving to a new one
    newborn = {**ZHANG, "record_id": "ps_population:7", "name": "张小伟", "address": home}
    moved = {**LI, "address": "北京市朝阳区光明路8号"}
    _stage(con, [{**ZHANG, "address": home}, moved, newborn])
    assert standardise(con).standardised == 2
    assert home not in parsed and "北京市朝阳区光明路8号" in parsed
    rows = con.execute(f"SELECT * FROM {TABLE} ORDER BY unique_id").fetchall()
    monkeypatch.undo()
    standardise(con, full=True)
    assert con.execute(f"SELECT * FROM {TABLE} ORDER BY unique_id").fetchall() == rows


def test_md5_fingerprints_of_an_older_warehouse_mean_standardising_afresh() -> None:
    con = duckdb.connect()
    _stage(con, [ZHANG, LI])
    standardise(con)
    con.execute("ALTER TABLE linkage.standardised_inputs ALTER input_hash TYPE VARCHAR")
    again = standardise(con)
    assert (again.full, again.standardised) == (True, 2)
    assert standardise(con).standardised == 0  # and the new fingerprints are usable


def _decide(con: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str, str]]) -> None:
    """Append reviewers' decisions (left, right, decision) to the decision log."""
    from linkage.review import LOG, ensure_tables, review_id

    ensure_tables(con)
    for a, b, decision in pairs:
        left, right = sorted((a, b))
        con.execute(
            f"INSERT INTO {LOG} SELECT coalesce(max(decision_no), 0) + 1, ?, ?, ?, ?, 'test', "
            f"'test', TIMESTAMP '2026-11-01' FROM {LOG}",
            [review_id(left, right), left, right, decision],
        )


def _identify(con: duckdb.DuckDBPyConnection, day: int) -> tuple[object, ...]:
    """Identify as `sharehub.pipeline.identify` does; return what it wrote."""
    from linkage.index import assign_person_ids
    from linkage.review import build_queue

    run = f"run-{day}"
    ids = assign_person_ids(con, run_id=run, now=pd.Timestamp(f"2026-11-0{day}").to_pydatetime(),
                            batch_ids=[f"feed/{day}"])  # fmt: skip
    open_items = build_queue(con, run_id=run, threshold=0.9, review_threshold=0.5)
    tables = ("person_ids", "id_registry", "person_id_changes", "review_queue", "cluster_edges")
    rows = [sorted(con.execute(f"SELECT * FROM linkage.{t}").fetchall(), key=repr) for t in tables]
    return (ids, open_items, *rows)


def test_identify_and_cluster_edges_for_reclustered_records_equal_a_full_rebuild(
    district: pd.DataFrame, model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Days of renames, removals, newcomers, deaths, reactivations, deletions and
    reviewers' decisions (taken, then reversed): person ids, registry, change log, review
    queue and cluster edges written for the re-clustered records only are what a full
    rebuild on the same linkage writes."""
    import logging
    import shutil

    from linkage.constraints import decision_edges_sql
    from linkage.edges import write_cluster_edges
    from linkage.reclustered import reset_reclustered
    from linkage.review import constraints

    caplog.set_level(logging.INFO, logger="linkage.index")
    ids = list(district["unique_id"])
    day2 = _day2(district)
    day3 = pd.concat([day2, district[district["unique_id"] == ids[10]]], ignore_index=True)
    day3.loc[day3["unique_id"] == ids[20], "record_status"] = "active"  # reactivated
    day3.loc[day3["unique_id"] == ids[40], "record_status"] = "deleted"
    day3.loc[day3["unique_id"] == ids[50], "record_status"] = "inactive"
    day4 = day3[day3["unique_id"] != ids[70]].copy()
    day4.loc[day4["unique_id"] == ids[3], ["name_std", "given_name"]] = (
        district.loc[district["unique_id"] == ids[3], ["name_std", "given_name"]].to_numpy()
    )

    db, copy = tmp_path / "scoped.duckdb", tmp_path / "full.duckdb"
    con = duckdb.connect(str(db))
    _load(con, district)
    link(con, TABLE, model_path=model, threshold=0.9)
    write_fingerprints(con, tf_columns(load_model(model)))
    write_cluster_edges(con, decision_edges_sql(constraints(con)), 0.9)
    _identify(con, 1)
    reset_reclustered(con)
    same = con.execute(  # a link the model made
        "SELECT unique_id_l, unique_id_r FROM linkage.cluster_edges ORDER BY ALL LIMIT 1"
    ).fetchall()[0]
    apart = [r for (r,) in con.execute(  # two persons it kept apart
        "SELECT min(record_id) FROM linkage.person_ids GROUP BY person_id ORDER BY 1 LIMIT 2"
    ).fetchall()]  # fmt: skip
    decisions = {3: [(*same, "no-match"), (*apart, "match")], 4: [(*apart, "no-match")]}
    for day, frame in ((2, day2), (3, day3), (4, day4)):
        _load(con, frame)
        _decide(con, decisions.get(day, []))
        decided = constraints(con)
        link_incremental(con, model_path=model, threshold=0.9, review_floor=0.01,
                         constraints=decided)  # fmt: skip
        write_fingerprints(con, tf_columns(load_model(model)))
        con.close()
        shutil.copy(db, copy)
        con, full = duckdb.connect(str(db)), duckdb.connect(str(copy))
        full.execute("DROP TABLE linkage.reclustered")
        for each in (con, full):
            write_cluster_edges(each, decision_edges_sql(decided), 0.9)
        caplog.clear()
        got, want = _identify(con, day), _identify(full, day)
        assert "re-clustered records only" in caplog.text
        for name, a, b in zip(("ids", "open", "person_ids", "registry", "changes", "queue",
                               "edges"), got, want, strict=True):  # fmt: skip
            assert a == b, (day, name)
        full.close()
        reset_reclustered(con)
    kinds = {k for (k,) in con.execute("SELECT kind FROM linkage.person_id_changes").fetchall()}
    assert {"merge", "split"} <= kinds, kinds


# --------------------------------------------------------------- several deliveries


def _edit(frame: pd.DataFrame, uid: str, **values: object) -> None:
    for column, value in values.items():
        frame.loc[frame["unique_id"] == uid, column] = value


def _days(district: pd.DataFrame) -> list[pd.DataFrame]:
    """Three deliveries after day 1: corrections, ends (deregistered, deleted, inactive),
    a reactivation, a removal and a return, newcomers, and a phone that now repeats."""
    ids = list(district["unique_id"])
    phone_of = dict(zip(district["unique_id"], district["phone_std"], strict=True))
    day = _day2(district)  # a rename, a removal, a second health record, a death
    _edit(day, ids[5], phone_std=phone_of[ids[40]])
    _edit(day, ids[7], record_status="inactive")
    days = [day.copy()]
    # the dead record reactivated, the removed one back, a birth corrected, a soft delete
    day = pd.concat([day, district[district["unique_id"] == ids[10]]], ignore_index=True)
    _edit(day, ids[20], record_status="active")
    _edit(day, ids[41], birth_date=date(1990, 5, 2), birth_ym="1990-05")
    _edit(day, ids[50], record_status="deleted")
    day = day[day["unique_id"] != ids[60]].reset_index(drop=True)
    days.append(day.copy())
    # only a status back to active and a blank phone (blank counts as missing)
    _edit(day, ids[7], record_status="active")
    _edit(day, ids[70], phone_std=" ")
    days.append(day)
    return days


def _diff_counting_everything(
    con: duckdb.DuckDBPyConnection, tf_cols: list[str], boundaries: tuple[float, float]
) -> dict[str, set[str]]:
    """What `incremental._diff` must find, from its definitions: every record's
    fingerprint compared, and every name's and phone's count over all records now and
    at the last linkage (what `_diff` computed before it kept only the changes)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fp AS
            SELECT f.unique_id, {fingerprint_sql(MODEL_COLUMNS, "f")} AS feature_hash,
                   f.record_status, h.feature_hash AS old_hash, h.record_status AS old_status
            FROM {FEATURES} f LEFT JOIN {FEATURE_HASHES} h ON h.record_id = f.unique_id"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rescore AS "
        "SELECT unique_id FROM _fp WHERE old_hash IS DISTINCT FROM feature_hash"
    )
    ids = {str(r[0]) for r in con.execute("SELECT unique_id FROM _fp").fetchall()}
    stored = dict(con.execute(f"SELECT record_id, feature_hash FROM {FEATURE_HASHES}").fetchall())
    changed = {str(r[0]) for r in con.execute("SELECT unique_id FROM _rescore").fetchall()}
    removed = set(stored) - ids
    con.execute("CREATE OR REPLACE TEMP TABLE _tf (unique_id VARCHAR)")
    totals = {}
    reweigh: set[tuple[str, str, int]] = set()
    for col in tf_cols:
        now = dict(con.execute(f"SELECT unique_id, {value_sql(col)} FROM {FEATURES}").fetchall())
        then = dict(con.execute(f"SELECT record_id, {col} FROM {FEATURE_HASHES}").fetchall())
        count_now = Counter(v for v in now.values() if v is not None)
        count_then = Counter(v for v in then.values() if v is not None)
        touched = changed | removed
        candidates = {now.get(u) for u in touched} | {then.get(u) for u in touched}
        # a count that fell beyond the tolerance: holders scored again among themselves
        fell = {
            v for v in candidates - {None}
            if 0 < count_now[v] < count_then[v]
            and math.log2(count_then[v] / count_now[v]) > incremental.TF_TOLERANCE_BITS
        }  # fmt: skip
        holders = [(u,) for u, v in now.items() if v in fell and u not in changed]
        if holders:
            con.executemany("INSERT INTO _tf VALUES (?)", holders)
        # a count that rose beyond the tolerance: stored pairs re-weighted
        reweigh |= {
            (col, v, count_now[v]) for v in candidates - {None}
            if count_now[v] > count_then[v] > 0
            and math.log2(count_now[v] / count_then[v]) > incremental.TF_TOLERANCE_BITS
        }  # fmt: skip
        totals[col] = (count_then.total(), count_now.total())
    incremental._rescore_near_boundaries(con, totals, boundaries, "linkage.predictions")
    incremental._rescore_held_apart(con, boundaries[0], "linkage.predictions")
    def ids(sql: str) -> set[str]:
        return {str(r[0]) for r in con.execute(sql).fetchall()}

    rescore = ids("SELECT unique_id FROM _rescore")
    found = {
        "changed": changed,
        "removed": removed,
        "status": ids("SELECT unique_id FROM _fp WHERE old_hash = feature_hash "
                      "AND old_status IS DISTINCT FROM record_status"),
        "rescore": rescore,
        "tf": ids("SELECT unique_id FROM _tf") - rescore,
        "reweigh": reweigh,
    }
    for table in ("_fp", "_rescore", "_tf"):
        con.execute(f"DROP TABLE {table}")
    return found


def _found(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    def ids(table: str) -> set[str]:
        return {str(r[0]) for r in con.execute(f"SELECT unique_id FROM {table}").fetchall()}

    return {"rescore": ids("_rescore"), "tf": ids("_tf"), "status": ids("_status"),
            "removed": ids("_removed"),
            "reweigh": set(con.execute(f"SELECT col, v, cur_n FROM {MOVED_VALUES}").fetchall())}  # fmt: skip


def test_each_delivery_links_as_counting_everything_and_as_a_full_relink(
    district: pd.DataFrame, model: Path
) -> None:
    tf_cols = tf_columns(load_model(model))
    boundaries = (0.9, 0.5)
    inc = duckdb.connect()
    _load(inc, district)
    link(inc, TABLE, model_path=model, threshold=0.9)
    write_fingerprints(inc, tf_cols)
    for day in _days(district):
        _load(inc, day)
        expected = _diff_counting_everything(inc, tf_cols, boundaries)
        counts = incremental._diff(inc, tf_cols, boundaries)
        found = _found(inc)
        assert {k: found[k] for k in ("rescore", "tf", "status", "removed", "reweigh")} == {
            k: expected[k] for k in ("rescore", "tf", "status", "removed", "reweigh")
        }
        assert counts == (len(expected["changed"]), len(expected["rescore"]) + len(expected["tf"])
                          - len(expected["changed"]), len(expected["status"]), len(expected["removed"]))  # fmt: skip
        for table in ("_rescore", "_tf", "_status", "_removed", "_fingerprint_changes", MOVED_VALUES):
            inc.execute(f"DROP TABLE {table}")

        link_incremental(inc, model_path=model, threshold=0.9, review_floor=0.01,
                         review_threshold=boundaries[1])  # fmt: skip
        # the changes the linkage found are what updates the fingerprints
        assert inc.execute("SELECT count(*) FROM _fingerprint_changes").fetchall()[0][0] > 0
        write_fingerprints(inc, tf_cols, incremental=True)
        full = duckdb.connect()
        _load(full, day)
        link(full, TABLE, model_path=model, threshold=0.9)
        write_fingerprints(full, tf_cols)
        assert _rows(inc, FEATURE_HASHES) == _rows(full, FEATURE_HASHES)
        assert _partition(inc) == _partition(full)
        inc_pairs, full_pairs = _pairs(inc), _pairs(full)
        assert set(inc_pairs) == set(full_pairs)
        assert max(abs(inc_pairs[k] - full_pairs[k]) for k in full_pairs) < 0.002


def test_fingerprints_are_rewritten_in_full_when_the_changes_do_not_fit(
    district: pd.DataFrame, model: Path
) -> None:
    tf_cols = tf_columns(load_model(model))
    day = _days(district)[0]
    con = duckdb.connect()
    _load(con, district)
    link(con, TABLE, model_path=model, threshold=0.9)
    write_fingerprints(con)  # an older kind: no term-frequency values stored
    _load(con, day)
    link_incremental(con, model_path=model, threshold=0.9, review_floor=0.01)
    write_fingerprints(con, tf_cols, incremental=True)
    full = duckdb.connect()
    _load(full, day)
    write_fingerprints(full, tf_cols)
    assert _rows(con, FEATURE_HASHES) == _rows(full, FEATURE_HASHES)
    # no changes left by a linkage (a full one, or another process): rewritten in full
    _load(con, _days(district)[1])
    _load(full, _days(district)[1])
    write_fingerprints(con, tf_cols, incremental=True)
    write_fingerprints(full, tf_cols)
    assert _rows(con, FEATURE_HASHES) == _rows(full, FEATURE_HASHES)


ZHAO = {"record_id": "hw_ehr_person:6", "feed": "hw_ehr_person", "name": "赵强",
        "phone": "13900139000", "address": "北京市朝阳区幸福里小区3号楼2单元501室",
        "record_status": "active"}  # fmt: skip
DELIVERIES = [
    [ZHANG, LI, WANG, ZHAO],
    # an end (注销), a new phone, a removal, a newcomer at a known address
    [{**ZHANG, "record_status": "deregistered"}, {**LI, "phone": "13900139000"}, ZHAO,
     {**ZHAO, "record_id": "hw_ehr_person:7", "name": "赵小强"}],
    # the end undone, the removed record back, a soft delete, a move
    [ZHANG, {**LI, "phone": "13900139000", "address": "北京市朝阳区光明路8号"}, WANG,
     {**ZHAO, "record_status": "deleted"}, {**ZHAO, "record_id": "hw_ehr_person:7", "name": "赵小强"}],
    # nothing new
    [ZHANG, {**LI, "phone": "13900139000", "address": "北京市朝阳区光明路8号"}, WANG,
     {**ZHAO, "record_status": "deleted"}, {**ZHAO, "record_id": "hw_ehr_person:7", "name": "赵小强"}],
]  # fmt: skip


def test_standardising_each_delivery_equals_standardising_it_afresh() -> None:
    con = duckdb.connect()
    done = []
    for rows in DELIVERIES:
        _stage(con, rows)
        result = standardise(con)
        done.append((result.standardised, result.removed))
        afresh = duckdb.connect()
        _stage(afresh, rows)
        assert standardise(afresh).full
        for table in (FEATURES, STANDARDISED):
            assert _rows(con, table) == _rows(afresh, table)
    assert done == [(4, 0), (3, 1), (4, 0), (0, 0)]


def test_features_written_elsewhere_are_standardised_afresh() -> None:
    con = duckdb.connect()
    _stage(con, DELIVERIES[0])
    standardise(con)
    con.execute(f"DELETE FROM {FEATURES} WHERE unique_id = 'ps_population:1'")
    again = standardise(con)
    assert (again.full, again.standardised, again.records) == (True, 4, 4)
