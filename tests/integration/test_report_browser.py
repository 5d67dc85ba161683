"""The auditors' report rendered by a real browser: headless Chromium (Debian's package).

generate → run (day 1) → generate day 2 → run gives a warehouse with two published
versions; `sharehub report` writes the HTML; Chromium loads it from a file: URL with
networking off and dumps the DOM it built and a screenshot. The headline numbers stored
in audit.sharing_metrics must be in that DOM, and every chart must be there as SVG.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from sharehub import pipeline
from sharehub.cli import main
from sharehub.generate import generate
from sharehub.report_charts import share
from sharehub.settings import Settings
from sharehub.warehouse import connect

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed; install it with "
               "`apt-get update && apt-get install -y chromium` (CI does, in .ci/run)",
    ),
]
# Offline and quiet: no sandbox (root in CI), no GPU, nothing fetched in the background.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("district")
    for day in (1, 2):
        generate(out, persons=1_000, seed=7, day=day)
        settings = Settings.from_env(
            {}, warehouse=out / "warehouse.duckdb", landing=out / "landing",
            health_url=f"sqlite:///{out / 'health.db'}", model_path=out / "model.json",
            progress=False,
        )
        con = connect(settings)
        try:
            assert pipeline.run(con, settings).version == day
        finally:
            con.close()
    return out / "warehouse.duckdb"


@pytest.fixture(scope="module")
def report(warehouse: Path) -> Path:
    out = warehouse.parent / "report.html"
    result = CliRunner().invoke(main, ["report", "--out", str(out), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    return out


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


def stored(warehouse: Path) -> dict[tuple[str, str], float]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT metric, scope, value FROM audit.sharing_metrics "
            "WHERE version = (SELECT max(version) FROM audit.publish_versions)"
        ).fetchall()
    finally:
        con.close()
    return {(m, s): float(v) for m, s, v in rows if v is not None}


def test_chromium_shows_the_headline_numbers(report: Path, warehouse: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    values = stored(warehouse)
    assert "sharehub audit report, version 2" in dom
    for metric in ("sharing_rate", "repeat_entry_reduction"):
        card = dom.split(f'id="headline-{metric}"')[1].split("</div></div>")[0]
        assert share(values[(metric, "all")]) in card, (metric, card)
    for department in ("ps", "ca", "hw"):
        row = dom.split(f'id="sharing-{department}"')[1].split("</tr>")[0]
        assert share(values[("sharing_rate", department)]) in row, department
    assert f'{values[("persons_out", "all")]:,.0f}</b> persons in the master index' in dom
    # every chart survived parsing: 2 trend lines, 2 department bars, 2 match-rate bars, 1 histogram
    assert dom.count("<svg") == 7
    assert '<polyline' in dom.split('aria-label="Data-sharing rate per version"')[1].split("</svg>")[0]


def test_chromium_draws_a_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1100,3000", f"--screenshot={shot}", report.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1100, 3000)
    assert len(data) > 50_000  # text and charts, not a blank page
