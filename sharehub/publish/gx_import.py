"""Great Expectations, imported once per process, in a background thread while the
publication builds the version.

Why: importing ``great_expectations`` takes about 3 s of one core in a fresh process, and
every scheduled run (``sharehub run``, an Airflow task) is a fresh process that pays it
inside the publish stage. `sharehub.publish.publish` starts the import before computing
the new rows, changing the tables in place and hashing them — DuckDB statements, which
release the GIL — so the import overlaps them instead of following them (on the 1M day 2
validation no longer waits for it; at 100k it waits ~0.6 s). Starting it earlier in the
run (identify, houses) was tried: at 1M it saves nothing more, and it slowed those
stages' many short statements and Python steps, which then compete for the GIL.

Why it is safe: :func:`load` is the only way in. It joins the thread first and then
imports in the calling thread as before, which is a no-op when the background import
succeeded and raises the real error when it failed (a failed import leaves no module
behind, so it runs again and fails again, in the caller's thread). Nothing else runs in
the thread, and it never touches a DuckDB connection; the main thread imports nothing
Great Expectations imports meanwhile (`sharehub.publish` is imported before it starts),
so the two threads never wait on each other's module locks.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _quiet() -> None:
    """GE logs a line per expectation and per registered method at INFO; the hub's INFO
    log stays readable unless someone configured GE's logger on purpose."""
    ge_log = logging.getLogger("great_expectations")
    if ge_log.level == logging.NOTSET:
        ge_log.setLevel(logging.WARNING)


def _import() -> None:
    import great_expectations
    import great_expectations.expectations  # noqa: F401  # gx.expectations is a submodule


def _background() -> None:
    try:
        _import()
    except Exception as error:  # raised again by load(), in the thread that needs GE
        log.warning("background import of great_expectations failed (%s); it is retried "
                    "when validation starts", error)


def _imported() -> bool:
    return "great_expectations.expectations" in sys.modules


def start() -> None:
    """Start importing Great Expectations in a daemon thread, unless it is imported or
    on its way. Cheap and idempotent: call it as soon as validation is certain to come."""
    global _thread
    with _lock:
        if _thread is not None or _imported():
            return
        _quiet()
        _thread = threading.Thread(target=_background, name="import-great-expectations", daemon=True)
        _thread.start()


def load() -> Any:
    """The ``great_expectations`` module, imported (waiting for a background import)."""
    thread = _thread
    if thread is not None and thread.is_alive():
        started = time.perf_counter()
        thread.join()
        log.info("waited %.2f s for the background import of great_expectations",
                 time.perf_counter() - started)
    _quiet()
    _import()
    import great_expectations as gx

    # This one module sets its own logger to INFO and logs a temporary path per context.
    base = logging.getLogger("great_expectations.data_context.types.base")
    if base.level == logging.INFO and logging.getLogger("great_expectations").level >= logging.WARNING:
        base.setLevel(logging.NOTSET)
    _no_batch_fingerprints()
    return gx


def _no_batch_fingerprints() -> None:
    """Stop GE fingerprinting every pandas batch.

    GE hashes each batch smaller than ``HASH_THRESHOLD`` bytes (and pickles it whole when
    a column holds lists, as ``person.feeds`` does) only to label it in the result's batch
    markers, which nothing here reads: 1.6 of 2.1 s validating 47k golden rows on the 1M
    day 2. The expectations and their results are untouched.
    """
    engine: Any = sys.modules.get("great_expectations.execution_engine.pandas_execution_engine")
    if engine is not None and hasattr(engine, "HASH_THRESHOLD"):
        engine.HASH_THRESHOLD = 0
