"""A real Airflow runs the DAGs: ingest triggered over the REST API, the rest by Assets.

Why this test exists beside the dag.test() ones: dag.test() runs one DAG in this
process; only a running scheduler shows that the pieces work together: the dag-processor
parses dags/, the REST API triggers runs, tasks run through the LocalExecutor and the
execution API, the one-slot pool serialises the warehouse writers, and the Asset events
of the ingest DAGs trigger linkage, whose event triggers publish, whose event triggers
the report.

Choices, so they are not re-litigated:
- metadata in SQLite: Airflow 3 runs LocalExecutor on SQLite (``airflow standalone``
  does), and the tasks reach the database only through the api-server, so the three
  processes are the only writers;
- SimpleAuthManager with every user an admin, so a token comes from ``GET /auth/token``
  without credentials, as an operator's script against a dev instance would get it;
- the DAGs are unpaused before anything is delivered: unpausing makes the scheduler
  start each ingest DAG's run for the last daily interval, which must find nothing,
  skip its pull and emit no Asset event (so no linkage run). Only then do the
  deliveries land (the generated folders are copied in, the health table is filled)
  and the four ingest DAGs are triggered through the REST API. That also makes the
  triggered runs, not the scheduled ones, the runs that load.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from sharehub.generate import generate
from sharehub.settings import Settings
from sharehub.warehouse import connect

pytestmark = [pytest.mark.integration, pytest.mark.airflow_live]

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll request is noise

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
FEEDS = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")
INGEST = tuple(f"sharehub_ingest_{feed}" for feed in FEEDS)
DOWNSTREAM = ("sharehub_linkage", "sharehub_publish", "sharehub_report")
# Asset name → the DAG its events must trigger.
CONSUMER = {
    **{f"staging_{feed}": "sharehub_linkage" for feed in FEEDS},
    "master_person_index": "sharehub_publish",
    "shared_tables": "sharehub_report",
}
PERSONS = 300
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 240.0
TERMINAL = {"success", "failed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"({exc})"
    return "\n".join(text[-lines:])


@dataclass
class LiveAirflow:
    """Three Airflow processes on a throw-away AIRFLOW_HOME, and a REST client for them."""

    home: Path
    port: int
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    outputs: dict[str, IO[bytes]] = field(default_factory=dict)
    client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> None:
        out = (self.home / f"{name}.log").open("wb")
        self.outputs[name] = out
        # A session of its own, so stop() ends this process and the workers it forks.
        self.procs[name] = subprocess.Popen(
            [str(AIRFLOW), *args], stdout=out, stderr=subprocess.STDOUT, env=self.env,
            cwd=self.home, start_new_session=True,
        )

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for out in self.outputs.values():
            out.close()

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow process(es) exited: {dead}\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        """Tails of the process logs and of every task log that reports an error."""
        parts = [f"--- {name}.log ---\n{_tail(self.home / f'{name}.log', 40)}" for name in self.procs]
        for task_log in sorted((self.home / "logs").rglob("*.log")):
            text = task_log.read_text(encoding="utf-8", errors="replace")
            if '"level":"error"' in text.replace(" ", "") or "Traceback" in text:
                parts.append(f"--- {task_log.relative_to(self.home)} ---\n{_tail(task_log, 30)}")
        return "\n".join(parts)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.client is not None
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} → {response.status_code}: {response.text}")
        return response.json()


def _environment(home: Path, port: int, district: Path, work: Path) -> dict[str, str]:
    """Airflow and sharehub settings for the processes; nothing inherited from this session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHAREHUB_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "SHAREHUB_LANDING": str(district / "landing"),
        "SHAREHUB_HEALTH_URL": f"sqlite:///{district / 'health.db'}",
        "SHAREHUB_WAREHOUSE": str(work / "warehouse.duckdb"),
        "SHAREHUB_MODEL_PATH": str(work / "model.json"),
        "SHAREHUB_PROGRESS": "0",
    })
    return env


@pytest.fixture
def district(tmp_path: Path) -> Path:
    """Where the departments deliver: no folders yet, and a health table with no rows."""
    generated, out = tmp_path / "generated", tmp_path / "district"
    generate(generated, persons=PERSONS, seed=23, day=1)
    (out / "landing").mkdir(parents=True)
    shutil.copy(generated / "health.db", out / "health.db")
    with sqlite3.connect(out / "health.db") as db:
        db.execute("DELETE FROM hw_ehr_person")
    db.close()
    return out


def _deliver(district: Path) -> None:
    """The day's deliveries arrive: the folders land whole, the health rows appear."""
    generated = district.parent / "generated"
    for feed_dir in (generated / "landing").iterdir():
        shutil.copytree(feed_dir, district / "landing" / feed_dir.name, dirs_exist_ok=True)
    staged = district / "health.db.new"
    shutil.copy(generated / "health.db", staged)
    os.replace(staged, district / "health.db")


