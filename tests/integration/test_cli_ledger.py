"""`sharehub batches` and `sharehub quarantine` as a person reads them.

One warehouse holds a loaded batch with quarantined rows (a malformed date, an escape
sequence, rich markup, a 1 MB field), a rejected batch later fixed, a rejected batch not
fixed, and a health pull. The output must name feed, batch, row, column, check, value and
reason, fit an 80-column terminal, and show delivered text inertly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from sharehub.cli import main
from sharehub.feeds import pull_health, pull_pending
from sharehub.settings import Settings

pytestmark = pytest.mark.integration

POP, HOUSE, HW = "ps_population", "ps_housing", "hw_ehr_person"
B1, B2 = "20261101-001", "20261102-001"
BIG = "幸" * (1 << 20)


@pytest.fixture
def warehouse(
    con: duckdb.DuckDBPyConnection, settings: Settings, deliver: Callable[..., Path],
    health_db: Callable[..., Path], samples: Any,
) -> Path:
    deliver(POP, B1, [
        samples.row(POP, 人员编号="P0001"),
        samples.row(POP, 人员编号="P0002", 出生日期="19480230"),
        samples.row(POP, 人员编号="P0003", 姓名="张\x1b[2J伟"),
        samples.row(POP, 人员编号="P0004", 居住地址=BIG),
        samples.row(POP, 人员编号="P0005", 性别="[/]", 人员类别="[red]常住"),
    ])
    deliver(POP, B2, samples.rows(POP, 1), extract_type="delta", rows_declared=3)  # count mismatch
    deliver(HOUSE, B1, samples.rows(HOUSE, 2))
    (Path(settings.landing) / HOUSE / B1 / "manifest.json").unlink()  # never fixed
    health_db(samples.rows(HW, 2))
    results = pull_pending(con, settings, feeds=[POP, HOUSE, HW])
    assert [(r.feed, r.batch_id, r.status) for r in results] == [
        (POP, B1, "loaded"), (POP, B2, "rejected"), (HOUSE, B1, "rejected"),
        (HW, "20261101T080000000000", "loaded")]
    deliver(POP, B2, samples.rows(POP, 1), extract_type="delta")  # the fixed re-delivery
    assert [r.status for r in pull_pending(con, settings, feeds=[POP])] == ["loaded"]
    assert pull_health(con, settings) is None
    con.close()  # the CLI opens the file read-only
    return Path(settings.warehouse)


def _run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "80"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _flat(output: str) -> str:
    """The output with line wrapping undone, for phrases that may wrap at 80 columns."""
    return " ".join(output.split())


def _fits(output: str) -> None:
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "\x1b" not in output  # neither colour codes nor a delivered escape sequence


def test_batches_shows_every_batch_its_accounting_and_why_one_was_refused(warehouse: Path) -> None:
    result = _run("batches", "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output
    out = result.output
    _fits(out)
    for text in (POP, HOUSE, HW, B1, B2, "20261101T080000000000", "full", "delta", "incremental"):
        assert text in out
    pop_line = next(line for line in out.splitlines() if line.startswith(B1) and "full" in line)
    assert pop_line.split() == [B1, "full", "loaded", "5", "1", "4", "ok"]
    flat = _flat(out)
    assert "20261102-001 rejected (3 rows declared) — fixed: a later delivery of this batch" in flat
    assert "has 1 data rows but the manifest declares 3" in flat
    assert "20261101-001 rejected: [feed=ps_housing batch=20261101-001] no manifest.json" in flat
    assert "ps_housing: nothing loaded yet (SLA 2.0 d): STALE" in flat
    assert "SLA 24.0 h" in flat  # health, from its contract
    assert "recount: every loaded batch balances" in flat


def test_batches_for_one_feed(warehouse: Path) -> None:
    out = _run("batches", "--feed", HW, "--warehouse", str(warehouse)).output
    assert HW in out and POP not in out and HOUSE not in out


def test_quarantine_names_feed_batch_row_column_check_value_and_reason(warehouse: Path) -> None:
    result = _run("quarantine", "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output
    out = result.output
    _fits(out)
    assert "quarantine (quarantine.rows): 4 rows, by first failure" in out
    assert "ps_population / 20261101-001 / row 2 (key P0002)" in out
    assert "column 出生日期  check format  value '19480230'" in out
    assert "reason: '19480230' does not match the contract's format (yyyyMMdd)" in out
    assert "ps_population / 20261101-001 / row 3 (key P0003)" in out
    assert "value '张\\x1b[2J伟'" in out  # the escape is shown, not obeyed
    assert "U+001B" in out
    assert "column 居住地址  check max_length" in out
    assert "(1,048,576 characters)" in out and "1,048,576 characters; the contract allows at most 200" in out
    assert len(out) < 20_000  # a 1 MB field is measured, not dumped
    assert "value '[/]'" in out and "value '[red]常住'" in out  # markup is text: both failures of row 5
    assert "check valid_values" in out and "not in the contract's code list (男, 女)" in out


def test_quarantine_filters_limits_and_shows_the_row_as_delivered(warehouse: Path) -> None:
    wh = str(warehouse)
    one = _run("quarantine", "--feed", POP, "--batch", B1, "--limit", "1", "--row", "--warehouse", wh).output
    assert "row 2 (key P0002)" in one and "row 3" not in one
    assert "showing 1 of 4 quarantined rows; use --limit to see more" in one
    assert "row as delivered:" in one and "出生日期 = '19480230'" in one and "联系电话 = '13800138000'" in one
    none = _run("quarantine", "--feed", HOUSE, "--warehouse", wh).output
    assert "no quarantined rows for feed ps_housing" in none
    assert "no quarantined rows for batch nope" in _run("quarantine", "--batch", "nope", "--warehouse", wh).output


@pytest.mark.parametrize("command", ["batches", "quarantine"])
def test_an_unknown_feed_is_refused(tmp_path: Path, command: str) -> None:
    result = _run(command, "--feed", "ps_populaton", "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 2
    assert "expected one of ps_population" in result.output


def test_commands_on_an_empty_warehouse_say_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    result = _run("batches", "--warehouse", str(path))
    assert result.exit_code == 1 and "table raw.batches does not exist" in result.output


def test_batches_exits_non_zero_when_the_recount_fails(warehouse: Path) -> None:
    """A broken invariant must stop a script or a scheduler, not just print in red."""
    con = duckdb.connect(str(warehouse))
    con.execute("UPDATE raw.batches SET rows_staged = rows_staged + 1 "
                "WHERE feed = 'ps_population' AND batch_id = '20261101-001' AND status = 'loaded'")
    con.close()
    result = _run("batches", "--warehouse", str(warehouse))
    assert result.exit_code == 1
    assert "recount FAILED" in result.output and "BROKEN" in result.output
