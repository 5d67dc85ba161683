"""Publication of shared tables: golden records, cross-references, versions.

Write-audit-publish: a candidate is built, checked, and swapped in inside one transaction,
so a reader sees the previous version or the new one, never half of either.
"""

from __future__ import annotations

from sharehub.publish.tables import PublishResult, publish

__all__ = ["PublishResult", "publish"]