@pytest.fixture
def airflow(tmp_path: Path, district: Path) -> Iterator[LiveAirflow]:
    home, work = tmp_path / "airflow", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    port = _free_port()
    live = LiveAirflow(home=home, port=port, env=_environment(home, port, district, work))
    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], env=live.env, cwd=home,
                             capture_output=True, text=True, timeout=300, check=False)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    try:
        live.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", "1")
        live.start("scheduler", "scheduler")
        live.start("dag-processor", "dag-processor")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            live.check_alive()
            try:
                if httpx.get(f"{live.url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"api-server not up after {STARTUP_TIMEOUT}s\n{live.diagnostics()}")
            time.sleep(1)
        token = httpx.get(f"{live.url}/auth/token", timeout=10).json()["access_token"]
        live.client = httpx.Client(base_url=live.url, timeout=30,
                                   headers={"Authorization": f"Bearer {token}"})
        yield live
    finally:
        live.stop()


def _wait_for_dags(live: LiveAirflow) -> None:
    """Until the dag-processor has parsed every sharehub DAG (failing on an import error)."""
    expected = {*INGEST, *DOWNSTREAM, "sharehub_review"}  # review stays paused here
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        live.check_alive()
        errors = live.api("GET", "/api/v2/importErrors")
        assert errors["total_entries"] == 0, errors
        found = {d["dag_id"] for d in live.api("GET", "/api/v2/dags", params={"limit": 100})["dags"]}
        if expected <= found:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"DAGs not parsed: missing {expected - found}\n{live.diagnostics()}")
        time.sleep(2)


def _settled(live: LiveAirflow, triggered: dict[str, str]) -> bool:
    """True when every run is over and every Asset event triggered a successful run.

    Runs are read before events: a run seen finished has already written its Asset
    event, and an event consumed by a run created after that read shows that run as not
    yet successful, so no event can slip between the two reads.
    """
    states: dict[str, dict[str, str]] = {}
    for dag_id in (*INGEST, *DOWNSTREAM):
        runs = live.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]
        states[dag_id] = {r["dag_run_id"]: r["state"] for r in runs}
        failed = [run for run, state in states[dag_id].items() if state == "failed"]
        if failed:
            raise AssertionError(f"{dag_id} run(s) failed: {failed}\n{live.diagnostics()}")
    if any(state not in TERMINAL for runs in states.values() for state in runs.values()):
        return False
    if any(states[dag_id].get(run_id) != "success" for dag_id, run_id in triggered.items()):
        return False
    events = live.api("GET", "/api/v2/assets/events", params={"limit": 100})["asset_events"]
    names = {e["name"] for e in events}
    if not set(CONSUMER) <= names:
        return False
    for event in events:
        consumer = CONSUMER[event["name"]]
        if not any(r["dag_id"] == consumer and r["state"] == "success" for r in event["created_dagruns"]):
            return False
    return True


def _runs(live: LiveAirflow, dag_id: str) -> dict[str, str]:
    runs = live.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]
    return {r["dag_run_id"]: r["state"] for r in runs}


def _task_states(live: LiveAirflow, dag_id: str, run_id: str) -> dict[str, str]:
    tis = live.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {t["task_id"]: t["state"] for t in tis}


def _wait(live: LiveAirflow, what: str, done: Any) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not done():
        live.check_alive()
        if time.monotonic() > deadline:
            summary = {d: _runs(live, d) for d in (*INGEST, *DOWNSTREAM)}
            raise AssertionError(f"{what}: not done after {RUN_TIMEOUT}s: {summary}\n{live.diagnostics()}")
        time.sleep(2)


def test_ingest_triggers_linkage_publish_and_report_through_assets(
    airflow: LiveAirflow, district: Path
) -> None:
    started = time.monotonic()
    live = airflow
    _wait_for_dags(live)
    live.api("POST", "/api/v2/pools", json={
        "name": "sharehub_warehouse", "slots": 1, "description": "one DuckDB writer"})
    for dag_id in (*DOWNSTREAM, *INGEST):
        live.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    # Nothing delivered yet: the daily runs wait, find nothing, skip, announce nothing.
    def quiet_day_over() -> bool:
        runs = {d: _runs(live, d) for d in INGEST}
        if any(s == "failed" for r in runs.values() for s in r.values()):
            raise AssertionError(f"a scheduled ingest run failed: {runs}\n{live.diagnostics()}")
        return all(r and set(r.values()) == {"success"} for r in runs.values())

    _wait(live, "scheduled ingest runs", quiet_day_over)
    for dag_id in INGEST:
        for run_id in _runs(live, dag_id):
            assert _task_states(live, dag_id, run_id) == {"wait_for_delivery": "success", "pull": "skipped"}
    assert live.api("GET", "/api/v2/assets/events")["total_entries"] == 0
    assert not _runs(live, "sharehub_linkage")
    log.info("quiet day skipped after %.0fs", time.monotonic() - started)

    _deliver(district)
    triggered = {}
    for dag_id in INGEST:
        run = live.api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                       json={"logical_date": None, "dag_run_id": f"live__{dag_id}"})
        triggered[dag_id] = run["dag_run_id"]
    _wait(live, "ingest → linkage → publish → report", lambda: _settled(live, triggered))
    log.info("ingest → linkage → publish → report settled after %.0fs", time.monotonic() - started)

    for dag_id, run_id in triggered.items():
        assert _task_states(live, dag_id, run_id) == {"wait_for_delivery": "success", "pull": "success"}
    assert {s for d in DOWNSTREAM for s in _runs(live, d).values()} == {"success"}

    settings = Settings.from_env(live.env)
    con = connect(settings, read_only=True)
    try:
        rows, feeds = con.execute(
            "SELECT count(*), count(DISTINCT feed) FROM shared.person_xref").fetchall()[0]
        (version,) = con.execute("SELECT max(version) FROM audit.publish_versions").fetchall()[0]
    finally:
        con.close()
    assert rows > PERSONS and feeds == len(FEEDS), (rows, feeds)
    assert (settings.warehouse.parent / "reports" / f"metrics-v{version}.json").is_file()
