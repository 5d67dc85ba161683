"""Scoring on Spark (local mode) gives the links DuckDB gives, on a generated district.

One district is run through the hub on DuckDB (which trains the model). Then the same
features are scored with the same model on PySpark, and `sharehub run` with
``SHAREHUB_LINKAGE_BACKEND=spark`` runs the same deliveries into a second warehouse. The
pairs must agree to 1e-9 in probability (Spark sums floats in another order; measured
differences are ~1e-16), the clusters must be the same partition, and the published
persons must be identical.

Not skipped without pyspark or Java: `spark_session` then fails with the install line,
because a scaling path nobody runs is a path that silently breaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from linkage import predict
from linkage.review import constraints
from linkage.spark_backend import SparkConfig, spark_session
from sharehub import pipeline
from sharehub.cli import main
from sharehub.generate import generate
from sharehub.settings import Settings
from sharehub.warehouse import connect

pytestmark = [pytest.mark.integration, pytest.mark.spark]

PERSONS = 1_000
SEED = 11
TOLERANCE = 1e-9


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local SparkSession for every Spark test (the JVM takes seconds to start)."""
    session = spark_session(SparkConfig(work_dir=tmp_path_factory.mktemp("spark-session")))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-district")
    generate(out, persons=PERSONS, seed=SEED, day=1)
    return out


def env(district: Path, name: str) -> dict[str, str]:
    return {
        "SHAREHUB_WAREHOUSE": str(district / f"{name}.duckdb"),
        "SHAREHUB_LANDING": str(district / "landing"),
        "SHAREHUB_HEALTH_URL": f"sqlite:///{district / 'health.db'}",
        "SHAREHUB_MODEL_PATH": str(district / "model.json"),
        "SHAREHUB_PROGRESS": "0",
    }


@pytest.fixture(scope="module")
def on_duckdb(district: Path) -> Settings:
    """The reference: the whole hub on DuckDB, which also trains the model."""
    settings = Settings.from_env(env(district, "duckdb"))
    con = connect(settings)
    try:
        summary = pipeline.run(con, settings)
    finally:
        con.close()
    assert summary.trained and (summary.link_mode, summary.link_backend) == ("full", "duckdb")
    return settings


def partition(con: duckdb.DuckDBPyConnection, table: str) -> set[frozenset[str]]:
    rows = con.execute(f"SELECT list(unique_id) FROM {table} GROUP BY cluster_id").fetchall()
    return {frozenset(r[0]) for r in rows}


def assert_same_pairs(con: duckdb.DuckDBPyConnection, ours: str, theirs: str) -> None:
    """Same columns and types, same pairs, same levels; weights and probabilities to 1e-9."""
    assert (
        con.execute(f"DESCRIBE {ours}").fetchall() == con.execute(f"DESCRIBE {theirs}").fetchall()
    )
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {ours}").fetchall()]
    floats = [c for c in columns if c == "match_weight" or c.startswith(("match_p", "mw_"))]
    exact = [c for c in columns if c not in floats]
    assert floats and "gamma_name" in exact
    unmatched, worst = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE a.unique_id_l IS NULL OR b.unique_id_l IS NULL),
               max(greatest({", ".join(f"abs(a.{c} - b.{c})" for c in floats)}))
        FROM {ours} a FULL JOIN {theirs} b USING (unique_id_l, unique_id_r)
        """
    ).fetchall()[0]
    assert unmatched == 0
    assert worst is not None and worst <= TOLERANCE, f"largest difference {worst}"
    cols = ", ".join(exact)
    differing = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {ours} EXCEPT SELECT {cols} FROM {theirs})"
    ).fetchall()[0][0]
    assert differing == 0


def test_spark_scores_the_same_pairs_into_the_same_clusters(
    spark: Any, on_duckdb: Settings, tmp_path: Path
) -> None:
    con = connect(on_duckdb)
    try:
        kwargs = {"model_path": on_duckdb.model_path, "threshold": on_duckdb.match_threshold}
        assert predict.plan(con, **kwargs).incremental  # DuckDB would score only changes
        assert predict.plan(con, **kwargs, backend="spark").reason == (
            "the Spark backend scores all pairs each run"
        )
        result = predict.link(
            con, "linkage.person_features", **kwargs, constraints=constraints(con),
            predictions_table="spark.predictions", clusters_table="spark.clusters",
            backend="spark", spark=SparkConfig(work_dir=tmp_path / "spark"),
        )  # fmt: skip
        assert (
            result.scored_pairs
            == con.execute("SELECT count(*) FROM linkage.predictions").fetchall()[0][0]
        )
        assert_same_pairs(con, "spark.predictions", "linkage.predictions")
        assert partition(con, "spark.clusters") == partition(con, "linkage.clusters")
    finally:
        con.close()
    assert list((tmp_path / "spark").glob("run-*")) == []  # the Parquet hand-over is removed


def published(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, list[tuple[Any, ...]]]:
    xref = (
        "SELECT * REPLACE (round(match_probability, 9) AS match_probability) "
        f"FROM {db}.shared.person_xref ORDER BY record_id"
    )
    return {
        "person": con.execute(f"SELECT * FROM {db}.shared.person ORDER BY person_id").fetchall(),
        "person_xref": con.execute(xref).fetchall(),
    }


def test_sharehub_run_on_spark_publishes_the_same_persons(
    spark: Any, on_duckdb: Settings, district: Path
) -> None:
    spark_env = {
        **env(district, "spark"),
        "SHAREHUB_LINKAGE_BACKEND": "spark",
        "SHAREHUB_SPARK_DIR": str(district / "spark-work"),
    }
    result = CliRunner().invoke(main, ["run"], env=spark_env)
    assert result.exit_code == 0, result.output
    assert "linkage full: the Spark backend scores all pairs each run" in result.output
    assert "full on spark" in result.output  # the run summary names where pairs were scored
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{spark_env['SHAREHUB_WAREHOUSE']}' AS s (READ_ONLY)")
        con.execute(f"ATTACH '{on_duckdb.warehouse}' AS d (READ_ONLY)")
        assert_same_pairs(con, "s.linkage.predictions", "d.linkage.predictions")
        assert partition(con, "s.linkage.clusters") == partition(con, "d.linkage.clusters")
        ours = published(con, "s")
        assert len(ours["person"]) > PERSONS * 0.8
        assert ours == published(con, "d")
    finally:
        con.close()
