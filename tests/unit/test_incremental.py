"""Incremental linkage: what counts as changed, and that linking only the change gives
what a full re-link gives.

The district is the hand-built one of `test_linkage_model` (households, twins, damaged
IDs); a "day 2" is made from it by hand: a renamed record, a removed one, a newcomer
who is somebody's second health record, and a death (deregistered).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_linkage_model import _load, build_district

from linkage import incremental
from linkage.changes import standardise, tf_columns, write_fingerprints
from linkage.incremental import link_incremental
from linkage.predict import link, plan, record_run
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
    _stage(con, [ZHANG, LI, WANG, zhao])
    standardise(con)
    write_fingerprints(con, ["name_std", "phone_std"])
    newcomer = {**WANG, "record_id": "ca_recipients:5"}
    _stage(con, [{**ZHANG, "record_status": "deregistered"}, {**LI, "phone": "13900139000"},
                 newcomer, zhao])  # fmt: skip
    standardise(con)
    # changed: LI and the newcomer; for frequencies: 赵强, whose phone LI now shares
    # (王芳's name count is unchanged: one left, one came); status: ZHANG; removed: WANG
    assert incremental._diff(con, ["name_std", "phone_std"]) == (2, 1, 1, 1)
    rescored = {r[0] for r in con.execute("SELECT unique_id FROM _rescore").fetchall()}
    assert rescored == {"hw_ehr_person:2", "ca_recipients:5"}
    # 赵强 is scored again only against the other holders of his phone's moved count
    assert con.execute("SELECT unique_id FROM _tf").fetchall() == [("hw_ehr_person:6",)]


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
    left = inc.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%splink%' "
        "OR table_name LIKE '\\_\\_sharehub%' ESCAPE '\\' OR table_name LIKE '\\_%' ESCAPE '\\'"
    ).fetchall()
    assert left == []


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
