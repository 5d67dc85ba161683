"""Copy a published version to the subscribers' PostgreSQL and repoint their views to it.

Layout in the subscribers' database (docs/publishing.md):

- ``shared_v<N>``: the base tables of version N, holding only what some department may
  read (token columns as ``<column>__token``), and ``_version`` (number, timestamp, key
  version). No subscriber has any right on it.
- ``sub_<department>``: one view per table the department's contract grants, plus
  ``publish_version``; the group role ``sharehub_<department>`` (NOLOGIN) has USAGE on
  this schema and SELECT on these views, nothing else.
- ``sharehub_meta.loads``: which version schema is current, and the history.

Why two transactions: the bulk load (``COPY … FROM STDIN``) into a fresh schema that no
view points at yet can take time without holding any lock a subscriber needs; the second
transaction repoints every view of every department, records the version and drops the
versions beyond the last two, and is short. PostgreSQL DDL is transactional, so a
subscriber sees the previous version or the new one, never half (invariant 4). Two
versions are kept so that a query still running on the previous version is not blocked.

Why the version is only copied, never rebuilt: the DuckDB publication validated it; this
module reads ``shared.*`` as committed and refuses a version the warehouse no longer holds.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from sharehub.errors import ConfigError, PublishAborted, SharehubError
from sharehub.publish import subscribers as sub
from sharehub.publish.contract import (
    DEPARTMENTS,
    ROLE_PREFIX,
    SharedContract,
    shared_contract,
    shared_names,
)
from sharehub.publish.tokens import require_key, tokens
from sharehub.settings import Settings
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

META = "sharehub_meta"
KEEP_VERSIONS = 2
LOCK_TIMEOUT = "30s"
_CHUNK = 1 << 20
_TOKENS = "_sharehub_tokens"
_LOCK_KEY = 0x5348415245485542  # "SHAREHUB": the advisory lock held while publishing

_META_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {META};
REVOKE ALL ON SCHEMA {META} FROM PUBLIC;
CREATE TABLE IF NOT EXISTS {META}.loads (
    schema_name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    published_at TIMESTAMP NOT NULL,
    hmac_key_version TEXT,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    rows JSONB NOT NULL,
    is_current BOOLEAN NOT NULL DEFAULT false,
    dropped_at TIMESTAMPTZ
)"""


@dataclass(frozen=True)
class PostgresPublishResult:
    """What the subscribers now read, and whether this call changed it."""

    version: int
    created: bool
    schema: str
    rows: dict[str, int] = field(default_factory=dict)
    views: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    seconds: float = 0.0


