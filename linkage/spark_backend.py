"""Score record pairs on Spark: the part of linkage that grows with the number of pairs.

Why only scoring: blocking and pairwise comparison are the one step whose cost grows with
pairs rather than records, and the one Splink runs unchanged on Spark. Standardisation,
training (bounded by its samples), clustering, id assignment and publishing stay on the
hub's DuckDB, so a Spark run writes the same tables as a DuckDB run and everything after
scoring is shared (docs/decisions/0002-spark-scores-duckdb-clusters.md).

The model file stays in the DuckDB dialect it was trained in. Each run rebuilds the
settings in Spark SQL from `linkage.model` and copies the trained parameters across,
after checking that the file was trained on the same comparisons (`model_for_dialect`).

The hand-over is Parquet in a working folder: DuckDB writes the projected input there,
Spark reads it and writes the scored pairs beside it, and DuckDB reads them back. With a
cluster, that folder must be a shared filesystem at the same path on every machine.
pyspark is imported inside the functions, so this module imports without it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkage.model import settings_creator
from sharehub.errors import LinkageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from linkage.predict import ScoringJob
    from sharehub.settings import Settings

log = logging.getLogger(__name__)

# Keys of a comparison level that training sets; everything else comes from linkage.model.
TRAINED_KEYS = (
    "m_probability",
    "u_probability",
    "fix_m_probability",
    "fix_u_probability",
    "tf_adjustment_column",
    "tf_adjustment_weight",
    "tf_minimum_u_value",
)
# Sized for local mode on a small machine; SHAREHUB_SPARK_CONF overrides any of them.
DEFAULT_CONF = {
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    "spark.ui.showConsoleProgress": "false",
}
INSTALL_HINT = "install it with `pip install 'sharehub[spark]'` and a JDK 17"


@dataclass(frozen=True)
class SparkConfig:
    """Where Spark runs and where the Parquet hand-over lives (docs/scaling.md)."""

    master: str = "local[2]"
    work_dir: Path = Path("data/spark")
    conf: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkConfig:
        return cls(settings.spark_master, settings.resolved_spark_dir, settings.spark_conf_pairs)


def _levels(model: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(str(c["output_column_name"]), c["comparison_levels"]) for c in model["comparisons"]]


def _mismatch(model: dict[str, Any], rebuilt: dict[str, Any]) -> str | None:
    """How a saved model differs from `linkage.model` rebuilt in the saved dialect, if it does."""
    saved, current = _levels(model), _levels(rebuilt)
    if [n for n, _ in saved] != [n for n, _ in current]:
        return f"comparisons {[n for n, _ in saved]} but the code has {[n for n, _ in current]}"
    for (name, levels), (_, now) in zip(saved, current, strict=True):
        if len(levels) != len(now):
            return f"comparison {name!r} has {len(levels)} levels but the code has {len(now)}"
        for i, (old, new) in enumerate(zip(levels, now, strict=True)):
            for key in ("label_for_charts", "sql_condition"):
                if old.get(key) != new.get(key):
                    return f"{name!r} level {i} {key} is {old.get(key)!r}, the code has {new.get(key)!r}"
    rules = [r["blocking_rule"] for r in model.get("blocking_rules_to_generate_predictions", [])]
    if rules != [r["blocking_rule"] for r in rebuilt["blocking_rules_to_generate_predictions"]]:
        return "its prediction blocking rules differ from linkage.blocking"
    return None


def model_for_dialect(
    model: dict[str, Any], dialect: str, *, model_path: Path | str = "the model"
) -> dict[str, Any]:
    """The saved ``model`` rewritten for ``dialect`` (e.g. "spark"), parameters unchanged.

    Why rebuild instead of translating the saved SQL: `linkage.model` names functions per
    dialect (jaro_winkler_similarity in DuckDB, the jar's jaro_winkler in Spark), which
    Splink's creators know and a plain SQL translation does not. The saved model must have
    been trained on exactly these comparisons and blocking rules, or the translated model
    would score other SQL than the file says; that raises `LinkageError`.
    """
    creator = settings_creator()
    problem = _mismatch(model, creator.create_settings_dict(model.get("sql_dialect", "duckdb")))
    if problem:
        raise LinkageError(
            f"model file {model_path} does not match linkage/model.py: {problem}; "
            "retrain it (delete the file and run `sharehub run`) before scoring on Spark"
        )
    out = creator.create_settings_dict(dialect)
    out["probability_two_random_records_match"] = model["probability_two_random_records_match"]
    for (_, levels), (_, target) in zip(_levels(model), _levels(out), strict=True):
        for old, new in zip(levels, target, strict=True):
            new.update({key: old[key] for key in TRAINED_KEYS if key in old})
    return out


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and not (Path(java_home) / "bin" / "java").is_file():
        raise LinkageError(
            f"the Spark backend needs Java but JAVA_HOME={java_home} has no bin/java; {INSTALL_HINT}"
        )
    if not java_home and shutil.which("java") is None:
        raise LinkageError(
            f"the Spark backend needs Java, and none is on PATH or in JAVA_HOME; {INSTALL_HINT}"
        )


def spark_session(config: SparkConfig) -> SparkSession:
    """The running SparkSession, or a new one for ``config`` with Splink's UDF jar loaded.

    An existing session is reused as it is (Spark allows one per process), so a caller
    that needs other settings must stop it first.
    """
    try:
        from pyspark.sql import SparkSession
        from splink.backends.spark import similarity_jar_location
    except ImportError as exc:
        raise LinkageError(f"the Spark backend needs pyspark ({exc}); {INSTALL_HINT}") from exc
    _require_java()
    conf = {**DEFAULT_CONF, "spark.sql.warehouse.dir": str(config.work_dir.resolve() / "warehouse")}
    conf.update(config.conf)
    # Splink's string similarity functions (jaro_winkler, damerau_levenshtein) are in a jar.
    conf["spark.jars"] = ",".join(
        j for j in (similarity_jar_location(), conf.get("spark.jars")) if j
    )
    builder = SparkSession.builder.master(config.master).appName("sharehub-linkage")
    for key, value in conf.items():
        builder = builder.config(key, value)
    started = SparkSession.getActiveSession() is None
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own and py4j errors
        raise LinkageError(f"cannot start Spark with master {config.master}: {exc}") from exc
    if started:
        # Splink's lineage breaks make Spark warn about every empty checkpoint folder, and
        # py4j logs each connection it closes, even at exit after logging has shut down.
        spark.sparkContext.setLogLevel("ERROR")
        logging.getLogger("py4j").setLevel(logging.WARNING)
        log.info("started Spark %s with master %s", spark.version, config.master)
    return spark


@contextmanager
def scored_on_spark(job: ScoringJob, config: SparkConfig) -> Iterator[str]:
    """Score the job's input on Spark; yield a DuckDB temp table of the scored pairs.

    The pairs carry Splink's prediction columns, as on DuckDB, for pairs at or above the
    job's floor. The Parquet folder goes once the pairs are in DuckDB, the table when the
    block ends.
    """
    con = job.con
    spark_model = model_for_dialect(job.model, "spark", model_path=job.model_path)
    spark = spark_session(config)
    run_dir = config.work_dir.resolve() / f"run-{uuid.uuid4().hex[:12]}"
    features, predictions = run_dir / "input.parquet", run_dir / "predictions"
    table = f"__sharehub_spark_scored_{run_dir.name[4:]}"
    started = time.perf_counter()
    try:
        run_dir.mkdir(parents=True)
        con.execute(f"COPY {job.input_table} TO {_literal(features)} (FORMAT parquet)")
        _predict(spark, spark_model, features, predictions, floor=job.floor, run_dir=run_dir)
        con.execute(
            f"CREATE TEMP TABLE {table} AS "
            f"SELECT * FROM read_parquet({_literal(predictions / '*.parquet')})"
        )
    except Exception as exc:  # splink, pyspark, py4j and duckdb raise many unrelated types
        raise LinkageError(
            f"prediction on {job.source} with {job.model_path} on Spark ({config.master}) "
            f"failed: {exc}"
        ) from exc
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    pairs = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    seconds = time.perf_counter() - started
    log.info("scored %d pairs on Spark (%s) in %.1f s", pairs, config.master, seconds)
    try:
        yield table
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _predict(
    spark: SparkSession,
    settings: dict[str, Any],
    features: Path,
    predictions: Path,
    *,
    floor: float,
    run_dir: Path,
) -> None:
    from splink import Linker
    from splink.backends.spark import SparkAPI

    # Splink breaks lineage by writing intermediate tables under the checkpoint folder.
    spark.sparkContext.setCheckpointDir(str(run_dir / "checkpoints"))
    db_api = SparkAPI(spark_session=spark)
    try:
        linker = Linker(
            db_api.register(spark.read.parquet(str(features))), settings, log_level=None
        )
        scored = linker.inference.predict(threshold_match_probability=floor, warning_mode="never")
        scored.as_spark_dataframe().write.mode("overwrite").parquet(str(predictions))
    finally:
        db_api.delete_tables_created_by_splink_from_db()
