"""Settings come from SHAREHUB_* variables; bad values fail early with the value named."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharehub.errors import ConfigError, SharehubError
from sharehub.settings import Settings


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.warehouse == Path("data/warehouse.duckdb")
    assert settings.landing == Path("data/landing")
    assert settings.resolved_health_url.startswith("sqlite:///")
    assert settings.resolved_health_url.endswith("data/health.db")


def test_environment_then_overrides() -> None:
    env = {"SHAREHUB_WAREHOUSE": "/tmp/w.duckdb", "SHAREHUB_MATCH_THRESHOLD": "0.9",
           "SHAREHUB_HMAC_KEY": "secret", "SHAREHUB_THREADS": "2",
           "SHAREHUB_HEALTH_OVERLAP_SECONDS": "120"}
    settings = Settings.from_env(env, warehouse=None, landing="/x/landing")
    assert settings.health_overlap_seconds == 120
    assert Settings.from_env({}).health_overlap_seconds == 600
    assert settings.warehouse == Path("/tmp/w.duckdb")  # None override ignored
    assert settings.landing == Path("/x/landing")
    assert settings.match_threshold == 0.9 and settings.threads == 2
    assert "secret" not in repr(settings)  # keys never reach logs


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SHAREHUB_MATCH_THRESHOLD": "high"}, "SHAREHUB_MATCH_THRESHOLD='high'"),
        ({"SHAREHUB_MATCH_THRESHOLD": "1.5"}, "match_threshold=1.5"),
        ({"SHAREHUB_LINKAGE_BACKEND": "oracle"}, "'oracle'"),
        ({"SHAREHUB_LINKAGE_BACKEND": "Spark"}, "expected one of 'duckdb', 'spark'"),
        ({"SHAREHUB_SPARK_MASTER": "local[two]"}, "spark_master='local[two]'"),
        ({"SHAREHUB_SPARK_MASTER": "spark-master:7077"}, "spark://host:port"),
        ({"SHAREHUB_SPARK_CONF": "executor memory"}, "'executor memory' is not key=value"),
        ({"SHAREHUB_SPARK_CONF": "=8g"}, "SHAREHUB_SPARK_CONF"),
        ({"SHAREHUB_THREADS": "0"}, "threads=0"),
        ({"SHAREHUB_HEALTH_OVERLAP_SECONDS": "-1"}, "SHAREHUB_HEALTH_OVERLAP_SECONDS"),
        ({"SHAREHUB_HEALTH_OVERLAP_SECONDS": "10m"}, "SHAREHUB_HEALTH_OVERLAP_SECONDS='10m'"),
    ],
)
def test_bad_values_name_the_value(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        Settings.from_env(env)
    assert fragment in str(info.value)


def test_errors_carry_where() -> None:
    exc = SharehubError("bad date", feed="ps_population", batch="20261101-001", row=7,
                        column="出生日期")
    assert str(exc) == "[feed=ps_population batch=20261101-001 row=7 column=出生日期] bad date"
    assert exc.row == 7
