"""DAG layer: the DAGs import cleanly, stay thin, and run end to end with dag.test().

The dag.test() run must end with the same shared tables as `sharehub run` on the same
deliveries and the same saved model: the DAGs are only another caller of the library.
"""

from __future__ import annotations

import ast
from pathlib import Path

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
    "sharehub_linkage", "sharehub_publish",
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
            assert task.retries >= 1


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
    for dag_id in [*order, "sharehub_linkage", "sharehub_publish"]:
        run = bag.dags[dag_id].test()
        assert str(run.state).endswith("success"), f"{dag_id} ended {run.state}"

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
