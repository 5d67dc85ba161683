"""One settings object for the whole hub, read from ``SHAREHUB_*`` variables at run time.

Why one object: every stage is a plain function that takes its inputs as arguments, so the
CLI, the Airflow DAGs and the tests can build settings differently (environment, flags,
temporary folders) and pass the same object down. Nothing reads the environment later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sharehub.errors import ConfigError

_PREFIX = "SHAREHUB_"
LINKAGE_BACKENDS = ("duckdb", "spark")
# Masters the Spark backend can drive: local mode, a standalone cluster, YARN, Kubernetes.
_SPARK_MASTER = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?|yarn|(spark|k8s)://\S+")


@dataclass(frozen=True)
class Settings:
    """Where the hub reads and writes, and the few knobs an operator may turn.

    Defaults follow DESIGN.md: everything under ``./data`` relative to the working
    directory, so a fresh clone runs without any configuration.
    """

    warehouse: Path = Path("data/warehouse.duckdb")
    landing: Path = Path("data/landing")
    health_url: str | None = None
    # The health pull re-reads this far behind its watermark: a row committed late with an
    # updated_at the watermark has passed is still found (rows already landed are skipped).
    health_overlap_seconds: int = 600
    publish_url: str | None = None
    model_path: Path = Path("data/model.json")
    # Pairs at or above this match probability are linked into one person.
    match_threshold: float = 0.95
    # Pairs from here up to the match threshold go to the clerical review queue.
    review_threshold: float = 0.5
    seed: int = 42
    threads: int | None = None
    memory_limit: str | None = None
    # Where pairs are scored: "duckdb" in the hub, or "spark" (see docs/scaling.md).
    linkage_backend: str = "duckdb"
    spark_master: str = "local[2]"
    # Working folder for the Spark backend's Parquet; <warehouse folder>/spark when unset.
    spark_dir: Path | None = None
    # Extra Spark configuration as "key=value,key=value".
    spark_conf: str | None = None
    hmac_key: str | None = field(default=None, repr=False)
    hmac_key_version: str = "v1"
    progress: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``SHAREHUB_*`` variables; explicit overrides win.

        ``None`` overrides are ignored so a CLI can pass its optional flags straight in.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}

        def get(name: str) -> str | None:
            value = env.get(_PREFIX + name)
            return value if value not in (None, "") else None

        for name, convert in (
            ("WAREHOUSE", Path),
            ("LANDING", Path),
            ("HEALTH_URL", str),
            ("HEALTH_OVERLAP_SECONDS", int),
            ("PUBLISH_URL", str),
            ("MODEL_PATH", Path),
            ("MATCH_THRESHOLD", float),
            ("REVIEW_THRESHOLD", float),
            ("SEED", int),
            ("THREADS", int),
            ("MEMORY_LIMIT", str),
            ("LINKAGE_BACKEND", str),
            ("SPARK_MASTER", str),
            ("SPARK_DIR", Path),
            ("SPARK_CONF", str),
            ("HMAC_KEY", str),
            ("HMAC_KEY_VERSION", str),
        ):
            raw = get(name)
            if raw is None:
                continue
            try:
                values[name.lower()] = convert(raw)
            except ValueError as exc:
                raise ConfigError(
                    f"{_PREFIX}{name}={raw!r} is not a valid {convert.__name__}"
                ) from exc
        if get("PROGRESS") is not None:
            values["progress"] = get("PROGRESS") not in ("0", "false", "no")
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("warehouse", "landing", "model_path", "spark_dir"):
            if key in values:
                values[key] = Path(values[key])
        settings = cls(**values)
        settings.check()
        return settings

    def with_(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (tests and CLI flags)."""
        return replace(self, **changes)

    def check(self) -> None:
        """Reject values that would only fail later, deep inside a stage."""
        if not 0.0 < self.match_threshold < 1.0:
            raise ConfigError(
                f"match_threshold={self.match_threshold} must lie strictly between 0 and 1"
            )
        if not 0.0 < self.review_threshold < self.match_threshold:
            raise ConfigError(
                f"review_threshold={self.review_threshold} must lie between 0 and "
                f"match_threshold={self.match_threshold}"
            )
        if self.linkage_backend not in LINKAGE_BACKENDS:
            raise ConfigError(
                f"linkage_backend={self.linkage_backend!r} (SHAREHUB_LINKAGE_BACKEND); "
                f"expected one of {', '.join(repr(b) for b in LINKAGE_BACKENDS)}"
            )
        if not _SPARK_MASTER.fullmatch(self.spark_master):
            raise ConfigError(
                f"spark_master={self.spark_master!r} (SHAREHUB_SPARK_MASTER); expected "
                "local, local[N], local[*], spark://host:port, yarn or k8s://host:port"
            )
        parse_spark_conf(self.spark_conf)
        if self.health_overlap_seconds < 0:
            raise ConfigError(
                f"health_overlap_seconds={self.health_overlap_seconds} "
                "(SHAREHUB_HEALTH_OVERLAP_SECONDS) must be 0 or more"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads={self.threads} must be at least 1")

    @property
    def resolved_spark_dir(self) -> Path:
        """The Spark backend's working folder: ``spark_dir``, else beside the warehouse."""
        return self.spark_dir if self.spark_dir is not None else self.warehouse.parent / "spark"

    @property
    def spark_conf_pairs(self) -> tuple[tuple[str, str], ...]:
        """``spark_conf`` as (key, value) pairs (see `parse_spark_conf`)."""
        return parse_spark_conf(self.spark_conf)

    @property
    def resolved_health_url(self) -> str:
        """The health front-end URL; a local SQLite file beside the landing root by default."""
        if self.health_url:
            return self.health_url
        return f"sqlite:///{(self.landing.parent / 'health.db').resolve()}"


def parse_spark_conf(text: str | None) -> tuple[tuple[str, str], ...]:
    """Read ``SHAREHUB_SPARK_CONF`` ("key=value,key=value") into (key, value) pairs.

    An item without ``=`` continues the previous value, so that a list value such as
    ``spark.jars=a.jar,b.jar`` survives the split on commas.
    """
    pairs: list[list[str]] = []
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs.append([key.strip(), value.strip()])
        elif pairs and item.strip():
            pairs[-1][1] += "," + item.strip()
        elif item.strip() or sep:
            raise ConfigError(
                f"spark_conf={text!r} (SHAREHUB_SPARK_CONF): {item.strip()!r} is not "
                "key=value; expected e.g. spark.executor.memory=8g,spark.sql.shuffle.partitions=64"
            )
    return tuple((key, value) for key, value in pairs)
