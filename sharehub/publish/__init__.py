"""Publication of shared tables: golden records, cross-references, restricted tables, versions.

Write-audit-publish: candidates are built, validated with Great Expectations suites derived
from their contracts (``contracts/shared_*.yaml``) and swapped in inside one transaction,
so a reader sees the previous version or the new one, never half of either. A published
version is then copied to the subscribers' PostgreSQL, where each department reads its own
views only (docs/publishing.md).
"""

from __future__ import annotations

from sharehub.publish.expectations import ExpectationFailure
from sharehub.publish.postgres import PostgresPublishResult, publish_to_postgres
from sharehub.publish.tables import PublishResult, publish

__all__ = [
    "ExpectationFailure",
    "PostgresPublishResult",
    "PublishResult",
    "publish",
    "publish_to_postgres",
]
