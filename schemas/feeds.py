"""Pandera schemas of the four feeds as delivered, derived from their contracts.

Why derived and not written out: the contract is the single source of truth for column
names, keys, code lists, formats and length bounds. Writing the same facts again as a
``DataFrameModel`` would let the two drift; instead each rule in the contract becomes one
named pandera check here, and ``CHECKS`` lists the named checks a contract may ask for
(``quality: type: custom, engine: pandera, implementation: <name>``). The drift test
fails when a contract names a check this module lacks, or the other way round.

The schemas validate text exactly as delivered (blank → missing). The same parsers turn
valid text into typed values for staging, so a value that passes its check always types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import pandas as pd
import pandera.pandas as pa

from schemas.contract import ColumnSpec, feed_contract

# Unicode general category Cc: C0 controls, DEL and C1 controls. Line breaks and tabs are
# controls too: a name or an address never holds one, and each would break a CSV export,
# a log line or a terminal downstream. SQL or HTML text is not a control character: it is
# data, stored verbatim through bound parameters.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _no_control_characters(series: pd.Series) -> pd.Series:
    return ~series.str.contains(CONTROL, na=False)


# Checks a contract may name at table level; each applies to every text column.
CHECKS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "no_control_characters": _no_control_characters,
}

# Reason codes in quarantine.rows, one per check name pandera reports.
REASONS = {
    "not_nullable": "a required value is missing",
    "field_uniqueness": "the source key occurs more than once in this delivery",
    "no_control_characters": "the value holds a control character (U+0000–U+001F, U+007F–U+009F)",
    "max_length": "the value is longer than the contract allows",
    "valid_values": "the value is not in the contract's code list",
    "format": "the value does not match the contract's format",
}


def _java_to_strptime(fmt: str) -> tuple[str, re.Pattern[str]]:
    """Turn a JDK DateTimeFormatter pattern (as ODCS prescribes) into strptime + a regex.

    The regex makes parsing strict: ``%m`` alone would accept ``1948031`` as a date.
    """
    tokens = {
        "yyyy": ("%Y", r"\d{4}"),
        "MM": ("%m", r"\d{2}"),
        "M": ("%m", r"\d{1,2}"),
        "dd": ("%d", r"\d{2}"),
        "d": ("%d", r"\d{1,2}"),
        "HH": ("%H", r"\d{2}"),
        "mm": ("%M", r"\d{2}"),
        "ss": ("%S", r"\d{2}"),
    }
    strp, rx = [], []
    for part in re.findall(r"yyyy|MM|M|dd|d|HH|mm|ss|.", fmt):
        code, pattern = tokens.get(part, (part.replace("%", "%%"), re.escape(part)))
        strp.append(code)
        rx.append(pattern)
    return "".join(strp), re.compile("".join(rx))


def _parse_datetime(series: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    text = series.astype("object").where(series.notna(), None)
    text = text.map(_strip)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us]")
    for fmt in formats or ("ISO8601",):
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        if fmt == "ISO8601":
            parsed = _parse_iso(text[todo])
        else:
            strp, rx = _java_to_strptime(fmt)
            candidates = text[todo]
            candidates = candidates[candidates.map(lambda v, rx=rx: bool(rx.fullmatch(v)))]
            parsed = pd.to_datetime(candidates, format=strp, errors="coerce")
        # both branches give naive China time: _parse_iso converts offsets, and a
        # contract format (_java_to_strptime) has no offset token
        out.loc[parsed.index] = parsed.astype("datetime64[us]")
    return out


# An ISO 8601 time of day followed by its offset (Z, +08:00, +0800, +08). Only after a
# time: the "-01" that ends the date 2026-11-01 is no offset.
_OFFSET = re.compile(r"[T ]\d{2}(:?\d{2}){0,2}([.,]\d+)?\s*(Z|[+-]\d{2}(:?\d{2})?)$")


def _parse_iso(text: pd.Series) -> pd.Series:
    """ISO 8601 text to China time without an offset; unparseable values become NaT.

    Values naming their offset and values without one (China time) are parsed apart:
    pandas refuses a column that mixes them ("Mixed timezones detected"), which would
    fail the whole delivery instead of typing each value.
    """
    aware = text.map(lambda v: bool(_OFFSET.search(v)))
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    if (~aware).any():
        naive = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
        out.loc[naive.index] = naive.astype("datetime64[us]")
    if aware.any():
        zoned = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
        local = zoned.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        out.loc[local.index] = local.astype("datetime64[us]")
    return out


def _parse_boolean(series: pd.Series) -> pd.Series:
    lowered = series.astype("object").map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    return lowered.map(lambda v: True if v in _TRUE else False if v in _FALSE else None).astype(
        "boolean"
    )


def parse(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Type one column of delivered text per its contract; unparseable values become missing.

    Each distinct value is parsed once and the results spread back to the rows: a daily
    full extract repeats its dates, codes and flags tens of thousands of times, and each
    column is parsed twice (its check, then the typed copy for staging).
    """
    if spec.logical_type == "string" and not spec.valid_values:
        return series
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) * 2 > len(series):  # mostly distinct: spreading back would not pay
        return _parse(series, spec)
    parsed = _parse(pd.Series(uniques, dtype="object"), spec)
    if parsed.dtype == object:  # stripped codes: a missing value stays what it was
        texts = parsed.to_numpy(dtype=object)[codes]
        missing = codes == -1
        texts[missing] = series.to_numpy(dtype=object)[missing]
        return pd.Series(texts, index=series.index, name=series.name, dtype=object)
    typed = pd.api.extensions.take(parsed.array, codes, allow_fill=True)
    return pd.Series(typed, index=series.index, name=series.name)


