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
from sharehub.feeds.ledger import ensure_ledger
from sharehub.feeds.staging import ensure_feed_tables

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


def build_person_records(con: duckdb.DuckDBPyConnection) -> int:
    """(Re)build ``staging.person_records`` from the staging tables; return its row count.

    Built in one transaction with ``CREATE OR REPLACE``, so a reader sees the previous
    table or the new one, never a half-built one. Rebuilding twice gives the same table.
    """
    ensure_ledger(con)
    for feed in FEEDS:
        ensure_feed_tables(con, feed_contract(feed))
    names = ", ".join(COLUMNS)
    union = "\nUNION ALL\n".join(_SELECTS[feed] for feed in FEEDS)
    con.begin()
    try:
        con.execute(
            f"""CREATE OR REPLACE TABLE {TABLE} AS
                SELECT * FROM (SELECT * FROM ({union}) AS u({names}))
                ORDER BY feed, source_key"""
        )
        count = int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # type: ignore[index]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info("built %s: %d person records", TABLE, count)
    return count
