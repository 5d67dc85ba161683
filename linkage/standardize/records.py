"""``staging.person_records`` → ``linkage.person_features``: the function the pipeline calls.

Why it is written the way it is: a district has ~2 million person records, but far
fewer distinct names, addresses and birth strings. Each column is factorised, each
distinct value is standardised once by the memoised scalar functions, and the results are
spread back to the rows with one numpy take per output column — no per-row ``apply`` and
no per-row DataFrame construction.

Conflicts between fields of one record (a birth date that disagrees with the ID, a
passport number in the ID column) are evidence for the model, so they become flags and
NULLs, never exceptions. Only a missing input *column* is an error: that is a contract
breach upstream, not bad data.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from linkage.standardize.addresses import AddressResult, standardize_address
from linkage.standardize.demographics import DAY, MONTH, normalize_sex, parse_birth_date
from linkage.standardize.ids import NOT_RESIDENT_ID, normalize_id
from linkage.standardize.names import standardize_name
from linkage.standardize.phones import standardize_phone
from sharehub.errors import ContractViolation

logger = logging.getLogger(__name__)

PERSON_RECORD_COLUMNS: tuple[str, ...] = (
    "record_id", "feed", "source_key", "batch_id", "name", "id_number", "id_type",
    "sex_raw", "birth_raw", "phone", "address", "hukou_address", "house_code",
    "record_status", "updated_at",
)  # fmt: skip
# The documented columns of linkage.person_features, then the extra model columns.
PERSON_FEATURE_COLUMNS: tuple[str, ...] = (
    "unique_id", "source_dataset", "name_std", "surname", "given_name", "name_pinyin",
    "id_norm", "id_valid", "birth_date", "birth_ym", "sex", "phone_std", "phone_kind",
    "addr_std", "addr_estate", "addr_building", "addr_unit", "addr_room", "addr_key",
    "record_status", "id_problem", "birth_conflict", "is_placeholder_name",
    "surname_pinyin", "given_pinyin", "hukou_addr_key",
)  # fmt: skip
PASSPORT_ID_TYPE = "03"

T = TypeVar("T")


def _as_text(value: Any) -> str | None:
    """A delivered cell as text, None for SQL NULL / NaN (pandas gives both)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value if isinstance(value, str) else str(value)


class _Mapped(Generic[T]):
    """A column standardised once per distinct value, ready to spread back to rows."""

    def __init__(self, column: pd.Series, func: Callable[[Any], T], *, raw: bool = False):
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        convert = (lambda v: v) if raw else _as_text
        # The last slot holds the result for NULL, so code -1 picks it.
        values = uniques.tolist() if isinstance(uniques, pd.Index) else list(uniques)
        self.results: list[T] = [func(convert(value)) for value in values] + [func(None)]
        self.codes = codes
        self.distinct = len(uniques)

    def field(self, get: Callable[[T], Any]) -> np.ndarray:
        """One attribute of the results, aligned to the input rows."""
        values = np.empty(len(self.results), dtype=object)
        values[:] = [get(result) for result in self.results]
        return values[self.codes]


def _text(values: np.ndarray) -> ExtensionArray:
    """A string column whose type survives an all-NULL batch (DuckDB reads VARCHAR)."""
    return pd.array(values, dtype="str")


def _dates(values: np.ndarray) -> ExtensionArray:
    """A DATE column: Arrow date32, which DuckDB maps to DATE, not TIMESTAMP."""
    return pd.array(list(values), dtype="date32[pyarrow]")


def _birth_date(raw: Any) -> Any:
    """parse_birth_date for a delivered cell that may be text, a date or a Timestamp."""
    if isinstance(raw, pd.Timestamp):
        raw = raw.to_pydatetime()
    if isinstance(raw, dt.date):
        return parse_birth_date(raw)
    return parse_birth_date(_as_text(raw))


