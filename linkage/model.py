"""The linkage model as data: which columns it reads and how it compares them.

Everything here is declarative (Splink creators and SQL written in the DuckDB dialect
with ``base_dialect_str`` so that sqlglot can translate it), so the same settings serve
DuckDB now and Spark later. Trained parameters live in a JSON file written by
`linkage.train` and read by `linkage.predict`; nothing here trains or predicts.

Link type: ``dedupe_only`` over the single ``linkage.person_features`` table. Every
record's ``unique_id`` (= ``<feed>:<source_key>``) is unique across the hub, people
repeat inside a feed as well as across feeds, and so ``link_and_dedupe`` over per-feed
tables would score exactly the same pairs; it would only add Splink's composite
``<source_dataset>-__-<unique_id>`` ids to every output and a register step per feed.
The feed stays available as ``source_dataset`` for reports.

Modelling choices that matter for Chinese resident data:

- Phone and address are one comparison ("contact"): both are household attributes
  (a shared home phone, a relative's phone on a civil-affairs row, one flat), so as two
  independent comparisons they would count the same evidence twice and push members of
  one household — twins above all — together.
- Two *different valid* resident IDs are strong evidence against a match: that level's
  m probability is fixed, not learned, because how rare it is among true matches is a
  fact about how IDs are issued (one per person), which no EM block measures well.
  An ID whose embedded birth date conflicts with the record's own birth date (a
  guardian's ID on a civil-affairs row) is treated as missing, not as evidence.
- A shared birth date inside one household (same room or phone) is weighed as the
  household sees it, not as strangers do: twins share it, so its u is fixed at a
  household rate. Without this, birth date and household agreement are counted as
  independent and same-sex twins lacking an ID on one record merge at district scale.
- Placeholder names (张丽之子) count as missing names, not as disagreeing names.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator

from linkage.blocking import prediction_blocking_rules
from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

# Chosen, not learned: P(two records of one person carry two different valid IDs,
# neither flagged as conflicting with its birth date). Match weight ≈ log2(m/u) ≈ -16.
DIFFERENT_VALID_IDS_M = 1e-5

# Chosen, not learned: P(two different people in one household — same room or phone —
# share a birth date or month). Twins make it far above the ~1/30000 of two strangers;
# random sampling cannot see it because it never samples within households.
SAME_BIRTH_IN_HOUSEHOLD_U = 0.01

# Fixed so that two trainings on the same data and seed produce byte-identical JSON.
MODEL_UID = "sharehub_person"

# Damerau-Levenshtein <= 1 between IDs, computed only where it can hold. Two 18-character
# IDs one substitution or adjacent swap apart (positions i, i+1) still agree on one of
# three windows: characters 7-12 if i+1 <= 6 or i >= 13, 13-18 if 6 <= i <= 11, 1-11 if
# i = 12. Strangers rarely agree on any (birth year-month; birth day, sequence and check;
# region, year and first month digit), so the costly function runs on ~0.5 % of the pairs
# u-sampling draws instead of all 5 million: training took 20 s at 10k persons, 17 s of it
# here. CASE, not AND: DuckDB evaluates both sides of an AND.
ONE_ID_EDIT = (
    "CASE WHEN length(id_norm_l) <> 18 OR length(id_norm_r) <> 18 "
    "OR substr(id_norm_l, 7, 6) = substr(id_norm_r, 7, 6) "
    "OR substr(id_norm_l, 13, 6) = substr(id_norm_r, 13, 6) "
    "OR substr(id_norm_l, 1, 11) = substr(id_norm_r, 1, 11) "
    "THEN damerau_levenshtein(id_norm_l, id_norm_r) <= 1 ELSE false END"
)

# One room, as residence or hukou address on either side; one household, by room or phone.
SAME_ROOM = (
    "(addr_key_l = addr_key_r OR addr_key_l = hukou_addr_key_r "
    "OR hukou_addr_key_l = addr_key_r OR hukou_addr_key_l = hukou_addr_key_r)"
)
SAME_HOUSEHOLD = f"({SAME_ROOM} OR phone_std_l = phone_std_r)"

TEXT_COLUMNS = (
    "unique_id",
    "source_dataset",
    "name_std",
    "surname",
    "given_name",
    "name_pinyin",
    "surname_pinyin",
    "given_pinyin",
    "id_norm",
    "id_problem",
    "birth_ym",
    "sex",
    "phone_std",
    "addr_estate",
    "addr_building",
    "addr_key",
    "hukou_addr_key",
    "record_status",
)
FLAG_COLUMNS = ("id_valid", "birth_conflict", "is_placeholder_name")
REQUIRED_COLUMNS = (*TEXT_COLUMNS, *FLAG_COLUMNS, "birth_date")


def _level(sql: str, label: str) -> cll.CustomLevel:
    return cll.CustomLevel(sql, label_for_charts=label, base_dialect_str="duckdb")


def _null_level(sql: str, label: str) -> ComparisonLevelCreator:
    return _level(sql, label).configure(is_null_level=True)


def _household_level(sql: str, label: str) -> ComparisonLevelCreator:
    """A birth level inside one household, whose u is fixed (see module docstring)."""
    return _level(f"{sql} AND {SAME_HOUSEHOLD}", label).configure(
        u_probability=SAME_BIRTH_IN_HOUSEHOLD_U, fix_u_probability=True
    )


def _name_comparison() -> ComparisonCreator:
    return cl.CustomComparison(
        output_column_name="name",
        comparison_description="name: exact / homophone / typo in given name / else",
        comparison_levels=[
            _null_level(
                "name_std_l IS NULL OR name_std_r IS NULL "
                "OR is_placeholder_name_l OR is_placeholder_name_r",
                "name missing or a placeholder (张丽之子)",
            ),
            cll.ExactMatchLevel("name_std", term_frequency_adjustments=True),
            _level("name_pinyin_l = name_pinyin_r", "same pinyin (homophone)"),
            # A typed slip keeps the surname, the given name's length and its first
            # sound (jing/jin, zhang/zang). Without those guards Jaro-Winkler on short
            # pinyin calls siblings' names alike: 超/浩 (chao/hao) score 0.92.
            cll.And(
                cll.ExactMatchLevel("surname_pinyin"),
                _level("length(given_name_l) = length(given_name_r)", "same given-name length"),
                _level(
                    "substr(given_pinyin_l, 1, 1) = substr(given_pinyin_r, 1, 1)",
                    "same first letter",
                ),
                cll.JaroWinklerLevel("given_pinyin", 0.9),
            ).configure(label_for_charts="same surname, given-name pinyin alike (JW >= 0.9)"),
            cll.ElseLevel(),
        ],
    )


def _id_comparison() -> ComparisonCreator:
    return cl.CustomComparison(
        output_column_name="id",
        comparison_description="resident ID: exact / one edit / two valid IDs / else",
        comparison_levels=[
            _null_level(
                "id_norm_l IS NULL OR id_norm_r IS NULL OR birth_conflict_l OR birth_conflict_r",
                "ID missing, damaged, or contradicting the birth date",
            ),
            cll.ExactMatchLevel("id_norm"),
            # A valid ID's check digit catches any single substitution or adjacent swap,
            # so this level only fires when at least one side is a mistyped ID.
            _level(ONE_ID_EDIT, "one typo or adjacent swap (Damerau-Levenshtein <= 1)"),
            _level("id_valid_l AND id_valid_r", "two different valid IDs").configure(
                m_probability=DIFFERENT_VALID_IDS_M, fix_m_probability=True
            ),
            cll.ElseLevel(),
        ],
    )


def _birth_comparison() -> ComparisonCreator:
    both_dates = "birth_date_l IS NOT NULL AND birth_date_r IS NOT NULL"
    # Within one household a shared birth date is far less telling than between
    # strangers (twins), so those levels carry a fixed, household-level u.
    return cl.CustomComparison(
        output_column_name="birth",
        comparison_description="birth: date / day-month swapped / year-month / year / else",
        comparison_levels=[
            _null_level("birth_ym_l IS NULL OR birth_ym_r IS NULL", "birth unknown"),
            _household_level("birth_date_l = birth_date_r", "same birth date, same household"),
            _level("birth_date_l = birth_date_r", "same birth date"),
            _level(
                f"{both_dates} AND year(birth_date_l) = year(birth_date_r) "
                "AND month(birth_date_l) = day(birth_date_r) "
                "AND day(birth_date_l) = month(birth_date_r)",
                "day and month swapped",
            ),
            _household_level("birth_ym_l = birth_ym_r", "same birth year-month, same household"),
            _level("birth_ym_l = birth_ym_r", "same birth year-month"),
            _level("substr(birth_ym_l, 1, 4) = substr(birth_ym_r, 1, 4)", "same birth year"),
            cll.ElseLevel(),
        ],
    )


def _contact_comparison() -> ComparisonCreator:
    nothing_comparable = (
        "(phone_std_l IS NULL OR phone_std_r IS NULL) "
        "AND (addr_estate_l IS NULL OR addr_estate_r IS NULL) "
        f"AND NOT coalesce({SAME_ROOM}, false)"
    )
    same_phone = _level("phone_std_l = phone_std_r", "same phone").configure(
        tf_adjustment_column="phone_std", tf_adjustment_weight=1.0
    )
    return cl.CustomComparison(
        output_column_name="contact",
        comparison_description="household contact: room and phone / room / phone / building / estate",
        comparison_levels=[
            _null_level(nothing_comparable, "no phone or address to compare"),
            _level(f"{SAME_ROOM} AND phone_std_l = phone_std_r", "same room and phone"),
            _level(SAME_ROOM, "same room (residence or hukou)"),
            same_phone,
            _level(
                "addr_estate_l = addr_estate_r AND addr_building_l = addr_building_r",
                "same building",
            ),
            _level("addr_estate_l = addr_estate_r", "same estate"),
            cll.ElseLevel(),
        ],
    )


def comparisons() -> list[ComparisonCreator]:
    """The comparisons, in the order their gamma columns appear in predictions."""
    return [
        _name_comparison(),
        _id_comparison(),
        _birth_comparison(),
        cl.ExactMatch("sex"),
        _contact_comparison(),
    ]


def settings_creator() -> SettingsCreator:
    """The untrained model: link type, blocking rules and comparisons."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=list(comparisons()),
        blocking_rules_to_generate_predictions=list(prediction_blocking_rules()),
        probability_two_random_records_match=1e-4,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["source_dataset"],
        linker_uid=MODEL_UID,
        em_convergence=1e-4,
        max_iterations=25,
    )


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE {table}").fetchall()
    except duckdb.Error as exc:
        raise LinkageError(f"cannot read features table {table}: {exc}") from exc
    return {str(r[0]): str(r[1]) for r in rows}


