"""sharehub: collect once, share many times.

The public surface is small on purpose: settings, errors and the stage packages
(`sharehub.feeds`, `sharehub.staging`, `sharehub.publish`, `sharehub.metrics`). The CLI
and the Airflow DAGs are two thin callers of the same functions.
"""

from __future__ import annotations

from sharehub.errors import SharehubError
from sharehub.settings import Settings

__all__ = ["Settings", "SharehubError"]
__version__ = "0.1.0"
