"""One settings object for the whole hub, read from ``SHAREHUB_*`` variables at run time.

Why one object: every stage is a plain function that takes its inputs as arguments, so the
CLI, the Airflow DAGs and the tests can build settings differently (environment, flags,
temporary folders) and pass the same object down. Nothing reads the environment later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sharehub.errors import ConfigError

_PREFIX = "SHAREHUB_"


@dataclass(frozen=True)
class Settings:
    """Where the hub reads and writes, and the few knobs an operator may turn.

    Defaults follow DESIGN.md: everything under ``./data`` relative to the working
    directory, so a fresh clone runs without any configuration.
    """

    warehouse: Path = Path("data/warehouse.duckdb")
    landing: Path = Path("data/landing")
    health_url: str | None = None
    publish_url: str | None = None
    model_path: Path = Path("data/model.json")
    # Pairs at or above this match probability are linked into one person.
    match_threshold: float = 0.95
    # Pairs from here up to the match threshold go to the clerical review queue.
    review_threshold: float = 0.5
    seed: int = 42
    threads: int | None = None
    memory_limit: str | None = None
    linkage_backend: str = "duckdb"
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
            ("PUBLISH_URL", str),
            ("MODEL_PATH", Path),
            ("MATCH_THRESHOLD", float),
            ("REVIEW_THRESHOLD", float),
            ("SEED", int),
            ("THREADS", int),
            ("MEMORY_LIMIT", str),
            ("LINKAGE_BACKEND", str),
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
        for key in ("warehouse", "landing", "model_path"):
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
        if self.linkage_backend not in ("duckdb", "spark"):
            raise ConfigError(
                f"linkage_backend={self.linkage_backend!r}; expected 'duckdb' or 'spark'"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads={self.threads} must be at least 1")

    @property
    def resolved_health_url(self) -> str:
        """The health front-end URL; a local SQLite file beside the landing root by default."""
        if self.health_url:
            return self.health_url
        return f"sqlite:///{(self.landing.parent / 'health.db').resolve()}"
