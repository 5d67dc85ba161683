"""docker-compose.yml and the Dockerfile cannot be run here (no Docker engine): read them.

Each test checks one wiring that would only fail at ``docker compose up``: a service
without its health check, a health check calling an endpoint that is switched off, a
setting the code does not read, a volume mounted where the settings do not look, a
secret written into the file, a required variable the docs do not mention.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from sharehub.airflow_assets import POOL
from sharehub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
SCHEDULER_ENV: dict[str, Any] = SERVICES["airflow-scheduler"]["environment"]


def _mounts(service: str) -> dict[str, tuple[str, str]]:
    """Container path → (source, options) for a service's volumes."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *options = _split_interpolated(volume)
        mounts[target] = (source, options[0] if options else "rw")
    return mounts


def _split_interpolated(volume: str) -> list[str]:
    """Split ``${VAR:-default}:/target[:ro]`` without cutting inside the ``${…}``."""
    if volume.startswith("${"):
        end = volume.index("}") + 1
        return [volume[:end], *volume[end + 1:].split(":")]
    return volume.split(":")


def _env_value(text: str) -> str:
    """A compose value with ``${VAR:?msg}`` / ``${VAR:-default}`` replaced by a sample."""
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: f"sample_{m.group(1).lower()}", text)


def test_services_and_health_checks() -> None:
    for name in (*AIRFLOW, "airflow-db", "shared-db", "airflow-init"):
        assert name in SERVICES, name
    for name in (*AIRFLOW, "airflow-db", "shared-db"):
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"
    assert {SERVICES[n]["command"] for n in AIRFLOW} == {
        "api-server", "scheduler", "dag-processor", "triggerer"}
    for name in AIRFLOW:
        assert SERVICES[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert SERVICES[name]["depends_on"]["airflow-db"]["condition"] == "service_healthy"


def test_scheduler_health_check_has_its_endpoint() -> None:
    """The scheduler serves :8974/health only when enable_health_check is on."""
    assert "8974/health" in " ".join(SERVICES["airflow-scheduler"]["healthcheck"]["test"])
    assert str(SCHEDULER_ENV["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"]).lower() == "true"


@pytest.mark.parametrize("service", [*AIRFLOW, "airflow-init"])
def test_airflow_containers_share_one_configuration(service: str) -> None:
    """Tokens, encrypted fields and the database must be the same in every container."""
    env = SERVICES[service]["environment"]
    shared = {k: v for k, v in SCHEDULER_ENV.items() if k.startswith(("AIRFLOW__", "SHAREHUB_"))}
    assert {k: env.get(k) for k in shared} == shared
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert "${" in str(env[key]) and ":?" in str(env[key]), f"{key} must be required from .env"


def test_airflow_metadata_in_postgres() -> None:
    sync = make_url(_env_value(SCHEDULER_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    async_ = make_url(_env_value(SCHEDULER_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]))
    assert (sync.drivername, async_.drivername) == ("postgresql+psycopg", "postgresql+psycopg_async")
    db = SERVICES["airflow-db"]["environment"]
    for url in (sync, async_):
        assert (url.host, url.port, url.database, url.username) == (
            "airflow-db", 5432, db["POSTGRES_DB"], db["POSTGRES_USER"])
    assert SCHEDULER_ENV["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_tasks_reach_the_execution_api() -> None:
    url = make_url(SCHEDULER_ENV["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].replace("http", "postgresql", 1))
    assert (url.host, url.port) == ("airflow-apiserver", 8080)
    assert SCHEDULER_ENV["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    assert any(str(p).endswith(":8080") for p in SERVICES["airflow-apiserver"]["ports"])


def test_volumes_declared_and_mounted_where_the_settings_look() -> None:
    declared = set(COMPOSE["volumes"])
    for name in SERVICES:
        for target, (source, _) in _mounts(name).items():
            if not source.startswith((".", "/", "${")):  # named volume, not a host path
                assert source in declared, f"{name} mounts undeclared volume {source} at {target}"
    mounts = _mounts("airflow-scheduler")
    assert {"/opt/sharehub/landing", "/opt/sharehub/warehouse", "/opt/airflow/logs"} <= set(mounts)
    assert mounts["/opt/sharehub/landing"][1] == "ro", "the hub must not change deliveries"
    assert "/opt/airflow/logs" in _mounts("airflow-apiserver"), "the UI reads task logs"

    settings = Settings.from_env({k: str(v) for k, v in SCHEDULER_ENV.items()
                                  if k.startswith("SHAREHUB_") and "${" not in str(v)})
    assert str(settings.landing) == "/opt/sharehub/landing"
    for path in (settings.warehouse, settings.model_path):
        assert path.parent == Path("/opt/sharehub/warehouse"), f"{path} is not on the warehouse volume"


def test_sharehub_variables_are_settings_the_code_reads() -> None:
    fields = {f.name.upper() for f in dataclasses.fields(Settings)}
    used = {k.removeprefix("SHAREHUB_") for k in SCHEDULER_ENV if k.startswith("SHAREHUB_")}
    assert used <= fields, f"compose sets unknown settings: {used - fields}"
    assert {"WAREHOUSE", "LANDING", "MODEL_PATH", "HEALTH_URL", "HMAC_KEY"} <= used
    publish = make_url(_env_value(SCHEDULER_ENV["SHAREHUB_PUBLISH_URL"]))
    shared = SERVICES["shared-db"]["environment"]
    assert (publish.host, publish.port, publish.database, publish.username) == (
        "shared-db", 5432, shared["POSTGRES_DB"], shared["POSTGRES_USER"])


def test_init_creates_the_warehouse_pool_with_one_slot() -> None:
    init = SERVICES["airflow-init"]
    script = " ".join(init["command"])
    assert re.search(rf"airflow pools set {POOL} 1\b", script), script
    assert "check-migrations" in script, "the entrypoint ignores a failed migration; check it"
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["restart"] == "no"


def test_no_secrets_in_the_file() -> None:
    for key in ("PASSWORD", "HMAC_KEY", "FERNET_KEY", "JWT_SECRET", "SECRET_KEY"):
        for line in COMPOSE_TEXT.splitlines():
            if key in line and ":" in line and not line.strip().startswith("#"):
                value = line.split(":", 1)[1]
                assert "${" in value or re.search(rf"{key}\w*:\s*$", line), line


def test_every_required_variable_is_documented() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_TEXT))
    assert required, "the compose file requires nothing from .env?"
    docs = (ROOT / "docs" / "airflow.md").read_text(encoding="utf-8")
    missing = sorted(v for v in required if v not in docs)
    assert not missing, f"docs/airflow.md does not mention {missing}"


def test_dockerfile_builds_on_airflow_3_3_with_the_hub_inside() -> None:
    found = re.search(r"^FROM apache/airflow:3\.3\.\d+-python(3\.\d+)\s*$", DOCKERFILE, re.M)
    assert found, "FROM apache/airflow:3.3.x-pythonX.Y expected"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    bounds = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", requires.replace(" ", ""))
    assert bounds, f"requires-python {requires!r} not of the form >=3.X,<3.Y"
    minor = int(found.group(1).split(".")[1])
    assert int(bounds.group(1)) <= minor < int(bounds.group(2)), f"image Python {found.group(1)} outside {requires}"
    for package in ("sharehub", "linkage", "schemas", "contracts"):
        assert f"COPY --chown=airflow:root {package} " in DOCKERFILE
    assert f"COPY --chown=airflow:root dags {SCHEDULER_ENV['AIRFLOW__CORE__DAGS_FOLDER']}" in DOCKERFILE
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in DOCKERFILE, "pin Airflow while installing the hub"
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] == "airflow", "the image must not run as root"
    for mount in ("/opt/sharehub/landing", "/opt/sharehub/warehouse"):
        assert mount in DOCKERFILE, f"{mount} must exist in the image, owned by airflow"
