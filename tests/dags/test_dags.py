"""DAG layer: the DAGs import cleanly, stay thin, and run end to end with dag.test().

The dag.test() run must end with the same shared tables as `sharehub run` on the same
deliveries and the same saved model: the DAGs are only another caller of the library.
An ingest run with nothing new must skip its pull and leave the Asset alone, so linkage
is not triggered by a quiet day.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sharehub import pipeline
from sharehub.generate import generate
from sharehub.settings import Settings
from sharehub.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
HEAVY = {"pandas", "duckdb", "splink", "great_expectations", "pandera", "numpy", "sqlalchemy"}
EXPECTED = {
    "sharehub_ingest_ps_population", "sharehub_ingest_ps_housing",
    "sharehub_ingest_ca_recipients", "sharehub_ingest_hw_ehr_person",
    "sharehub_linkage", "sharehub_publish", "sharehub_report", "sharehub_review",
}
COMPARED = ("shared.person", "shared.person_xref")


def test_no_heavy_imports_at_parse_time() -> None:
    for path in DAG_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only; task bodies import lazily
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in HEAVY, f"{path.name} imports {name} at parse time"


def test_dagbag_has_every_dag_without_errors(airflow_db: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == EXPECTED
    for dag_id, dag in bag.dags.items():
        for task in dag.tasks:
            assert task.pool == "sharehub_warehouse", f"{dag_id}.{task.task_id} writes outside the pool"
            assert (task.retries or 0) >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_dags_pass_ruff_air3() -> None:
    """Airflow 3 migration rules (removed and moved names) stay clean in the DAG files."""
    ruff = Path(sys.executable).with_name("ruff")
    found = subprocess.run([str(ruff), "check", "--select", "AIR3", "--no-cache", str(ROOT / "dags")],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0, found.stdout + found.stderr


def test_schedules_chain_the_assets(airflow_db: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from sharehub.airflow_assets import MASTER_INDEX, REVIEWED, SHARED, STAGED

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    for feed, asset in STAGED.items():
        dag = bag.dags[f"sharehub_ingest_{feed}"]
        assert [t.task_id for t in dag.topological_sort()] == ["wait_for_delivery", "pull"]
        assert dag.get_task("pull").outlets == [asset]
        assert dag.get_task("wait_for_delivery").outlets == []
        assert set(dag.params) == {"feed", "batch_id"}
    linkage = _asset_names(bag.dags["sharehub_linkage"].timetable.asset_condition)
    assert linkage == {a.name for a in STAGED.values()} | {REVIEWED.name}
    review = bag.dags["sharehub_review"]
    assert [t.task_id for t in review.topological_sort()] == ["decisions_waiting", "announce"]
    assert review.get_task("announce").outlets == [REVIEWED]
    assert bag.dags["sharehub_linkage"].get_task("link").outlets == [MASTER_INDEX]
    assert bag.dags["sharehub_publish"].get_task("publish").outlets == [SHARED]
    for dag_id, asset in (("sharehub_publish", MASTER_INDEX), ("sharehub_report", SHARED)):
        assert _asset_names(bag.dags[dag_id].timetable.asset_condition) == {asset.name}


def _asset_names(condition: Any) -> set[str]:
    """Names of the Assets in a schedule condition (an Asset, or any/all of several)."""
    if hasattr(condition, "objects"):
        return set().union(*(_asset_names(c) for c in condition.objects))
    return {condition.name}


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in run.get_task_instances()}


def _asset_events(name: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return int(session.scalar(
            select(func.count()).select_from(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.name == name)
        ) or 0)


@pytest.mark.integration
def test_dag_runs_match_the_cli_pipeline(airflow_db: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    generate(tmp_path, persons=400, seed=11, day=1)
    common = {"landing": tmp_path / "landing", "model_path": tmp_path / "model.json",
              "health_url": f"sqlite:///{tmp_path / 'health.db'}", "progress": False}
    cli_settings = Settings.from_env({}, warehouse=tmp_path / "cli.duckdb", **common)
    con = connect(cli_settings)
    try:
        pipeline.run(con, cli_settings)  # trains and saves the model both paths use
    finally:
        con.close()

    monkeypatch.setenv("SHAREHUB_WAREHOUSE", str(tmp_path / "dag.duckdb"))
    monkeypatch.setenv("SHAREHUB_LANDING", str(common["landing"]))
    monkeypatch.setenv("SHAREHUB_MODEL_PATH", str(common["model_path"]))
    monkeypatch.setenv("SHAREHUB_HEALTH_URL", str(common["health_url"]))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    order = [f"sharehub_ingest_{f}" for f in
             ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")]
    for dag_id in [*order, "sharehub_linkage", "sharehub_publish", "sharehub_report"]:
        run = bag.dags[dag_id].test()
        assert str(run.state).endswith("success"), f"{dag_id} ended {run.state}"
        assert set(_states(run).values()) == {"success"}, f"{dag_id}: {_states(run)}"
    for feed in ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"):
        assert _asset_events(f"staging_{feed}") >= 1, f"no Asset event for {feed}"

    # A second day with nothing new: every ingest run ends green, its pull skipped,
    # and no Asset event (so nothing would trigger linkage).
    before = {feed: _asset_events(f"staging_{feed}") for feed in order}
    for dag_id in order:
        run = bag.dags[dag_id].test()
        assert str(run.state).endswith("success"), f"{dag_id} ended {run.state}"
        assert _states(run) == {"wait_for_delivery": "success", "pull": "skipped"}, dag_id
    assert {feed: _asset_events(f"staging_{feed}") for feed in order} == before
    # Re-running a batch that is already loaded is a clean no-op too.
    run = bag.dags[order[0]].test(run_conf={"batch_id": "20261101-001"})
    assert _states(run) == {"wait_for_delivery": "success", "pull": "skipped"}

    # No review decision yet: the review DAG ends skipped, without an Asset event.
    announced = _asset_events("review_decisions")
    run = bag.dags["sharehub_review"].test()
    assert _states(run) == {"decisions_waiting": "success", "announce": "skipped"}
    assert _asset_events("review_decisions") == announced

    report = tmp_path / "reports" / "metrics-v1.json"
    body = json.loads(report.read_text(encoding="utf-8"))
    assert body["version"] == 1
    assert {m["metric"] for m in body["metrics"]} >= {"records_in", "persons_out"}

    dag_settings = Settings.from_env({}, warehouse=tmp_path / "dag.duckdb", **common)
    results = {}
    for name, settings in (("cli", cli_settings), ("dag", dag_settings)):
        con = connect(settings, read_only=True)
        try:
            results[name] = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                             for t in COMPARED}
        finally:
            con.close()
    assert results["dag"] == results["cli"]


def test_quiet_day_skips_and_a_wrong_batch_fails_once_with_feed_and_batch_logged(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "landing").mkdir()
    monkeypatch.setenv("SHAREHUB_WAREHOUSE", str(tmp_path / "dag.duckdb"))
    monkeypatch.setenv("SHAREHUB_LANDING", str(tmp_path / "landing"))
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["sharehub_ingest_ps_housing"]

    quiet = dag.test()
    assert str(quiet.state).endswith("success")
    assert _states(quiet) == {"wait_for_delivery": "success", "pull": "skipped"}
    assert not (tmp_path / "dag.duckdb").exists(), "a quiet day must not create the warehouse"

    capfd.readouterr()
    wrong = dag.test(run_conf={"batch_id": "20991231-001"})
    assert str(wrong.state).endswith("failed")
    tis = {ti.task_id: ti for ti in wrong.get_task_instances()}
    assert tis["wait_for_delivery"].try_number == 1, "a missing batch folder must not be retried"
    # Where the line lands depends on whether Airflow configured logging earlier in the
    # session (its structlog console, or the root handlers pytest captures): read both.
    output = capfd.readouterr()
    logged = [line for line in (output.out + output.err).splitlines() if "[sharehub.dags]" in line]
    logged += [r.getMessage() for r in caplog.records if r.name == "sharehub.dags"]
    assert any("failed (try 1): feed=ps_housing batch=20991231-001" in m and "no delivery folder" in m
               for m in logged), logged


@pytest.mark.integration
def test_a_review_decision_alone_reaches_the_master_index(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No delivery, one clerk's decision: review DAG → Asset → linkage applies it."""
    from airflow.dag_processing.dagbag import DagBag

    from linkage import review

    generate(tmp_path, persons=300, seed=5, day=1)
    settings = Settings.from_env({}, warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing",
                                 model_path=tmp_path / "model.json", progress=False,
                                 health_url=f"sqlite:///{tmp_path / 'health.db'}")
    con = connect(settings)
    try:
        pipeline.run(con, settings)
        record, other = con.execute(
            "SELECT min(record_id), max(record_id) FROM linkage.person_ids "
            "WHERE person_id = (SELECT person_id FROM linkage.person_ids GROUP BY 1 "
            "HAVING count(*) >= 2 ORDER BY 1 LIMIT 1)"
        ).fetchall()[0]
        review.decide(con, f"{record},{other}", "no-match", by="clerk", reason="two people")
    finally:
        con.close()
    for name in ("WAREHOUSE", "LANDING", "MODEL_PATH", "HEALTH_URL"):
        monkeypatch.setenv(f"SHAREHUB_{name}", str(getattr(settings, name.lower())))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    before = _asset_events("review_decisions")
    run = bag.dags["sharehub_review"].test()
    assert _states(run) == {"decisions_waiting": "success", "announce": "success"}
    assert _asset_events("review_decisions") == before + 1
    assert str(bag.dags["sharehub_linkage"].test().state).endswith("success")
    con = connect(settings, read_only=True)
    try:
        ids = dict(con.execute("SELECT record_id, person_id FROM linkage.person_ids "
                               "WHERE record_id IN (?, ?)", [record, other]).fetchall())
    finally:
        con.close()
    assert ids[record] != ids[other]  # the clerk's "no-match" split them
    run = bag.dags["sharehub_review"].test()  # applied: nothing waits any more
    assert _states(run) == {"decisions_waiting": "success", "announce": "skipped"}
