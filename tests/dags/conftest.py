"""Airflow reads its configuration when first imported: point it at a throw-away home.

Set here, at collection time, so no DAG test ever touches a developer's ~/airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sharehub-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database (dag.test() records its runs there)."""
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True, capture_output=True, env=os.environ.copy(),
    )
    return AIRFLOW_HOME
