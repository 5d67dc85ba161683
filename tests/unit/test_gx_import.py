"""Great Expectations imported in the background: used only after the import finished,
and a failed import fails where validation needs it."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sharehub.publish import gx_import


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new process: no import started, none finished."""
    monkeypatch.setattr(gx_import, "_thread", None)
    monkeypatch.setattr(gx_import, "_imported", lambda: False)


def test_load_waits_for_the_background_import(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    release, done = threading.Event(), []

    def slow() -> None:
        if threading.current_thread().name == "import-great-expectations":
            release.wait(5)
            done.append("background")

    monkeypatch.setattr(gx_import, "_import", slow)
    gx_import.start()
    gx_import.start()  # once only
    threading.Timer(0.2, release.set).start()
    gx = gx_import.load()
    assert done == ["background"]  # load returned only after the thread had finished
    assert hasattr(gx.expectations, "ExpectColumnValuesToBeNull")


def test_a_failed_background_import_is_raised_where_validation_needs_it(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    threads: list[str] = []

    def broken() -> None:
        threads.append(threading.current_thread().name)
        raise ImportError("great_expectations is not installed")

    monkeypatch.setattr(gx_import, "_import", broken)
    with caplog.at_level("WARNING", logger="sharehub.publish.gx_import"):
        gx_import.start()
        with pytest.raises(ImportError, match="not installed"):
            gx_import.load()
    assert threads == ["import-great-expectations", threading.current_thread().name]
    assert "background import of great_expectations failed" in caplog.text


def test_publish_starts_the_import_before_its_own_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    """Publication overlaps the import with building the version."""
    from test_publish_validation import district

    from sharehub.publish import publish, tables

    events: list[str] = []
    monkeypatch.setattr(gx_import, "start", lambda: events.append("start"))
    original = tables._stage

    def stage(*args: Any, **kwargs: Any) -> Any:
        events.append("stage")
        return original(*args, **kwargs)

    monkeypatch.setattr(tables, "_stage", stage)
    publish(district(2), run_id="r1")
    assert events[0] == "start" and "stage" in events


def test_batches_are_not_fingerprinted() -> None:
    """GE would hash (or pickle) every batch for a label nothing reads; if an upgrade
    renames the switch, this fails instead of validation silently slowing down."""
    from great_expectations.execution_engine import pandas_execution_engine

    gx_import.load()
    assert pandas_execution_engine.HASH_THRESHOLD == 0