def engine_for(url: str) -> Engine:
    """A SQLAlchemy engine on psycopg 3 for a ``postgresql://`` URL (any driver suffix)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"SHAREHUB_PUBLISH_URL must be a postgresql:// URL, got {parsed.drivername}://")
    return create_engine(parsed.set(drivername="postgresql+psycopg"), poolclass=NullPool)


def _current(cur: Any) -> tuple[str, int, str | None] | None:
    cur.execute(f"SELECT schema_name, version, hmac_key_version FROM {META}.loads WHERE is_current")
    row = cur.fetchone()
    return (row[0], int(row[1]), row[2]) if row else None


def _warehouse_version(con: duckdb.DuckDBPyConnection, version: int) -> Any:
    rows = con.execute(
        "SELECT version, published_at FROM audit.publish_versions ORDER BY version DESC LIMIT 1"
    ).fetchall() if table_exists(con, "audit.publish_versions") else []
    if not rows or int(rows[0][0]) != version:
        held = rows[0][0] if rows else "none"
        raise PublishAborted(f"cannot copy version {version} to PostgreSQL: the warehouse holds version "
                             f"{held}, and only the current version's tables exist")
    return rows[0][1]


def _key_version(contracts: list[SharedContract], settings: Settings) -> str | None:
    """The key version tokens are made with, or None when no department reads a token."""
    if not sub.tokens_needed(contracts):
        return None
    return require_key(settings, reason="a shared-table contract grants an ID column as a token")[1]


def _register_tokens(con: duckdb.DuckDBPyConnection, contracts: list[SharedContract],
                     settings: Settings) -> None:
    """Register ``_sharehub_tokens(raw, token)``: one row per distinct raw ID value."""
    raw: set[str] = set()
    for contract in contracts:
        for column in contract.token_columns:
            if sub.needs_token(contract, column) and table_exists(con, contract.table):
                raw.update(r[0] for r in con.execute(
                    f'SELECT DISTINCT "{column}" FROM {contract.table} WHERE "{column}" IS NOT NULL').fetchall())
    values = sorted(raw)
    made: list[str | None] = []
    if values:
        key, key_version = require_key(settings)
        made = tokens(values, key, key_version)
    con.register(_TOKENS, pa.table({"raw": pa.array(values, pa.string()), "token": pa.array(made, pa.string())}))


def _load(con: duckdb.DuckDBPyConnection, cur: Any, schema: str, contract: SharedContract,
          folder: Path) -> int:
    """Create one base table in ``schema`` and fill it with COPY FROM STDIN (CSV from DuckDB)."""
    columns = sub.stored_columns(contract)
    table = sql.Identifier(schema, contract.name)
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns)))
    if not table_exists(con, contract.table):
        if contract.when_source_missing != "empty":
            raise PublishAborted(f"{contract.table} does not exist in the warehouse")
        return 0
    path = folder / f"{contract.name}.csv"
    query = sub.export_query(contract, columns, contract.table, _TOKENS)
    target = str(path).replace("'", "''")
    con.execute(f"COPY ({query}) TO '{target}' (FORMAT csv, HEADER false)")
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    with path.open("rb") as data, cur.copy(
        sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)
    ) as copy:
        while chunk := data.read(_CHUNK):
            copy.write(chunk)
    rows = int(cur.rowcount)
    key = [c.name for c in contract.columns if c.primary_key]
    if key and all(k in {c.name for c in columns} for k in key):
        cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
            table, sql.SQL(", ").join(sql.Identifier(k) for k in key)))
    cur.execute(sql.SQL("ANALYZE {}").format(table))
    return rows


def _ensure_role(cur: Any, role: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    if cur.fetchone():
        return
    try:
        cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(f"role {role} does not exist and the publishing user cannot create it "
                          f"({exc}); run `CREATE ROLE {role} NOLOGIN;` as an administrator") from exc


def _repoint(cur: Any, schema: str, contracts: list[SharedContract], prefix: str) -> dict[str, tuple[str, ...]]:
    """Point every department's views at ``schema``; drop views a grant no longer covers."""
    views: dict[str, tuple[str, ...]] = {}
    for department in DEPARTMENTS:
        role, target = sql.Identifier(sub.role_name(department, prefix)), sub.view_schema(department)
        _ensure_role(cur, sub.role_name(department, prefix))
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target)))
        cur.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(target)))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(target), role))
        wanted: dict[str, sql.Composable] = {
            "publish_version": sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, "_version"))}
        for contract in contracts:
            grant = contract.grant(department)
            if grant is not None:
                wanted[contract.name] = sub.view_query(contract, grant, schema)
        # Drop and recreate every view: a view whose grant was withdrawn disappears, and a
        # changed column list cannot be applied by CREATE OR REPLACE VIEW.
        cur.execute("SELECT viewname FROM pg_views WHERE schemaname = %s", [target])
        for (existing,) in cur.fetchall():
            cur.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier(target, existing)))
        for name, query in wanted.items():
            view = sql.Identifier(target, name)
            cur.execute(sql.SQL("CREATE VIEW {} WITH (security_barrier) AS {}").format(view, query))
            cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(view, role))
        views[department] = tuple(wanted)
    return views


def _drop_old(cur: Any, keep: int) -> tuple[str, ...]:
    cur.execute(f"SELECT schema_name FROM {META}.loads WHERE dropped_at IS NULL "
                "ORDER BY is_current DESC, loaded_at DESC OFFSET %s", [keep])
    old = tuple(r[0] for r in cur.fetchall())
    for schema in old:
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        cur.execute(f"UPDATE {META}.loads SET dropped_at = now() WHERE schema_name = %s", [schema])
    return old


def _new_schema(cur: Any, version: int) -> str:
    cur.execute(f"SELECT count(*) FROM {META}.loads WHERE version = %s", [version])
    earlier = int(cur.fetchone()[0])
    return f"shared_v{version}" if not earlier else f"shared_v{version}_{earlier + 1}"


