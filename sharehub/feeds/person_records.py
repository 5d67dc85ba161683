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

from linkage.unpublished import forget_unpublished, note_unpublished
from schemas.contract import FEEDS, feed_contract
from sharehub import marks
from sharehub.delta import apply_delta, replace_scope, same_shape
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


def _union(scoped: bool = False) -> str:
    """The SELECT giving every current person record, in COLUMNS order; ``scoped``: only
    the records whose current version is in a batch of ``_marks_grown`` (:func:`_scope`)."""
    names = ", ".join(COLUMNS)
    selects = [
        # every SELECT ends in a WHERE
        _SELECTS[feed]
        + (f" AND {marks.in_grown_part(f'staging.{feed}', 'batch_id')}" if scoped else "")
        for feed in FEEDS
    ]
    union = "\nUNION ALL\n".join(selects)
    return f"SELECT * FROM ({union}) AS u({names})"


def _key(feed: str) -> str:
    return feed_contract(feed).key.name


def staged_sources() -> dict[str, str]:
    """The staging tables person records are read from, by the column naming a row's
    batch (`sharehub.marks`)."""
    return {f"staging.{feed}": "batch_id" for feed in FEEDS}


def records_of_new_batches(con: duckdb.DuckDBPyConnection, into: str) -> bool:
    """Temp table ``into`` (record_id, feed, source_key): every source record whose
    current version is in a batch of ``_marks_grown`` (`sharehub.marks.grown_parts`);
    False, and no table, when one of them has no key (it would share the NULL record id
    of every feed's keyless rows, so the caller compares everything instead).

    Why these hold every record whose current version changed since the marks: a
    current version changes only by a new row — an update, an end, a reactivation, a
    record gone from a full extract — which becomes the record's current version and
    is written with the batch that delivered it, a batch the marks have not seen.
    (A record whose newest row is older is as it was, even if an older row of it sits
    in such a batch.)
    """
    selects = [
        f"SELECT '{feed}' AS feed, {_key(feed)} AS source_key FROM staging.{feed} "
        f"WHERE is_current AND {marks.in_grown_part(f'staging.{feed}', 'batch_id')}"
        for feed in FEEDS
    ]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {into} AS "
        f"SELECT DISTINCT feed || ':' || source_key AS record_id, feed, source_key "
        f"FROM ({' UNION ALL '.join(selects)})"
    )
    if one(con, f"SELECT count(*) FROM {into} WHERE source_key IS NULL")[0]:
        con.execute(f"DROP TABLE {into}")
        return False
    return True


def _scope(con: duckdb.DuckDBPyConnection) -> bool:
    """Temp table ``_person_records_scope``: the records whose current version is in a
    batch the table has not seen (`records_of_new_batches`); False when the marks
    cannot say, and the whole table is compared instead. A record's row is built from
    its current version alone — a record that drops out (an owner emptied from a
    dwelling) does so by a new version too — so these are all the records whose row can
    differ, and their rows are read from those batches alone (which DuckDB finds by the
    zone maps of ``batch_id``, not by a scan of every version).
    """
    if marks.grown_parts(con, TABLE, list(staged_sources()), own=[TABLE]) is None:
        return False
    return records_of_new_batches(con, "_person_records_scope")


def build_person_records(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> int:
    """Bring ``staging.person_records`` up to date with the staging tables; return its rows.

    A day changes a few percent of the records. When the table's marks (`sharehub.marks`)
    say which staging batches it has not seen, only the records whose current version
    is in one of them are rewritten (:func:`_scope` says why no other row can differ);
    otherwise, when the table exists with the expected columns, every record is compared
    and those that appeared, changed or vanished (an owner emptied from a dwelling drops
    out) are rewritten (:func:`sharehub.delta.apply_delta`). Either way the table then
    holds exactly the rows a rebuild would, in another physical order. The first build,
    a table of another shape or ``full`` rebuild it sorted by feed and source key. One
    transaction, marks included, so a reader sees the previous table or the new one,
    never a half-built one; building twice gives the same table.
    """
    ensure_ledger(con)
    for feed in FEEDS:
        ensure_feed_tables(con, feed_contract(feed))
    query = _union()
    con.begin()
    try:
        marks.count_parts(con, staged_sources())
        incremental = not full and same_shape(con, TABLE, query)
        scoped = incremental and _scope(con)
        if scoped:
            delta = replace_scope(
                con, TABLE, _union(scoped=True), ("record_id",),
                "(SELECT record_id FROM _person_records_scope)", order="feed, source_key",
            )  # fmt: skip
            note_unpublished(con, "SELECT record_id FROM _person_records_scope")
            con.execute("DROP TABLE _person_records_scope")
        elif incremental:
            delta = apply_delta(con, TABLE, query, ("record_id",), order="feed, source_key")
            forget_unpublished(con)  # which keys it rewrote is not kept
        else:
            con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {query} ORDER BY feed, source_key")
            forget_unpublished(con)
        marks.save_marks(con, TABLE, own=[TABLE])
        marks.drop_temp(con)
        count = int(one(con, f"SELECT count(*) FROM {TABLE}")[0])
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if incremental:
        log.info(
            "updated %s: %d person records, %d rewritten (%d rows removed, %d added); %s",
            TABLE, count, delta.keys, delta.deleted, delta.inserted,
            "only the records of new batches rewritten" if scoped else "every record compared",
        )  # fmt: skip
    else:
        log.info("built %s: %d person records", TABLE, count)
    return count
