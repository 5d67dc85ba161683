"""Standardisation of Chinese identity data for record linkage.

The pipeline calls :func:`standardize_records` (``staging.person_records`` →
``linkage.person_features``); the scalar functions are public so that other stages (review
screens, the master index) standardise a single value the same way.
"""

from __future__ import annotations

from linkage.standardize.addresses import AddressResult, parse_dwelling, standardize_address
from linkage.standardize.demographics import (
    BirthDate,
    excel_serial_to_date,
    normalize_sex,
    parse_birth_date,
)
from linkage.standardize.ids import IdResult, check_digit, normalize_id, upgrade_15_to_18
from linkage.standardize.names import (
    NameResult,
    is_placeholder_name,
    normalize_name,
    split_name,
    standardize_name,
    surname_pinyin,
    to_pinyin,
)
from linkage.standardize.phones import PhoneResult, standardize_phone
from linkage.standardize.records import (
    PERSON_FEATURE_COLUMNS,
    PERSON_RECORD_COLUMNS,
    standardize_records,
)

__all__ = [
    "PERSON_FEATURE_COLUMNS",
    "PERSON_RECORD_COLUMNS",
    "AddressResult",
    "BirthDate",
    "IdResult",
    "NameResult",
    "PhoneResult",
    "check_digit",
    "excel_serial_to_date",
    "is_placeholder_name",
    "normalize_id",
    "normalize_name",
    "normalize_sex",
    "parse_birth_date",
    "parse_dwelling",
    "split_name",
    "standardize_address",
    "standardize_name",
    "standardize_phone",
    "standardize_records",
    "surname_pinyin",
    "to_pinyin",
    "upgrade_15_to_18",
]