def publish_to_postgres(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    version: int,
    *,
    role_prefix: str = ROLE_PREFIX,
    keep: int = KEEP_VERSIONS,
) -> PostgresPublishResult:
    """Copy warehouse version ``version`` to ``settings.publish_url`` and repoint the views.

    ``role_prefix`` names the department roles (``sharehub_ps`` …); roles are cluster-wide
    in PostgreSQL, so tests sharing a server pass a prefix of their own.

    Idempotent: if the subscribers already read this version under the same key version,
    nothing changes (``created=False``); after a key rotation the same version is loaded
    again with new tokens. On any failure the subscribers stay on what they read before
    and :class:`PublishAborted` (or :class:`ConfigError`) says why.
    """
    if not settings.publish_url:
        raise ConfigError("publish_to_postgres needs SHAREHUB_PUBLISH_URL (settings.publish_url)")
    started = time.perf_counter()
    contracts = [shared_contract(n) for n in shared_names()]
    published_at = _warehouse_version(con, version)
    key_version = _key_version(contracts, settings)
    engine = engine_for(settings.publish_url)
    schema, registered = "", False
    try:
        with engine.connect() as conn:
            # One session for the three transactions below: its advisory lock keeps a second
            # publisher out until this one has finished (released when the session closes).
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with conn.begin():
                cur.execute(_META_DDL)
                cur.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
                if not cur.fetchone()[0]:
                    raise PublishAborted("another publication to this PostgreSQL is running; "
                                         "publish again when it has finished")
                current = _current(cur)
            if current and current[1] > version:
                raise PublishAborted(f"PostgreSQL already serves version {current[1]}, newer than "
                                     f"{version}; refusing to go back")
            if current and current[1] == version and current[2] == key_version:
                log.info("PostgreSQL already serves version %s (%s)", version, current[0])
                return PostgresPublishResult(version, False, current[0])
            _register_tokens(con, contracts, settings)
            registered = True
            with conn.begin(), tempfile.TemporaryDirectory(prefix="sharehub-copy-") as tmp:
                schema = _new_schema(cur, version)
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}; "
                                    "REVOKE ALL ON SCHEMA {0} FROM PUBLIC").format(sql.Identifier(schema)))
                rows = {}
                for contract in contracts:
                    loaded = time.perf_counter()
                    rows[contract.name] = _load(con, cur, schema, contract, Path(tmp))
                    log.info("copied %s: %d rows in %.2f s", contract.name, rows[contract.name],
                             time.perf_counter() - loaded)
                marker = sql.Identifier(schema, "_version")
                cur.execute(sql.SQL("CREATE TABLE {} (version integer, published_at timestamp, "
                                    "hmac_key_version text, loaded_at timestamptz)").format(marker))
                cur.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, now())").format(marker),
                            [version, published_at, key_version])
            with conn.begin():
                cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                views = _repoint(cur, schema, contracts, role_prefix)
                cur.execute(f"UPDATE {META}.loads SET is_current = false WHERE is_current")
                cur.execute(f"INSERT INTO {META}.loads (schema_name, version, published_at, "
                            "hmac_key_version, rows, is_current) VALUES (%s, %s, %s, %s, %s::jsonb, true)",
                            [schema, version, published_at, key_version, json.dumps(rows, sort_keys=True)])
                dropped = _drop_old(cur, keep)
    except SharehubError:
        _discard(engine, schema)
        raise
    except Exception as exc:
        _discard(engine, schema)
        raise PublishAborted(f"publishing version {version} to PostgreSQL failed; subscribers stay on "
                             f"the version they read before: {exc}", version=version) from exc
    finally:
        if registered:
            con.unregister(_TOKENS)
        engine.dispose()
    seconds = round(time.perf_counter() - started, 2)
    log.info("PostgreSQL now serves version %s from %s (%s rows) in %.2f s; dropped %s",
             version, schema, sum(rows.values()), seconds, list(dropped) or "nothing")
    return PostgresPublishResult(version, True, schema, rows, views, dropped, seconds)


def _discard(engine: Engine, schema: str) -> None:
    """Drop a version schema that never became current (best effort; logged if it fails)."""
    if not schema:
        return
    try:
        with engine.begin() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.execute(f"SELECT 1 FROM {META}.loads WHERE schema_name = %s", [schema])
            if not cur.fetchone():
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except Exception as exc:  # the original error matters more; this one is only logged
        log.warning("could not drop unpublished schema %s: %s", schema, exc)
