"""sharehub: collect once, share many times.

The public surface is small on purpose: settings, errors and the stage packages
(`sharehub.feeds`, `sharehub.staging`, `sharehub.publish`, `sharehub.metrics`). The CLI
and the Airflow DAGs are two thin callers of the same functions.
"""

from __future__ import annotations

import warnings

from sharehub.errors import SharehubError
from sharehub.settings import Settings

# With pyspark installed (the Spark backend), pandera imports pyspark.pandas, which warns
# on every run that it does not fully support pandas 3. The hub never uses pyspark.pandas.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

__all__ = ["Settings", "SharehubError"]
__version__ = "0.1.0"
