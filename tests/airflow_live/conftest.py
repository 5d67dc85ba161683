"""The live-Airflow layer: real scheduler, dag-processor and api-server processes.

Registered here (not in pyproject.toml) so the layer carries its own marker: select it
with ``-m airflow_live`` or leave it out with ``-m "not airflow_live"``.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "airflow_live: starts a real Airflow (scheduler, dag-processor, api-server); minutes, not seconds",
    )
