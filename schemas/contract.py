"""What a feed contract says, reduced to what the readers, the checks and staging need.

Why a separate reduction: the ODCS model is generic and deeply optional; the hub needs a
small, typed view of one feed (its columns in delivery order, the key, the formats, the
code lists, the file layout) and it must fail at import of a bad contract, not deep inside
a pull. Every field here is read from the YAML in ``contracts/``; nothing is restated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from open_data_contract_standard.model import (
    CustomProperty,
    OpenDataContractStandard,
    SchemaProperty,
)

import contracts

FEEDS: tuple[str, ...] = ("ps_population", "ps_housing", "ca_recipients", "hw_ehr_person")

# DuckDB type for each ODCS logical type (a property's physicalType wins when set).
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "number": "DOUBLE",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
}
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# What a delivery may do with columns its contract does not name (customProperty
# ``extraColumns`` of the schema object): ``ignore`` them (noted in the ledger) or
# ``reject`` the delivery. Default ``reject``: a contract must opt in to tolerance.
EXTRA_COLUMN_POLICIES = ("ignore", "reject")


@dataclass(frozen=True)
class ColumnSpec:
    """One delivered column: its delivered header, canonical name, type and rules."""

    name: str
    physical: str
    logical_type: str
    duckdb_type: str
    required: bool
    unique: bool
    primary_key: bool
    classification: str | None
    max_length: int | None
    formats: tuple[str, ...]
    valid_values: tuple[Any, ...]


@dataclass(frozen=True)
class FeedContract:
    """The parts of one feed contract the pull needs."""

    feed: str
    owner: str
    file_format: str  # csv | xlsx | sql
    encoding: str | None
    file_name: str
    sheet: str | None
    header_marker: str | None
    extract_types: tuple[str, ...]
    # How a delivered row ends a record: a change column holding end_value (注销), or a
    # soft-delete flag column; and whether a full extract replaces the previous one.
    change_column: str | None
    end_value: str | None
    deleted_column: str | None
    full_extract_replaces: bool
    watermark_column: str | None
    extra_columns: str  # one of EXTRA_COLUMN_POLICIES
    columns: tuple[ColumnSpec, ...]
    table_checks: tuple[str, ...]
    min_rows: int
    latency: timedelta | None

    @property
    def key(self) -> ColumnSpec:
        """The source key column (the one primaryKey property)."""
        return next(c for c in self.columns if c.primary_key)

    def column(self, name: str) -> ColumnSpec:
        """Look a column up by canonical name."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.feed} has no column {name!r}")

    @property
    def physical_to_name(self) -> dict[str, str]:
        """Delivered header → canonical name."""
        return {c.physical: c.name for c in self.columns}


def _custom(props: list[CustomProperty] | None, key: str) -> Any:
    for prop in props or []:
        if prop.property == key:
            return prop.value
    return None


def _column(prop: SchemaProperty, feed: str) -> ColumnSpec:
    if not prop.name or not prop.physicalName or not prop.logicalType:
        raise ValueError(f"contract {feed}: every property needs name, physicalName, logicalType")
    options = prop.logicalTypeOptions or {}
    formats = [options["format"]] if "format" in options else []
    formats += list(_custom(prop.customProperties, "alsoAcceptedFormats") or [])
    if prop.logicalType not in _DUCKDB_TYPES:
        raise ValueError(f"contract {feed}: {prop.name} has unsupported type {prop.logicalType}")
    return ColumnSpec(
        name=prop.name,
        physical=prop.physicalName,
        logical_type=prop.logicalType,
        duckdb_type=prop.physicalType or _DUCKDB_TYPES[prop.logicalType],
        required=bool(prop.required),
        unique=bool(prop.unique),
        primary_key=bool(prop.primaryKey),
        classification=prop.classification,
        max_length=options.get("maxLength"),
        formats=tuple(formats),
        valid_values=tuple(e.value for e in prop.enum or []),
    )


def _latency(odcs: OpenDataContractStandard) -> timedelta | None:
    for sla in odcs.slaProperties or []:
        if sla.property == "latency" and isinstance(sla.value, int | float):
            return float(sla.value) * _UNITS.get(sla.unit or "d", timedelta(days=1))
    return None


def reduce_contract(odcs: OpenDataContractStandard) -> FeedContract:
    """Reduce a parsed ODCS feed contract to a :class:`FeedContract` (strict)."""
    feed = odcs.name or ""
    if not odcs.schema_ or len(odcs.schema_) != 1:
        raise ValueError(f"contract {feed}: a feed contract describes exactly one schema object")
    obj = odcs.schema_[0]
    custom = obj.customProperties
    columns = tuple(_column(p, feed) for p in obj.properties or [])
    if sum(c.primary_key for c in columns) != 1:
        raise ValueError(f"contract {feed}: exactly one property must be the primaryKey")
    server = odcs.servers[0] if odcs.servers else None
    file_format = (server.format if server and server.format else "sql").lower()
    table_checks = tuple(
        str(q.implementation) for q in obj.quality or [] if q.type == "custom" and q.engine == "pandera"
    )
    min_rows = 0
    for q in obj.quality or []:
        if q.metric == "rowCount" and q.mustBeGreaterThan is not None:
            min_rows = int(q.mustBeGreaterThan) + 1
    team = odcs.team
    owner = team.name if team is not None and not isinstance(team, list) else None
    extra_columns = str(_custom(custom, "extraColumns") or "reject")
    if extra_columns not in EXTRA_COLUMN_POLICIES:
        raise ValueError(
            f"contract {feed}: extraColumns is {extra_columns!r}; expected one of "
            f"{', '.join(EXTRA_COLUMN_POLICIES)}"
        )
    return FeedContract(
        feed=feed,
        owner=owner or "",
        file_format=file_format,
        encoding=(server.encoding.lower() if server and server.encoding else None),
        file_name=obj.physicalName or feed,
        sheet=_custom(custom, "sheet"),
        header_marker=_custom(custom, "headerMarker"),
        extract_types=tuple(_custom(custom, "extractTypes") or ()),
        change_column=_custom(custom, "changeColumn"),
        end_value=_custom(custom, "endValue"),
        deleted_column=_custom(custom, "deletedColumn"),
        full_extract_replaces=bool(_custom(custom, "fullExtractReplaces")),
        watermark_column=_custom(custom, "watermarkColumn"),
        extra_columns=extra_columns,
        columns=columns,
        table_checks=table_checks,
        min_rows=min_rows,
        latency=_latency(odcs),
    )


@cache
def feed_contract(feed: str) -> FeedContract:
    """The reduced contract of one feed, read once per process from ``contracts/``."""
    if feed not in FEEDS:
        raise KeyError(f"unknown feed {feed!r}; expected one of {', '.join(FEEDS)}")
    return reduce_contract(contracts.load(feed))
