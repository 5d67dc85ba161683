"""What a shared-table contract says, reduced to what publication needs.

Why a reduction: the shared-table contracts (``contracts/shared_*.yaml``, ODCS v3) are the
single source that the Great Expectations suites, the PostgreSQL tables, the department
views and their grants are derived from. The ODCS model is generic and deeply optional;
publication needs a small, typed view of one table (columns and their rules, keys,
relationships, the row-count bound, who may read which columns) and it must fail when a
contract is read, not halfway through a publication. Where each fact lives in the YAML is
described in the header comment of ``contracts/shared_person.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from open_data_contract_standard.model import (
    CustomProperty,
    OpenDataContractStandard,
    Relationship,
    SchemaProperty,
)

import contracts

PREFIX = "shared_"
DEPARTMENTS: tuple[str, ...] = ("ps", "ca", "hw", "audit")
ROLE_PREFIX = "sharehub_"
TOKEN_ALGORITHM = "hmac-sha256"
# What to publish when a candidate's source tables do not exist (schema customProperty
# ``whenSourceMissing``): ``fail`` the publication, or publish an ``empty`` table.
SOURCE_POLICIES = ("fail", "empty")


@dataclass(frozen=True)
class SharedColumn:
    """One column of a shared table and the rules its values obey."""

    name: str
    duckdb_type: str
    required: bool
    unique: bool
    primary_key: bool
    classification: str | None
    valid_values: tuple[Any, ...]
    minimum: float | None
    maximum: float | None
    token: bool


@dataclass(frozen=True)
class Reference:
    """One side of a relationship: a shared table (``person``) or a warehouse table."""

    table: str
    columns: tuple[str, ...]
    shared: bool

    def __str__(self) -> str:
        cols = ", ".join(self.columns)
        return f"{self.table}.{cols}" if len(self.columns) == 1 else f"{self.table}({cols})"


@dataclass(frozen=True)
class Link:
    """Every non-null ``source`` value (tuple) must appear in ``target``."""

    source: Reference
    target: Reference
    description: str


@dataclass(frozen=True)
class RowCountBound:
    """How far the row count may move from the previous version's (percent, plus slack)."""

    min_change_pct: float
    max_change_pct: float
    tolerance_rows: int

    def bounds(self, previous: int) -> tuple[int, int]:
        """The allowed [low, high] row count given the previous version's count."""
        low = math.floor(previous * (1 + self.min_change_pct / 100)) - self.tolerance_rows
        high = math.ceil(previous * (1 + self.max_change_pct / 100)) + self.tolerance_rows
        return max(0, low), high


@dataclass(frozen=True)
class RowFilter:
    """A department's view holds only the rows whose ``column`` is one of ``values``."""

    column: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Grant:
    """What one department may read of one table, and why."""

    department: str
    columns: tuple[str, ...]
    raw_columns: tuple[str, ...]
    rows: RowFilter | None
    reason: str


@dataclass(frozen=True)
class SharedContract:
    """The parts of one shared-table contract that publication needs."""

    name: str
    table: str
    columns: tuple[SharedColumn, ...]
    compound_keys: tuple[tuple[str, ...], ...]
    links: tuple[Link, ...]
    row_count: RowCountBound | None
    when_source_missing: str
    grants: tuple[Grant, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key(self) -> tuple[str, ...]:
        """Columns identifying a row: the primary key, else the first compound key."""
        primary = tuple(c.name for c in self.columns if c.primary_key)
        return primary or (self.compound_keys[0] if self.compound_keys else ())

    @property
    def token_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.token)

    def column(self, name: str) -> SharedColumn:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"shared table {self.name} has no column {name!r}")

    def grant(self, department: str) -> Grant | None:
        return next((g for g in self.grants if g.department == department), None)


def _custom(props: list[CustomProperty] | None, key: str) -> Any:
    for prop in props or []:
        if prop.property == key:
            return prop.value
    return None


def _column(prop: SchemaProperty, table: str) -> SharedColumn:
    if not prop.name or not prop.physicalType:
        raise ValueError(f"contract shared_{table}: every property needs name and physicalType")
    options = prop.logicalTypeOptions or {}
    token = _custom(prop.customProperties, "token")
    if token not in (None, TOKEN_ALGORITHM):
        raise ValueError(f"contract shared_{table}: {prop.name} token is {token!r}; expected {TOKEN_ALGORITHM}")
    return SharedColumn(
        name=prop.name,
        duckdb_type=prop.physicalType,
        required=bool(prop.required or prop.primaryKey),
        unique=bool(prop.unique or prop.primaryKey),
        primary_key=bool(prop.primaryKey),
        classification=prop.classification,
        valid_values=tuple(e.value for e in prop.enum or []),
        minimum=options.get("minimum"),
        maximum=options.get("maximum"),
        token=token is not None,
    )


def _reference(ref: str | list[str], table: str) -> Reference:
    """``person.person_id`` is a shared table; ``staging.person_records.record_id`` is not."""
    parts = [r.split(".") for r in ([ref] if isinstance(ref, str) else ref)]
    owners = {".".join(p[:-1]) for p in parts}
    if len(owners) != 1 or any(len(p) not in (2, 3) for p in parts):
        raise ValueError(f"contract shared_{table}: relationship side {ref!r} must name one table")
    owner = owners.pop()
    return Reference(owner, tuple(p[-1] for p in parts), shared="." not in owner)


