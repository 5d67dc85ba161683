"""The Spark backend without Spark: the model's translation, its settings and its errors.

The trained model is saved in DuckDB SQL; `model_for_dialect` rebuilds it in Spark SQL and
carries the trained parameters across. These tests pin that nothing but the SQL changes,
and that a model file trained on other comparisons is refused rather than mistranslated.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from linkage.model import settings_creator
from linkage.predict import link, plan
from linkage.spark_backend import (
    TRAINED_KEYS,
    SparkConfig,
    model_for_dialect,
    spark_session,
)
from sharehub.errors import LinkageError
from sharehub.settings import Settings


def trained_model() -> dict[str, Any]:
    """A model as `linkage.train` saves it: DuckDB SQL, every level with its own m and u."""
    model = settings_creator().create_settings_dict("duckdb")
    model["sql_dialect"] = "duckdb"
    model["probability_two_random_records_match"] = 8.8e-5
    for c, comparison in enumerate(model["comparisons"]):
        for i, level in enumerate(comparison["comparison_levels"]):
            if not level.get("is_null_level"):
                level["m_probability"] = round(0.01 * (c + 1) + 0.001 * i, 6)
                level["u_probability"] = round(0.0001 * (c + 1) + 0.00001 * i, 8)
    return model


def levels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [lv for c in model["comparisons"] for lv in c["comparison_levels"]]


def test_the_spark_model_keeps_every_trained_parameter() -> None:
    model = trained_model()
    spark = model_for_dialect(model, "spark")
    assert spark["probability_two_random_records_match"] == 8.8e-5
    pairs = list(zip(levels(model), levels(spark), strict=True))
    for old, new in pairs:
        assert {k: new.get(k) for k in TRAINED_KEYS} == {k: old.get(k) for k in TRAINED_KEYS}
        assert new["label_for_charts"] == old["label_for_charts"]
    sql = [new["sql_condition"] for _, new in pairs]
    assert any("jaro_winkler(" in s for s in sql)  # the jar's UDF, not DuckDB's built-in
    assert not any("jaro_winkler_similarity" in s for s in sql)
    assert all("`" in r["blocking_rule"] for r in spark["blocking_rules_to_generate_predictions"])
    assert trained_model() == model  # the saved model is not changed in place


def test_fixed_and_term_frequency_settings_come_from_the_file() -> None:
    model = trained_model()
    name_exact = model["comparisons"][0]["comparison_levels"][1]
    name_exact["tf_adjustment_weight"] = 0.5
    name_exact["fix_m_probability"] = True
    spark = model_for_dialect(model, "spark")
    copied = spark["comparisons"][0]["comparison_levels"][1]
    assert (copied["tf_adjustment_column"], copied["tf_adjustment_weight"]) == ("name_std", 0.5)
    assert copied["fix_m_probability"] is True


def _rename(model: dict[str, Any]) -> None:
    model["comparisons"][0]["output_column_name"] = "full_name"


def _drop_level(model: dict[str, Any]) -> None:
    del model["comparisons"][2]["comparison_levels"][3]


def _relabel(model: dict[str, Any]) -> None:
    model["comparisons"][4]["comparison_levels"][2]["label_for_charts"] = "same flat"


def _other_sql(model: dict[str, Any]) -> None:
    model["comparisons"][1]["comparison_levels"][2]["sql_condition"] = "id_norm_l = id_norm_r"


def _other_blocking(model: dict[str, Any]) -> None:
    model["blocking_rules_to_generate_predictions"].pop()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (_rename, "comparisons ['full_name'"),
        (_drop_level, "'birth' has 7 levels but the code has 8"),
        (_relabel, "'contact' level 2 label_for_charts is 'same flat'"),
        (_other_sql, "'id' level 2 sql_condition"),
        (_other_blocking, "blocking rules"),
    ],
)
def test_a_model_trained_on_other_comparisons_is_refused(change: Any, fragment: str) -> None:
    model = copy.deepcopy(trained_model())
    change(model)
    with pytest.raises(LinkageError) as info:
        model_for_dialect(model, "spark", model_path=Path("data/old-model.json"))
    message = str(info.value)
    assert fragment in message and "data/old-model.json" in message and "retrain" in message


def test_missing_java_is_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LinkageError, match=r"needs Java.*JDK 17"):
        spark_session(SparkConfig(work_dir=tmp_path))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(LinkageError, match=r"JAVA_HOME=.*jdk has no bin/java"):
        spark_session(SparkConfig(work_dir=tmp_path))


def test_missing_pyspark_is_named_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(LinkageError, match=r"needs pyspark.*pip install 'sharehub\[spark\]'"):
        spark_session(SparkConfig(work_dir=tmp_path))


def test_an_unknown_backend_fails_before_any_work(tmp_path: Path) -> None:
    con = duckdb.connect()
    with pytest.raises(LinkageError, match="backend='hadoop'; expected one of duckdb, spark"):
        link(con, "nowhere", model_path=tmp_path / "m.json", threshold=0.9, backend="hadoop")


def test_the_spark_backend_always_plans_a_full_linkage(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA linkage")
    spark = plan(con, model_path=tmp_path / "m.json", threshold=0.9, backend="spark")
    assert (spark.mode, spark.reason) == ("full", "the Spark backend scores all pairs each run")
    asked = plan(con, model_path=tmp_path / "m.json", threshold=0.9, backend="spark", full=True)
    assert asked.reason == "full re-link requested"


def test_spark_settings_from_the_environment() -> None:
    default = Settings.from_env({"SHAREHUB_WAREHOUSE": "/srv/hub/warehouse.duckdb"})
    assert (default.linkage_backend, default.spark_master) == ("duckdb", "local[2]")
    assert default.resolved_spark_dir == Path("/srv/hub/spark")
    assert default.spark_conf_pairs == ()
    env = {
        "SHAREHUB_LINKAGE_BACKEND": "spark",
        "SHAREHUB_SPARK_MASTER": "spark://spark-master:7077",
        "SHAREHUB_SPARK_DIR": "/mnt/shared/sharehub-spark",
        "SHAREHUB_SPARK_CONF": "spark.jars=/opt/a.jar,/opt/b.jar, spark.executor.memory=8g",
    }
    settings = Settings.from_env(env)
    assert settings.linkage_backend == "spark"
    assert settings.resolved_spark_dir == Path("/mnt/shared/sharehub-spark")
    assert SparkConfig.from_settings(settings) == SparkConfig(
        "spark://spark-master:7077",
        Path("/mnt/shared/sharehub-spark"),
        (("spark.jars", "/opt/a.jar,/opt/b.jar"), ("spark.executor.memory", "8g")),
    )


@pytest.mark.parametrize(
    "master", ["local", "local[4]", "local[*]", "yarn", "k8s://https://k:6443"]
)
def test_spark_masters_accepted(master: str) -> None:
    assert Settings.from_env({"SHAREHUB_SPARK_MASTER": master}).spark_master == master