def _parse(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if spec.logical_type in ("date", "timestamp"):
        parsed = _parse_datetime(series, spec.formats)
        return parsed.dt.normalize() if spec.logical_type == "date" else parsed
    if spec.logical_type in ("number", "integer"):
        numbers = pd.to_numeric(series.astype("object").map(_strip), errors="coerce")
        if spec.logical_type == "integer":
            numbers = numbers.where(numbers.isna() | (numbers == numbers.round()))
            return numbers.astype("Int64")
        return numbers.astype("Float64")
    if spec.logical_type == "boolean":
        return _parse_boolean(series)
    if spec.valid_values:  # coded text is compared and staged without stray spaces
        return series.astype("object").map(_strip)
    return series


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _in_set_or_missing(parsed: pd.Series, allowed: set[object]) -> pd.Series:
    return parsed.isin(allowed) | parsed.isna()


def _column_checks(spec: ColumnSpec, table_checks: tuple[str, ...]) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if spec.logical_type == "string":
        checks += [pa.Check(CHECKS[name], name=name) for name in table_checks]
        if spec.max_length is not None:
            bound = spec.max_length
            checks.append(pa.Check(lambda s, n=bound: s.str.len() <= n, name="max_length"))
    else:
        checks.append(
            pa.Check(lambda s, c=spec: parse(s, c).notna() | s.isna(), name="format")
        )
    if spec.valid_values:
        allowed = set(spec.valid_values)
        checks.append(
            pa.Check(
                lambda s, c=spec, a=allowed: _in_set_or_missing(parse(s, c), a),
                name="valid_values",
            )
        )
    return checks


@cache
def feed_schema(feed: str) -> pa.DataFrameSchema:
    """The pandera schema of one feed as delivered (canonical column names, text values).

    Validate with ``lazy=True`` so a delivery reports every failing row at once.
    """
    contract = feed_contract(feed)
    columns = {
        spec.name: pa.Column(
            dtype=None,
            nullable=not spec.required,
            unique=spec.unique,
            report_duplicates="all",
            checks=_column_checks(spec, contract.table_checks),
            title=spec.physical,
            description=f"{spec.physical} ({spec.logical_type})",
        )
        for spec in contract.columns
    }
    return pa.DataFrameSchema(columns, name=feed, strict=True, ordered=False)
