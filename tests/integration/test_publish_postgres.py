"""Publication to a real PostgreSQL: department views, roles, tokens and atomic versions.

A small generated district (300 persons) is run through the whole pipeline into a DuckDB
file, then published to a fresh database on the local server. Each test connects as a
department's group role (``SET ROLE``) and checks what the contracts grant: its own views
and exactly their columns, nothing of another department, nothing of the base tables,
tokens instead of resident ID numbers where the raw number is not granted, and that a
failed publication leaves subscribers on the version they had.

Roles are cluster-wide in PostgreSQL, so this module names them with a random prefix and
drops them, with its database, at the end.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import errors, sql

from linkage.unpublished import note_unpublished
from sharehub import pipeline
from sharehub.errors import ConfigError, PublishAborted
from sharehub.generate import generate
from sharehub.publish import postgres, publish
from sharehub.publish.contract import DEPARTMENTS, shared_contract, shared_names
from sharehub.publish.postgres import PostgresPublishResult, publish_to_postgres
from sharehub.publish.tokens import token
from sharehub.settings import Settings
from sharehub.warehouse import connect, table_exists

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SERVER = "host=127.0.0.1 port=5432 user=postgres"
KEY = "integration-" + "k" * 24  # test value; real keys come from SHAREHUB_HMAC_KEY
TOKEN = re.compile(r"^v1:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, str]]:
    """A fresh database and a role prefix of its own; both dropped afterwards."""
    try:
        admin = psycopg.connect(f"{SERVER} dbname=postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"local PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    suffix = secrets.token_hex(4)
    name, prefix = f"sharehub_test_{suffix}", f"sharehub_t{suffix}_"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield name, prefix
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for role in [*(prefix + d for d in DEPARTMENTS), prefix + "clerk"]:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, database: tuple[str, str]) -> Settings:
    out: Path = tmp_path_factory.mktemp("district")
    generate(out, persons=300, seed=2)
    env = {"SHAREHUB_HMAC_KEY": KEY, "SHAREHUB_HMAC_KEY_VERSION": "v1",
           "SHAREHUB_PUBLISH_URL": f"postgresql://postgres@127.0.0.1:5432/{database[0]}"}
    return Settings.from_env(env, warehouse=out / "warehouse.duckdb", landing=out / "landing",
                             health_url=f"sqlite:///{out / 'health.db'}", model_path=out / "model.json",
                             progress=False)


@pytest.fixture(scope="module")
def con(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(settings)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def first(con: duckdb.DuckDBPyConnection, settings: Settings, database: tuple[str, str]) -> PostgresPublishResult:
    # The pipeline publishes to PostgreSQL itself when a URL is set, with the default role
    # names; here the copy is made explicitly with this test's own role prefix.
    summary = pipeline.run(con, settings.with_(publish_url=None))
    assert summary.version == 1
    return publish_to_postgres(con, settings, 1, role_prefix=database[1])


@contextmanager
def as_role(database: tuple[str, str], department: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the test database acting as the department's group role."""
    with psycopg.connect(f"{SERVER} dbname={database[0]}", autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(database[1] + department)))
        yield conn


def columns(conn: psycopg.Connection[Any], relation: str) -> list[str]:
    cur = conn.execute(f"SELECT * FROM {relation} LIMIT 0")
    return [d.name for d in cur.description or []]


def serving(database: tuple[str, str]) -> int:
    with as_role(database, "audit") as conn:
        return int(conn.execute("SELECT version FROM sub_audit.publish_version").fetchall()[0][0])


def test_each_department_reads_exactly_its_granted_columns(
    first: PostgresPublishResult, database: tuple[str, str], con: duckdb.DuckDBPyConnection,
) -> None:
    assert first.created and first.schema == "shared_v1"
    for department in DEPARTMENTS:
        granted = {n: shared_contract(n).grant(department) for n in shared_names()}
        with as_role(database, department) as conn:
            assert conn.execute(f"SELECT version FROM sub_{department}.publish_version").fetchall() == [(1,)]
            for name, grant in granted.items():
                if grant is None:
                    continue
                assert columns(conn, f"sub_{department}.{name}") == list(grant.columns), (department, name)
                conn.execute(f"SELECT * FROM sub_{department}.{name}").fetchall()
            views = conn.execute("SELECT table_name FROM information_schema.views "
                                 "WHERE table_schema = %s", [f"sub_{department}"]).fetchall()
            assert {v[0] for v in views} == {n for n, g in granted.items() if g} | {"publish_version"}
    with as_role(database, "ps") as conn:
        persons = conn.execute("SELECT count(*) FROM sub_ps.person").fetchall()[0][0]
    assert persons == con.execute("SELECT count(*) FROM shared.person").fetchall()[0][0] > 250


