"""Build ``staging.person_records``: every person record the hub links, from all four feeds.

Why one table: linkage compares people, not feeds, so each feed's newest version of each
record is mapped once, here, onto the shape docs/architecture.md fixes. Records that have
ended (注销, soft-deleted, off the civil-affairs rolls) are included with their
``record_status``: linkage must still see them to keep identities stable. The owner named
on a dwelling (产权人) is a person record too, keyed by 房屋编码.

Values stay as delivered (text); only coded values are mapped (health gender_code 1→男,
2→女). Chinese-specific cleaning is ``linkage.standardize``'s job.
"""

from __future__ import annotations

import logging

import duckdb

from schemas.contract import FEEDS, feed_contract
from sharehub.delta import apply_delta, same_shape
from sharehub.feeds.ledger import ensure_ledger
from sharehub.feeds.staging import ensure_feed_tables
from sharehub.warehouse import one

log = logging.getLogger(__name__)

TABLE = "staging.person_records"

COLUMNS = (
    "record_id",
    "feed",
    "source_key",
    "batch_id",
    "name",
    "id_number",
    "id_type",
    "sex_raw",
    "birth_raw",
    "phone",
    "address",
    "hukou_address",
    "house_code",
    "record_status",
    "updated_at",
)

# One SELECT per feed, each yielding COLUMNS in order from the current version of a record.
_SELECTS = {
    "ps_population": """
        SELECT 'ps_population:' || person_no, 'ps_population', person_no, batch_id,
               name, id_number,
               CASE WHEN id_number IS NOT NULL AND coalesce(person_category, '') <> '境外人员'
                    THEN '01' END,
               sex, strftime(birth_date, '%Y%m%d'), phone, residence_address, hukou_address,
               house_code, record_status, updated_at
        FROM staging.ps_population WHERE is_current""",
    "ps_housing": """
        SELECT 'ps_housing:' || house_code, 'ps_housing', house_code, batch_id,
               owner_name, owner_id_number, NULL, NULL, NULL, NULL, NULL, NULL,
               house_code, record_status, updated_at
        FROM staging.ps_housing
        WHERE is_current AND (owner_name IS NOT NULL OR owner_id_number IS NOT NULL)""",
    "ca_recipients": """
        SELECT 'ca_recipients:' || recipient_no, 'ca_recipients', recipient_no, batch_id,
               name, id_number, CASE WHEN id_number IS NOT NULL THEN '01' END,
               sex, birth_ym, phone, home_address, hukou_address, NULL,
               record_status, CAST(NULL AS TIMESTAMP)
        FROM staging.ca_recipients WHERE is_current""",
    "hw_ehr_person": """
        SELECT 'hw_ehr_person:' || record_id, 'hw_ehr_person', record_id, batch_id,
               name, id_no, id_type,
               CASE gender_code WHEN 1 THEN '男' WHEN 2 THEN '女' END,
               strftime(birth_date, '%Y-%m-%d'), mobile, address, NULL, NULL,
               record_status, updated_at
        FROM staging.hw_ehr_person WHERE is_current""",
}


def _union() -> str:
    """The SELECT giving every current person record, in COLUMNS order."""
    names = ", ".join(COLUMNS)
    union = "\nUNION ALL\n".join(_SELECTS[feed] for feed in FEEDS)
    return f"SELECT * FROM ({union}) AS u({names})"


def build_person_records(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> int:
    """Bring ``staging.person_records`` up to date with the staging tables; return its rows.

    A day changes a few percent of the records, so when the table exists with the
    expected columns only the records that appeared, changed or vanished (an owner
    emptied from a dwelling drops out) are rewritten (:func:`sharehub.delta.apply_delta`):
    the table then holds exactly the rows a rebuild would, in another physical order.
    The first build, a table of another shape or ``full`` rebuild it sorted by feed and
    source key. Either way one transaction, so a reader sees the previous table or the
    new one, never a half-built one; building twice gives the same table.
    """
    ensure_ledger(con)
    for feed in FEEDS:
        ensure_feed_tables(con, feed_contract(feed))
    query = _union()
    con.begin()
    try:
        incremental = not full and same_shape(con, TABLE, query)
        if incremental:
            delta = apply_delta(con, TABLE, query, ("record_id",), order="feed, source_key")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {query} ORDER BY feed, source_key")
        count = int(one(con, f"SELECT count(*) FROM {TABLE}")[0])
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if incremental:
        log.info(
            "updated %s: %d person records, %d rewritten (%d rows removed, %d added)",
            TABLE, count, delta.keys, delta.deleted, delta.inserted,
        )  # fmt: skip
    else:
        log.info("built %s: %d person records", TABLE, count)
    return count