def _link(rel: Relationship, table: str, column: str | None) -> Link:
    if rel.to is None or (column is None and rel.from_ is None):
        raise ValueError(f"contract shared_{table}: a relationship needs 'from' and 'to'")
    source = Reference(table, (column,), True) if column else _reference(rel.from_ or [], table)
    target = _reference(rel.to, table)
    if len(source.columns) != len(target.columns):
        raise ValueError(f"contract shared_{table}: relationship {source} → {target} differs in width")
    description = _custom(rel.customProperties, "description") or f"every {source} is in {target}"
    return Link(source, target, str(description))


def _grant(role: Any, table: str, columns: tuple[str, ...], tokens: tuple[str, ...]) -> Grant:
    department = _custom(role.customProperties, "department")
    where = f"contract shared_{table}, role {role.role}"
    if department not in DEPARTMENTS or role.role != ROLE_PREFIX + str(department):
        raise ValueError(f"{where}: department {department!r} must be one of {DEPARTMENTS} "
                         f"and the role {ROLE_PREFIX}<department>")
    granted = tuple(_custom(role.customProperties, "columns") or ())
    raw = tuple(_custom(role.customProperties, "rawColumns") or ())
    unknown = [c for c in granted if c not in columns]
    if not granted or unknown or len(set(granted)) != len(granted):
        raise ValueError(f"{where}: columns {list(granted)} must be distinct columns of the table "
                         f"(unknown: {unknown})")
    if not set(raw) <= set(granted) & set(tokens):
        raise ValueError(f"{where}: rawColumns {list(raw)} must be granted token columns {list(tokens)}")
    rows = _custom(role.customProperties, "rows")
    row_filter = None
    if rows is not None:
        if not isinstance(rows, dict) or rows.get("column") not in columns or not rows.get("in"):
            raise ValueError(f"{where}: rows must be {{column: <column>, in: [values]}}, got {rows!r}")
        row_filter = RowFilter(str(rows["column"]), tuple(rows["in"]))
    if not role.description:
        raise ValueError(f"{where}: the description must say why the department needs the data")
    return Grant(str(department), granted, raw, row_filter, " ".join(role.description.split()))


def reduce_contract(odcs: OpenDataContractStandard) -> SharedContract:
    """Reduce a parsed ODCS shared-table contract to a :class:`SharedContract` (strict)."""
    name = odcs.name or ""
    if not odcs.schema_ or len(odcs.schema_) != 1:
        raise ValueError(f"contract shared_{name}: describes exactly one schema object")
    obj = odcs.schema_[0]
    props = obj.properties or []
    columns = tuple(_column(p, name) for p in props)
    names = tuple(c.name for c in columns)
    links = [_link(r, name, p.name) for p in props for r in p.relationships or []]
    links += [_link(r, name, None) for r in obj.relationships or []]
    compound: list[tuple[str, ...]] = []
    row_count = None
    for rule in obj.quality or []:
        args = rule.arguments or {}
        if rule.metric == "duplicateValues" and args.get("properties"):
            key = tuple(args["properties"])
            if not set(key) <= set(names) or rule.mustBe != 0:
                raise ValueError(f"contract shared_{name}: duplicateValues needs known properties, mustBe 0")
            compound.append(key)
        elif rule.metric == "rowCount" and args.get("comparedTo") == "previousVersion":
            if rule.unit != "percent" or not rule.mustBeBetween:
                raise ValueError(f"contract shared_{name}: rowCount vs previousVersion needs unit "
                                 "percent and mustBeBetween [low, high]")
            low, high = rule.mustBeBetween
            row_count = RowCountBound(float(low), float(high), int(args.get("toleranceRows", 0)))
    policy = str(_custom(obj.customProperties, "whenSourceMissing") or "fail")
    if policy not in SOURCE_POLICIES:
        raise ValueError(f"contract shared_{name}: whenSourceMissing {policy!r}; expected {SOURCE_POLICIES}")
    tokens = tuple(c.name for c in columns if c.token)
    grants = tuple(_grant(role, name, names, tokens) for role in odcs.roles or [])
    if len({g.department for g in grants}) != len(grants):
        raise ValueError(f"contract shared_{name}: one role per department")
    return SharedContract(
        name=name,
        table=obj.physicalName or f"shared.{name}",
        columns=columns,
        compound_keys=tuple(compound),
        links=tuple(links),
        row_count=row_count,
        when_source_missing=policy,
        grants=grants,
    )


def shared_names() -> tuple[str, ...]:
    """Every shared table with a contract (``contracts/shared_<name>.yaml``)."""
    return tuple(n.removeprefix(PREFIX) for n in contracts.available() if n.startswith(PREFIX))


@cache
def shared_contract(name: str) -> SharedContract:
    """The reduced contract of one shared table, read once per process."""
    if name not in shared_names():
        raise KeyError(f"no contract contracts/{PREFIX}{name}.yaml; shared tables with a "
                       f"contract: {', '.join(shared_names())}")
    contract = reduce_contract(contracts.load(PREFIX + name))
    if contract.name != name:
        raise ValueError(f"contracts/{PREFIX}{name}.yaml is named {contract.name!r}")
    return contract
