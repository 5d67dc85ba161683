"""Pull, validate, quarantine and stage the four department feeds.

The public surface the CLI and the Airflow DAGs call: :func:`pull_pending`,
:func:`pull_batch`, :func:`pull_health` and :func:`build_person_records`, plus the
:class:`BatchResult` they return; :func:`check_ledger` recounts the row accounting and
:func:`freshness` checks each feed against its contract's latency SLA. Everything else in this package is a step they compose:
``manifest`` (verify a delivery), ``readers`` (files → text rows), ``health`` (the SQL
feed), ``validate`` (contract checks, quarantine), ``staging`` (raw, history) and
``ledger`` (``raw.batches``, watermarks, row accounting).

Conventions: ``row_number`` in ``raw.<feed>``, ``staging.<feed>`` and ``quarantine.rows``
is the 1-based ordinal of the data row as a person reading the file counts it (the first
row under the header is 1; header, title and blank rows are not counted); for the health
table it is the row's position in the pull, ordered by ``updated_at`` then ``record_id``.
``quarantine.rows`` holds one row per failing data row: ``column_name``/``check_name``/
``failure_value`` of its first failure (delivered header names), ``reason`` listing all,
``failures`` (JSON list of every failure) and ``row_json`` (the row as delivered).
"""

from __future__ import annotations

from schemas.contract import FEEDS
from sharehub.feeds.freshness import Freshness, freshness
from sharehub.feeds.ledger import check_ledger
from sharehub.feeds.person_records import build_person_records
from sharehub.feeds.pull import BatchResult, pull_batch, pull_health, pull_pending

__all__ = [
    "FEEDS",
    "BatchResult",
    "Freshness",
    "build_person_records",
    "check_ledger",
    "freshness",
    "pull_batch",
    "pull_health",
    "pull_pending",
]