def _resolve_birth(
    own_date: np.ndarray,
    own_ym: np.ndarray,
    own_precision: np.ndarray,
    id_birth: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine the record's own birth value with the one encoded in its valid ID.

    The own value wins (it is what the department recorded). The ID fills in what the
    record lacks — the whole date, or the day of a ``1948-03`` value — unless the two
    disagree at the precision the record has, which sets ``birth_conflict`` instead: the
    ID may be a guardian's, and the model should see the disagreement.

    One exception: 1 January in the year the ID gives is the conventional stand-in for
    "day unknown" (health records of the elderly use it), so it is refined from the ID
    rather than flagged; flagging it would throw away the ID evidence of every such record.
    """
    n = len(own_date)
    birth_date = own_date.copy()
    birth_ym = own_ym.copy()
    conflict = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(np.array([value is not None for value in id_birth], dtype=bool)):
        from_id: dt.date = id_birth[i]
        precision = own_precision[i]
        if precision == DAY:
            own: dt.date = own_date[i]
            if (own.month, own.day) == (1, 1) and own.year == from_id.year:
                birth_date[i] = from_id
                birth_ym[i] = f"{from_id.year:04d}-{from_id.month:02d}"
            else:
                conflict[i] = own != from_id
        elif precision == MONTH:
            if own_ym[i] != f"{from_id.year:04d}-{from_id.month:02d}":
                conflict[i] = True
            else:
                birth_date[i] = from_id
        else:
            birth_date[i] = from_id
            birth_ym[i] = f"{from_id.year:04d}-{from_id.month:02d}"
    return birth_date, birth_ym, conflict


def _check_columns(records: pd.DataFrame, required: Sequence[str]) -> None:
    missing = [column for column in required if column not in records.columns]
    if missing:
        raise ContractViolation(
            f"staging.person_records lacks columns {missing}; expected all of "
            f"{list(required)}. Re-run the staging step that builds it.",
            column=missing[0],
        )


def standardize_records(
    records: pd.DataFrame, known_addresses: Mapping[str, AddressResult] | None = None
) -> pd.DataFrame:
    """Standardise person records into the feature table the linkage model compares.

    Input: the columns of ``staging.person_records`` (extra columns are ignored).
    Output: exactly ``PERSON_FEATURE_COLUMNS``, one row per input row, same order.
    Where a record has no birth date or sex of its own but a valid ID, both are taken
    from the ID. A passport number (``id_type`` ``03``) that is not a resident ID is
    reported as ``not_resident_id`` rather than parsed as a damaged ID.

    ``known_addresses``: earlier results of `standardize_address` for address strings
    (an increment's newborns and movers mostly live at addresses the district already
    has, and parsing is most of the cost); other strings are parsed.
    """
    _check_columns(records, PERSON_RECORD_COLUMNS)
    started = time.perf_counter()
    known = known_addresses or {}

    def address(value: str | None) -> AddressResult:
        found = known.get(value) if value is not None else None
        return found if found is not None else standardize_address(value)

    names = _Mapped(records["name"], standardize_name)
    ids = _Mapped(records["id_number"], normalize_id)
    births = _Mapped(records["birth_raw"], _birth_date, raw=True)
    sexes = _Mapped(records["sex_raw"], normalize_sex)
    phones = _Mapped(records["phone"], standardize_phone)
    addresses = _Mapped(records["address"], address)
    hukou = _Mapped(records["hukou_address"], address)

    id_norm = ids.field(lambda r: r.id_norm)
    id_valid = ids.field(lambda r: r.valid).astype(bool)
    id_problem = ids.field(lambda r: r.problem)
    passport = (records["id_type"].to_numpy(dtype=object) == PASSPORT_ID_TYPE) & (
        records["id_number"].notna().to_numpy()
    )
    not_resident = passport & ~id_valid
    id_norm[not_resident] = None
    id_problem[not_resident] = NOT_RESIDENT_ID

    birth_date, birth_ym, conflict = _resolve_birth(
        births.field(lambda r: r.date),
        births.field(lambda r: r.ym),
        births.field(lambda r: r.precision),
        ids.field(lambda r: r.birth),
    )
    sex = sexes.field(lambda r: r)
    id_sex = ids.field(lambda r: r.sex)
    sex = np.where(np.array([s is None for s in sex], dtype=bool), id_sex, sex)

    features = pd.DataFrame(
        {
            "unique_id": _text(records["record_id"].to_numpy(dtype=object)),
            "source_dataset": _text(records["feed"].to_numpy(dtype=object)),
            "name_std": _text(names.field(lambda r: r.name_std)),
            "surname": _text(names.field(lambda r: r.surname)),
            "given_name": _text(names.field(lambda r: r.given_name)),
            "name_pinyin": _text(names.field(lambda r: r.pinyin)),
            "id_norm": _text(id_norm),
            "id_valid": id_valid,
            "birth_date": _dates(birth_date),
            "birth_ym": _text(birth_ym),
            "sex": _text(sex),
            "phone_std": _text(phones.field(lambda r: r.phone_std)),
            "phone_kind": _text(phones.field(lambda r: r.kind)),
            "addr_std": _text(addresses.field(lambda r: r.addr_std)),
            "addr_estate": _text(addresses.field(lambda r: r.estate)),
            "addr_building": _text(addresses.field(lambda r: r.building)),
            "addr_unit": _text(addresses.field(lambda r: r.unit)),
            "addr_room": _text(addresses.field(lambda r: r.room)),
            "addr_key": _text(addresses.field(lambda r: r.key)),
            "record_status": _text(records["record_status"].to_numpy(dtype=object)),
            "id_problem": _text(id_problem),
            "birth_conflict": conflict,
            "is_placeholder_name": names.field(lambda r: r.is_placeholder).astype(bool),
            "surname_pinyin": _text(names.field(lambda r: r.surname_pinyin)),
            "given_pinyin": _text(names.field(lambda r: r.given_pinyin)),
            "hukou_addr_key": _text(hukou.field(lambda r: r.key)),
        },
        index=records.index,
    )
    problems = pd.Series(id_problem).value_counts().to_dict()
    logger.info(
        "standardised %d person records in %.1fs (distinct names %d, ids %d, addresses %d, "
        "hukou addresses %d); id problems %s; birth conflicts %d",
        len(features),
        time.perf_counter() - started,
        names.distinct,
        ids.distinct,
        addresses.distinct,
        hukou.distinct,
        problems,
        int(conflict.sum()),
    )
    return features