@pytest.mark.parametrize("department", DEPARTMENTS)
def test_other_departments_and_base_tables_are_refused(
    first: PostgresPublishResult, database: tuple[str, str], department: str,
) -> None:
    forbidden = [f"sub_{other}.publish_version" for other in DEPARTMENTS if other != department]
    forbidden += [f"{first.schema}.{name}" for name in shared_names()]
    forbidden += [f"{first.schema}._version", "sharehub_meta.loads"]
    with as_role(database, department) as conn:
        for relation in forbidden:
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(f"SELECT * FROM {relation} LIMIT 1")


def test_a_view_has_no_ungranted_column(first: PostgresPublishResult, database: tuple[str, str]) -> None:
    with as_role(database, "hw") as conn, pytest.raises(errors.UndefinedColumn):
        conn.execute("SELECT monthly_amount FROM sub_hw.benefits")
    with as_role(database, "ps") as conn, pytest.raises(errors.UndefinedTable):
        conn.execute("SELECT * FROM sub_ps.health_tags")


def test_resident_ids_are_tokens_except_for_public_security(
    first: PostgresPublishResult, database: tuple[str, str], con: duckdb.DuckDBPyConnection,
) -> None:
    raw = dict(con.execute("SELECT person_id, id_number FROM shared.person WHERE id_number IS NOT NULL").fetchall())
    assert len(raw) > 250
    with as_role(database, "ps") as conn:
        assert dict(conn.execute("SELECT person_id, id_number FROM sub_ps.person "
                                 "WHERE id_number IS NOT NULL").fetchall()) == raw
    for department in ("ca", "hw"):
        with as_role(database, department) as conn:
            got = dict(conn.execute(f"SELECT person_id, id_number FROM sub_{department}.person "
                                    "WHERE id_number IS NOT NULL").fetchall())
        assert all(TOKEN.match(v) for v in got.values())
        assert got == {p: token(n, KEY.encode(), "v1") for p, n in raw.items()}


def test_row_filters_keep_other_departments_records_out(
    first: PostgresPublishResult, database: tuple[str, str], con: duckdb.DuckDBPyConnection,
) -> None:
    feeds = {"ps": {"ps_population", "ps_housing"}, "ca": {"ca_recipients"}, "hw": {"hw_ehr_person"}}
    for department, own in feeds.items():
        with as_role(database, department) as conn:
            got = dict(conn.execute(f"SELECT feed, count(*) FROM sub_{department}.person_xref GROUP BY 1").fetchall())
        assert set(got) == own
        assert got == dict(con.execute("SELECT feed, count(*) FROM shared.person_xref WHERE feed IN "
                                       f"({', '.join('?' * len(own))}) GROUP BY 1", sorted(own)).fetchall())
    with as_role(database, "ca") as conn:
        assert {r[0] for r in conn.execute("SELECT DISTINCT tag FROM sub_ca.health_tags").fetchall()} <= {"残疾人"}


