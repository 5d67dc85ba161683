"""Every error and variation rate of the synthetic district, in one frozen dataclass.

Why one object: benchmarks and tests tune difficulty (more twins, dirtier civil-affairs
IDs, a busier day 2) without touching generator code, and the rates in force are written
beside the output so that a day-2 run can check it continues the same district.
Defaults aim at what the feed README describes, erring on the hard side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sharehub.errors import ConfigError


@dataclass(frozen=True)
class ErrorRates:
    """Probabilities (0–1) that drive who appears where and how records are damaged.

    Coverage rates are shares of persons; record-level rates are shares of the records
    of one feed; day-2 rates are the chance that an event happens to a person or a
    household between the day-1 and the day-2 extract.
    """

    # --- population structure -------------------------------------------------------
    floating_households: float = 0.33  # 流动人口 households, IDs from other provinces
    foreign_households: float = 0.008  # 境外人员, passports instead of IDs
    minority_dotted: float = 0.012  # Uyghur/Tibetan/Mongolian name forms
    minority_han_form: float = 0.04  # 回族/满族… with Han-form names
    twins: float = 0.04  # of households with children
    child_named_after_parent: float = 0.01  # son with his father's full name
    common_given_name: float = 0.15  # whole given name from the cohort's top list
    former_name: float = 0.012  # persons who changed their name (曾用名)
    shared_landline: float = 0.2  # households with a fixed line
    group_rent: float = 0.05  # unrelated floating singles sharing one room (群租)
    outside_owner: float = 0.3  # owners of let/vacant dwellings living outside
    vacant_dwellings: float = 0.06  # owned dwellings nobody lives in, per household
    # --- coverage per feed ----------------------------------------------------------
    pop_coverage: float = 0.95
    pop_duplicate: float = 0.01
    health_coverage: float = 0.60
    health_second_record: float = 0.03
    elderly_allowance: float = 0.9  # of persons aged 80+
    disability: float = 0.05
    dibao_households: float = 0.045
    tekun_elderly_alone: float = 0.2
    temporary_relief: float = 0.01
    unregistered_rental: float = 0.1  # rented rooms missing from ps_housing
    # --- ps_population damage -------------------------------------------------------
    pop_id_error: float = 0.006  # wrong check digit, one-digit typo, transposition
    pop_bad_birth: float = 0.001  # malformed 出生日期 (a contract must quarantine)
    pop_phone_missing: float = 0.1
    pop_house_code_missing: float = 0.05
    pop_dot_variant: float = 0.15
    hukou_elsewhere: float = 0.45  # hukou address differs from the residence
    # --- ps_housing damage ----------------------------------------------------------
    owner_legacy_id: float = 0.08
    owner_id_error: float = 0.01
    # --- ca_recipients damage (typed by hand) ---------------------------------------
    ca_homophone: float = 0.05
    ca_traditional: float = 0.03
    ca_stray_space: float = 0.05
    ca_fullwidth: float = 0.02
    ca_id_legacy: float = 0.06
    ca_id_lower_x: float = 0.5  # of IDs ending in X
    ca_id_blank: float = 0.05
    ca_id_float: float = 0.04  # numeric cell: reads back as 1.10105e+17
    ca_id_sci_text: float = 0.02  # text '1.10105E+17'
    ca_id_lost_digits: float = 0.02
    ca_guardian_id: float = 0.08  # of rows with a guardian: guardian's ID typed in
    ca_relative_phone: float = 0.4
    ca_birth_date_cell: float = 0.25
    ca_stopped: float = 0.04
    # --- hw_ehr_person damage -------------------------------------------------------
    health_id_missing: float = 0.25
    health_gender_odd: float = 0.02  # gender_code 0 or 9
    health_birth_jan1: float = 0.03  # elderly registered with only the year known
    health_unnamed_newborn: float = 0.4
    health_former_name: float = 0.6  # of renamed persons: an older record keeps it
    health_deleted: float = 0.004
    # --- formats everywhere -----------------------------------------------------------
    phone_variant: float = 0.35
    address_variant: float = 0.55
    # --- day 2 events -----------------------------------------------------------------
    day2_birth: float = 0.02  # per household with a mother aged 22–42
    day2_death: float = 0.003  # per person, weighted to the old
    day2_move_out: float = 0.006  # per household
    day2_move_in: float = 0.008  # new households per existing household
    day2_relocate: float = 0.006  # households moving within the district
    day2_phone_change: float = 0.01
    day2_name_change: float = 0.002
    day2_ca_leave: float = 0.03
    day2_ca_new: float = 0.005  # persons newly granted a benefit
    day2_ca_stop: float = 0.03
    day2_health_new: float = 0.005  # persons registering with a clinic
    day2_health_touch: float = 0.02  # records updated (tags, doctor) without a life event
    day2_health_mirror: float = 0.5  # life events the clinic records the same day
    day2_health_delete: float = 0.3  # deaths soft-deleted in health
    day2_house_change: float = 0.05  # empty registered rooms let or vacated
    day2_house_remove: float = 0.01  # empty rooms deregistered (merged, demolished)

    def __post_init__(self) -> None:
        bad = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if not isinstance(getattr(self, f.name), int | float)
            or not 0.0 <= float(getattr(self, f.name)) <= 1.0
        ]
        if bad:
            raise ConfigError(
                "error rates must be numbers between 0 and 1; got " + ", ".join(bad)
            )

    def as_dict(self) -> dict[str, float]:
        """Plain mapping, written beside the output so a day-2 run can compare."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ErrorRates:
        """Rebuild from :meth:`as_dict`; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown error rates {unknown}; expected some of {sorted(known)}")
        return cls(**values)
