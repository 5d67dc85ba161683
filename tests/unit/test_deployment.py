"""docker-compose.yml cannot be run here (no Docker engine): check it by reading it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from sharehub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def test_services_and_health_checks() -> None:
    services = COMPOSE["services"]
    for name in (*AIRFLOW, "airflow-db", "shared-db", "airflow-init"):
        assert name in services, name
    for name in (*AIRFLOW, "airflow-db", "shared-db"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert {services[n]["command"] for n in AIRFLOW} == {
        "api-server", "scheduler", "dag-processor", "triggerer"}


def test_airflow_metadata_in_postgres_and_volumes_declared() -> None:
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert "@airflow-db:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    declared = set(COMPOSE["volumes"])
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in declared, f"{name} uses undeclared volume {source}"
    mounts = {v.split(":")[1] for v in COMPOSE["services"]["airflow-scheduler"]["volumes"]}
    assert {"/opt/sharehub/landing", "/opt/sharehub/warehouse", "/opt/airflow/logs"} <= mounts


def test_sharehub_variables_are_settings_the_code_reads() -> None:
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    fields = {f.name.upper() for f in dataclasses.fields(Settings)}
    used = {k.removeprefix("SHAREHUB_") for k in env if k.startswith("SHAREHUB_")}
    assert used <= fields, f"compose sets unknown settings: {used - fields}"
    assert Settings.from_env({k: str(v) for k, v in env.items()
                              if k.startswith("SHAREHUB_") and "${" not in str(v)})


def test_no_secrets_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for key in ("PASSWORD", "HMAC_KEY", "FERNET_KEY", "JWT_SECRET"):
        for line in text.splitlines():
            if key in line and ":" in line and not line.strip().startswith("#"):
                value = line.split(":", 1)[1]
                assert "${" in value or re.search(rf"{key}\w*:\s*$", line), line


def test_dockerfile_builds_on_airflow_3_3() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+", dockerfile, re.M)
    for package in ("sharehub", "linkage", "schemas", "contracts"):
        assert f"COPY --chown=airflow:root {package} " in dockerfile