def create_input_table(
    con: duckdb.DuckDBPyConnection, features_table: str, *, view: bool = False
) -> str:
    """Copy the columns the model reads into a temporary table and return its name.

    Why a projection: the model must see the same, cleaned columns at training and at
    prediction (blank text as NULL, missing flags as false, ``birth_ym`` filled from
    ``birth_date``), whatever else the standardiser adds to its table.

    ``view``: a temporary view instead of a copy, for a reader that touches only a few
    of the rows or columns (an increment scores a few thousand records against the
    district): copying two million rows cost more than computing the projection where
    it is read.
    """
    columns = _table_columns(con, features_table)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise LinkageError(
            f"{features_table} lacks the columns the linkage model compares: "
            f"{', '.join(missing)}; expected all of {', '.join(REQUIRED_COLUMNS)} "
            "(see docs/architecture.md, linkage.person_features)"
        )
    keys = [f"CAST({c} AS VARCHAR) AS {c}" for c in ("unique_id", "source_dataset")]
    text = [
        f"NULLIF(trim(CAST({c} AS VARCHAR)), '') AS {c}"
        for c in TEXT_COLUMNS
        if c not in ("unique_id", "source_dataset", "birth_ym")
    ]
    flags = [f"coalesce(CAST({c} AS BOOLEAN), false) AS {c}" for c in FLAG_COLUMNS]
    name = f"__sharehub_link_input_{uuid.uuid4().hex[:8]}"
    sql = f"""
        CREATE TEMP {"VIEW" if view else "TABLE"} {name} AS
        SELECT {", ".join(keys)}, {", ".join(text)}, {", ".join(flags)},
               CAST(birth_date AS DATE) AS birth_date,
               coalesce(NULLIF(trim(CAST(birth_ym AS VARCHAR)), ''),
                        strftime(CAST(birth_date AS DATE), '%Y-%m')) AS birth_ym
        FROM {features_table}
    """
    try:
        con.execute(sql)
        # fetchall, not fetchone: DuckDB 2 refuses other work while a result is open
        n, distinct, null_ids = con.execute(
            f"SELECT count(*), count(DISTINCT unique_id), count(*) - count(unique_id) FROM {name}"
        ).fetchall()[0]
    except duckdb.Error as exc:
        drop_input_table(con, name)
        raise LinkageError(f"cannot project {features_table} for linkage: {exc}") from exc
    duplicates = n - null_ids - distinct
    if null_ids or duplicates:
        drop_input_table(con, name)
        raise LinkageError(
            f"{features_table}: unique_id must be present and unique; found {null_ids} "
            f"NULL and {duplicates} repeated among {n} rows"
        )
    if n < 2:
        drop_input_table(con, name)
        raise LinkageError(f"{features_table} has {n} records; linkage needs at least 2")
    log.debug("linkage input %s: %d records from %s", name, n, features_table)
    return name


def drop_input_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a table or view made by `create_input_table` (idempotent)."""
    is_view = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [name]
    ).fetchall()[0][0]
    con.execute(f"DROP {'VIEW' if is_view else 'TABLE'} IF EXISTS {name}")


def comparison_names(model: dict[str, Any]) -> list[str]:
    """Output column names of the comparisons in a saved model dict."""
    return [str(c["output_column_name"]) for c in model.get("comparisons", [])]
