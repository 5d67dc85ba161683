"""Validate one delivery against its contract: split it into typed rows and quarantined rows.

Why lazily and whole rows: a department fixes its export from one report listing every
failure at once (pandera's lazy mode), and a row that cannot be keyed or typed cannot be
staged in part, so it goes whole into ``quarantine.rows`` with every reason it failed.
What the contract does not forbid (a wrong check digit, a 15-digit or Excel-damaged ID,
mixed 出生年月 formats, homophones) passes: linkage must still see those rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa

from schemas.contract import ColumnSpec, FeedContract
from schemas.feeds import CONTROL, REASONS, feed_schema, parse
from sharehub.errors import ContractViolation

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = (
    "feed",
    "batch_id",
    "row_number",
    "source_key",
    "column_name",
    "check_name",
    "failure_value",
    "reason",
    "failures",
    "row_json",
)


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one delivery."""

    typed: pd.DataFrame  # rows that passed, typed per contract, indexed by row_number
    quarantine: pd.DataFrame  # one row per failing data row, columns QUARANTINE_COLUMNS

    @property
    def rows_staged(self) -> int:
        return len(self.typed)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantine)


def _prepared(frame: pd.DataFrame, contract: FeedContract) -> pd.DataFrame:
    """Blank values count as missing; the source key is compared without stray spaces."""
    prepared = frame.where(~frame.apply(lambda s: s.str.strip() == "").fillna(False), None)
    key = contract.key.name
    prepared[key] = prepared[key].str.strip()
    return prepared


def _failure_cases(frame: pd.DataFrame, feed: str, batch_id: str) -> pd.DataFrame:
    try:
        feed_schema(feed).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        unplaced = cases[cases["index"].isna()]
        if not unplaced.empty:
            first = unplaced.iloc[0]
            raise ContractViolation(
                f"delivery fails its schema as a whole: {first['check']} "
                f"({first['failure_case']})",
                feed=feed,
                batch=batch_id,
                column=str(first["column"]),
            ) from exc
        return cases
    return pd.DataFrame(columns=["column", "check", "failure_case", "index"])


_SHOWN = 40  # characters of an offending value quoted in a reason (the value is kept whole)


def _shown(value: str) -> str:
    """A value quoted for a reason: escaped, and cut when long (a 1 MB field stays readable)."""
    text = value if len(value) <= _SHOWN else f"{value[:_SHOWN]}…"
    return repr(text)


def _explain(check: str, value: str | None, spec: ColumnSpec, duplicates: list[int]) -> str:
    """Why a value failed, with the value found and the bound it broke."""
    base = REASONS.get(check, check)
    if value is None:
        return base
    if check == "max_length":
        return f"{len(value):,} characters; the contract allows at most {spec.max_length}"
    if check == "valid_values":
        allowed = ", ".join(str(v) for v in spec.valid_values)
        return f"{_shown(value)} is not in the contract's code list ({allowed})"
    if check == "format":
        expected = " or ".join(spec.formats) or spec.logical_type
        return f"{_shown(value)} does not match the contract's format ({expected})"
    if check == "no_control_characters":
        found = sorted({f"U+{ord(c):04X}" for c in value if CONTROL.match(c)})
        return f"{base}: {', '.join(found)} in {_shown(value)}"
    if check == "field_uniqueness" and len(duplicates) > 1:
        return f"{base} (data rows {', '.join(map(str, duplicates))})"
    return base


def _quarantine_rows(
    frame: pd.DataFrame, cases: pd.DataFrame, contract: FeedContract, batch_id: str
) -> pd.DataFrame:
    order = {spec.name: i for i, spec in enumerate(contract.columns)}
    specs = {spec.name: spec for spec in contract.columns}
    physical = {spec.name: spec.physical for spec in contract.columns}
    repeated: dict[str, list[int]] = {}
    for case in cases[cases["check"] == "field_uniqueness"].to_dict("records"):
        repeated.setdefault(str(case["failure_case"]), []).append(int(case["index"]))
    by_row: dict[int, list[dict[str, Any]]] = {}
    for case in cases.to_dict("records"):
        raw = case["failure_case"]
        value = None if raw is None or pd.isna(raw) else str(raw)
        check = str(case["check"])
        by_row.setdefault(int(case["index"]), []).append(
            {
                "column": physical[str(case["column"])],
                "check": check,
                "value": value,
                "reason": _explain(
                    check, value, specs[str(case["column"])], sorted(repeated.get(str(raw), []))
                ),
                "_order": order[str(case["column"])],
            }
        )
    delivered = frame.loc[sorted(by_row)].to_dict("index")
    records = []
    for row_number in sorted(by_row):
        failures = sorted(by_row[row_number], key=lambda f: f.pop("_order"))
        values = {physical[str(k)]: (None if pd.isna(v) else v) for k, v in delivered[row_number].items()}
        first = failures[0]
        records.append(
            {
                "feed": contract.feed,
                "batch_id": batch_id,
                "row_number": row_number,
                "source_key": values[contract.key.physical],
                "column_name": first["column"],
                "check_name": first["check"],
                "failure_value": first["value"],
                "reason": "; ".join(f"{f['column']}: {f['reason']}" for f in failures),
                "failures": json.dumps(failures, ensure_ascii=False),
                "row_json": json.dumps(values, ensure_ascii=False),
            }
        )
    return pd.DataFrame.from_records(records, columns=list(QUARANTINE_COLUMNS))


def validate(frame: pd.DataFrame, contract: FeedContract, batch_id: str) -> Validated:
    """Validate a delivery (text, canonical columns, indexed by row_number) lazily.

    Returns the passing rows typed per contract and one quarantine record per failing row.
    Raises :class:`ContractViolation` only when the frame fails as a whole (wrong columns),
    which the readers already exclude.
    """
    prepared = _prepared(frame, contract)
    cases = _failure_cases(prepared, contract.feed, batch_id)
    quarantine = _quarantine_rows(frame, cases, contract, batch_id)
    bad = set(quarantine["row_number"])
    passing = prepared[~prepared.index.isin(bad)]
    typed = pd.DataFrame(
        {spec.name: parse(passing[spec.name], spec) for spec in contract.columns},
        index=passing.index,
    )
    if len(typed) + len(quarantine) != len(frame):
        raise ContractViolation(
            f"validation lost rows: {len(frame)} in, {len(typed)} passed, "
            f"{len(quarantine)} quarantined",
            feed=contract.feed,
            batch=batch_id,
        )
    if bad:
        log.info(
            "%s/%s: %d of %d rows quarantined", contract.feed, batch_id, len(bad), len(frame)
        )
    return Validated(typed=typed, quarantine=quarantine)
