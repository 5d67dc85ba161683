"""The CLI as a person uses it: generate → run → export → evaluate, and clear errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sharehub.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli")
    runner = CliRunner()
    result = runner.invoke(main, ["generate", "--persons", "300", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    env = {"SHAREHUB_WAREHOUSE": str(out / "w.duckdb"), "SHAREHUB_MODEL_PATH": str(out / "m.json")}
    result = runner.invoke(main, ["run", "--landing", str(out / "landing")], env=env)
    assert result.exit_code == 0, result.output
    assert "persons (master index)" in result.output and "published version" in result.output
    assert "full on duckdb" in result.output  # the linkage mode and where pairs were scored
    return out


def test_export_csv_and_parquet(district: Path) -> None:
    runner = CliRunner()
    warehouse = str(district / "w.duckdb")
    con = duckdb.connect(warehouse, read_only=True)
    count = con.execute("SELECT count(*) FROM shared.person_xref").fetchall()[0][0]
    con.close()
    for suffix in (".csv", ".parquet"):
        out = district / f"xref{suffix}"
        result = runner.invoke(main, ["export", "shared.person_xref", "--out", str(out),
                                      "--warehouse", warehouse])
        assert result.exit_code == 0, result.output
        assert f"wrote {count:,} rows" in result.output
    assert pq.read_table(district / "xref.parquet").num_rows == count
    lines = (district / "xref.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("person_id,feed,source_key") and len(lines) == count + 1


def test_evaluate_prints_pairwise_scores(district: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--truth", str(district / "truth.csv"),
                                       "--warehouse", str(district / "w.duckdb")])
    assert result.exit_code == 0, result.output
    for measure in ("precision", "recall", "f1", "clusters_predicted", "true_persons"):
        assert measure in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "shared.nope", "--out", "x.csv"], "table shared.nope does not exist"),
        (["export", "person", "--out", "x.csv"], "must be schema-qualified"),
        (["export", "shared.person", "--out", "x.xlsx"], "expected .csv or .parquet"),
    ],
)
def test_errors_are_clear_and_exit_non_zero(district: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [*args, "--warehouse", str(district / "w.duckdb")])
    assert result.exit_code == 1
    assert message in result.output


def test_missing_warehouse_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["batches", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1
    assert "run `sharehub run` first" in result.output


def test_error_location_survives_the_terminal(district: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors start with "[feed=… batch=…]": rich must print it, not read it as markup."""
    from sharehub import export
    from sharehub.errors import DeliveryRejected

    def broken(*_: object) -> int:
        raise DeliveryRejected("bad bytes", feed="ps_housing", batch="20261102-001", row=3)

    monkeypatch.setattr(export, "export_table", broken)
    result = CliRunner().invoke(main, ["export", "shared.person", "--out", str(district / "p.csv"),
                                       "--warehouse", str(district / "w.duckdb")])
    assert result.exit_code == 1
    assert "[feed=ps_housing batch=20261102-001 row=3] bad bytes" in result.output