def test_a_login_user_granted_the_group_role_reads_as_its_department(
    first: PostgresPublishResult, database: tuple[str, str],
) -> None:
    clerk = database[1] + "clerk"
    with psycopg.connect(f"{SERVER} dbname={database[0]}", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
            sql.Identifier(clerk), sql.Identifier(database[1] + "ca")))
    with psycopg.connect(f"host=127.0.0.1 port=5432 user={clerk} dbname={database[0]}", autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM sub_ca.benefits").fetchall()[0][0] > 0
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM sub_ps.person")


def test_same_version_again_changes_nothing(
    first: PostgresPublishResult, con: duckdb.DuckDBPyConnection, settings: Settings, database: tuple[str, str],
) -> None:
    again = publish_to_postgres(con, settings, 1, role_prefix=database[1])
    assert (again.created, again.schema) == (False, "shared_v1")


def test_failed_candidate_leaves_subscribers_and_warehouse_on_the_previous_version(
    first: PostgresPublishResult, con: duckdb.DuckDBPyConnection, settings: Settings, database: tuple[str, str],
) -> None:
    before = sorted(con.execute("SELECT * FROM shared.person_xref").fetchall(), key=repr)
    with as_role(database, "ps") as conn:
        seen = sorted(conn.execute("SELECT * FROM sub_ps.person_xref").fetchall(), key=repr)
    record = con.execute("SELECT min(record_id) FROM staging.person_records").fetchall()[0][0]
    con.execute("CREATE TABLE staging.person_records_backup AS SELECT * FROM staging.person_records")
    con.execute("INSERT INTO staging.person_records SELECT * FROM staging.person_records WHERE record_id = ?", [record])
    note_unpublished(con, f"SELECT '{record}'")  # as the staging step would (linkage.unpublished)
    try:
        with pytest.raises(PublishAborted, match="record_id is unique failed") as info:
            publish(con, run_id="bad")
        [failure] = [f for f in info.value.details["failures"] if f.description == "record_id is unique"]
        assert failure.table == "person_xref" and failure.examples == ({"record_id": record},)
        assert publish_to_postgres(con, settings, 1, role_prefix=database[1]).created is False
    finally:
        con.execute("CREATE OR REPLACE TABLE staging.person_records AS SELECT * FROM staging.person_records_backup")
        con.execute("DROP TABLE staging.person_records_backup")
    assert sorted(con.execute("SELECT * FROM shared.person_xref").fetchall(), key=repr) == before
    assert con.execute("SELECT max(version) FROM audit.publish_versions").fetchall() == [(1,)]
    assert serving(database) == 1
    with as_role(database, "ps") as conn:
        assert sorted(conn.execute("SELECT * FROM sub_ps.person_xref").fetchall(), key=repr) == seen


def _new_version(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Move one record to a new person: a valid change, so publication makes a new version.

    linkage.residence follows (as rebuilding it would): a stale residence row is refused.
    """
    record = con.execute("SELECT max(record_id) FROM linkage.person_ids").fetchall()[0][0]
    for table in ("linkage.person_ids", "linkage.residence"):
        if table_exists(con, table):
            con.execute(f"UPDATE {table} SET person_id = ? WHERE record_id = ?", [f"PNEW{run_id}", record])
    note_unpublished(con, f"SELECT '{record}'")  # as identify would (linkage.unpublished)
    result = publish(con, run_id=run_id)
    assert result.created
    return result.version


def test_failed_load_keeps_the_previous_version_and_old_versions_are_dropped(
    first: PostgresPublishResult, con: duckdb.DuckDBPyConnection, settings: Settings,
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = _new_version(con, "2")
    real = postgres.sub.export_query

    def broken(contract: Any, *args: Any) -> str:
        return "SELECT no_such_column FROM shared.person" if contract.name == "person_xref" else real(contract, *args)

    monkeypatch.setattr(postgres.sub, "export_query", broken)
    with pytest.raises(PublishAborted, match="subscribers stay on"):
        publish_to_postgres(con, settings, version, role_prefix=database[1])
    assert serving(database) == 1
    with psycopg.connect(f"{SERVER} dbname={database[0]}") as admin:
        schemas = {r[0] for r in admin.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'shared_v%'")}
    assert schemas == {"shared_v1"}
    monkeypatch.undo()
    assert publish_to_postgres(con, settings, version, role_prefix=database[1]).schema == "shared_v2"
    assert serving(database) == 2
    third = publish_to_postgres(con, settings, _new_version(con, "3"), role_prefix=database[1])
    assert (third.schema, third.dropped) == ("shared_v3", ("shared_v1",))
    with as_role(database, "hw") as conn:
        assert conn.execute("SELECT count(*) FROM sub_hw.person WHERE person_id = 'PNEW3'").fetchall() == [(1,)]


def test_key_rotation_reissues_the_tokens_of_the_current_version(
    con: duckdb.DuckDBPyConnection, settings: Settings, database: tuple[str, str],
) -> None:
    version = int(con.execute("SELECT max(version) FROM audit.publish_versions").fetchall()[0][0])
    rotated = settings.with_(hmac_key="rotated-" + "r" * 24, hmac_key_version="v2")
    result = publish_to_postgres(con, rotated, version, role_prefix=database[1])
    assert result.created and result.schema == f"shared_v{version}_2"
    with as_role(database, "ca") as conn:
        values = [r[0] for r in conn.execute("SELECT id_number FROM sub_ca.person WHERE id_number IS NOT NULL")]
        assert conn.execute("SELECT hmac_key_version FROM sub_ca.publish_version").fetchall() == [("v2",)]
    assert values and all(v.startswith("v2:") for v in values)
    assert publish_to_postgres(con, rotated, version, role_prefix=database[1]).created is False
    with pytest.raises(ConfigError, match="no key is set"):
        publish_to_postgres(con, settings.with_(hmac_key=None), version, role_prefix=database[1])
