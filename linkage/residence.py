"""``linkage.residence``: which person lives in or owns which dwelling.

Why a separate step from the house index: matching a record to a dwelling depends only on
the record (its 房屋编码 or address), while the person behind the record is known only after
clustering (``linkage.person_ids``). Keeping the two apart lets the house index be built
and inspected before linkage, and lets residence be rebuilt alone whenever person ids
move (a merge or split) without re-matching a single address.

One row per (source record, role): a resident link for every record that
``linkage.house_matches`` placed in a dwelling, and an owner link for every dwelling whose
产权人 is a person record (``ps_housing:<房屋编码>``). A person with three records at one
flat has three rows, each naming the record that says so, so every link can be explained.
``valid`` is false when the record has ended (注销, deleted, off the rolls) or the dwelling
has been deregistered: the link is history, not the present.
"""

from __future__ import annotations

import logging

import duckdb

from linkage.houses import HOUSES, MATCHES, OWNER_FEED, RESIDENCE_PENDING
from sharehub import marks
from sharehub.delta import Delta, apply_delta, replace_scope, same_shape, written
from sharehub.errors import ContractViolation
from sharehub.warehouse import table_exists

log = logging.getLogger(__name__)

RESIDENCE = "linkage.residence"

# ``{resident}``/``{owner}``: conditions narrowing the links to some records, or empty.
_LINKS = f"""
SELECT m.record_id, m.house_id, m.feed, m.link_source, 'resident' AS role,
       coalesce(m.record_status = 'active' AND h.status = 'active', false) AS valid
FROM {MATCHES} m JOIN {HOUSES} h ON h.house_id = m.house_id {{resident}}
UNION ALL
SELECT h.owner_record_id, h.house_id, '{OWNER_FEED}', 'owner', 'owner',
       coalesce(h.status = 'active', false)
FROM {HOUSES} h WHERE h.owner_record_id IS NOT NULL {{owner}}"""

# Every link with its person id, looked up once: ``known`` is false for a record that has
# none, so the orphans are counted from the same rows instead of by a second join.
_LINKS_WITH_IDS_SELECT = f"""
SELECT l.*, p.person_id, p.record_id IS NOT NULL AS known
FROM ({_LINKS}) l LEFT JOIN {{ids}} p ON p.record_id = l.record_id"""
_LINKS_WITH_IDS = f"CREATE OR REPLACE TEMP TABLE _links AS {_LINKS_WITH_IDS_SELECT}"
_WHOLE = {"resident": "", "owner": "", "ids": "linkage.person_ids"}
# Scoped: the links of _residence_scope's records, their ids from _residence_ids.
_SCOPED = {
    "resident": "WHERE m.record_id IN (SELECT record_id FROM _residence_scope)",
    "owner": "AND h.owner_record_id IN (SELECT record_id FROM _residence_scope)",
    "ids": "_residence_ids",
}

_RESIDENCE_COLUMNS = "person_id, house_id, record_id, feed, link_source, role, valid"
_RESIDENCE_SELECT = f"SELECT {_RESIDENCE_COLUMNS} FROM _links WHERE known"
# The same columns read from the links query itself: its shape, before _links exists.
_RESIDENCE_SELECT_SHAPE = (
    f"SELECT {_RESIDENCE_COLUMNS} FROM ({_LINKS_WITH_IDS_SELECT.format(**_WHOLE)}) WHERE known"
)
_ORDER = "house_id, role, record_id"
_ORPHANS = "SELECT count(*) FILTER (WHERE NOT known) FROM _links"

ID_CHANGES = "linkage.person_id_changes"
_ID_SOURCES = {ID_CHANGES: "run_id"}


def _scope(con: duckdb.DuckDBPyConnection) -> bool:
    """Temp table ``_residence_scope`` (record_id) of the records whose links can differ
    from the table's; False when that cannot be said, and every link is compared.

    A link reads the record's match and dwelling — what the house index rewrote since
    residence was last built is noted in ``linkage.residence_pending``, with the links
    left without a person id — and the record's person id. Person ids are written by
    `linkage.index.assign_person_ids` alone, which logs every record that changes id
    (merged, split off or moved) under the id it goes to: ``new_person_id`` of
    ``linkage.person_id_changes``, appended per run, and `sharehub.marks` tells the runs
    residence has not seen. A record that gets an id without such a row is new to the
    index, hence to the house index (pending), or was waiting for one (pending); one
    that loses its id has left ``staging.person_records``, which rewrites its match or
    its dwelling's owner (pending). So the scope is the pending records and the records
    now under an id that a logged change went to.
    """
    if marks.existing(con, [RESIDENCE_PENDING, ID_CHANGES]) != {RESIDENCE_PENDING, ID_CHANGES}:
        return False
    if marks.grown_parts(con, RESIDENCE, list(_ID_SOURCES), own=[RESIDENCE]) is None:
        return False
    # One pass over the ids finds both the records under a logged id and the ids of the
    # pending records, so the links need not look ids up in the whole table again.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _residence_ids AS
            SELECT record_id, person_id FROM linkage.person_ids
            WHERE record_id IN (SELECT record_id FROM {RESIDENCE_PENDING})
               OR person_id IN (SELECT new_person_id FROM {ID_CHANGES}
                                WHERE {marks.in_grown_part(ID_CHANGES, "run_id")})"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _residence_scope AS
            SELECT record_id FROM {RESIDENCE_PENDING} UNION SELECT record_id FROM _residence_ids"""
    )
    return True


def _write_residence(con: duckdb.DuckDBPyConnection, *, reuse: bool) -> tuple[Delta | None, bool]:
    """Bring ``linkage.residence`` up to date; (None when rebuilt, whether scoped).

    Why a delta: a day moves a few percent of the links (new records, changed matches,
    persons merged or split), and rewriting only their (record, role) rows skips sorting
    and writing the rest. The table holds the rows a rebuild would give, changed rows
    last. Scoped (`_scope`), only the links of the records that can have changed are
    looked up and rewritten. Leaves ``_links``: the links looked up.
    """
    if reuse and same_shape(con, RESIDENCE, _RESIDENCE_SELECT_SHAPE):
        if _scope(con):
            con.execute(_LINKS_WITH_IDS.format(**_SCOPED))
            delta = replace_scope(
                con, RESIDENCE, _RESIDENCE_SELECT, ("record_id", "role"), "_residence_scope",
                order=_ORDER, scope_key=("record_id",),
            )  # fmt: skip
            con.execute("DROP TABLE _residence_scope")
            con.execute("DROP TABLE _residence_ids")
            return delta, True
        con.execute(_LINKS_WITH_IDS.format(**_WHOLE))
        return apply_delta(
            con, RESIDENCE, _RESIDENCE_SELECT, ("record_id", "role"), order=_ORDER
        ), False
    con.execute(_LINKS_WITH_IDS.format(**_WHOLE))
    con.execute(f"CREATE OR REPLACE TABLE {RESIDENCE} AS {_RESIDENCE_SELECT} ORDER BY {_ORDER}")
    return None, False


def build_residence(con: duckdb.DuckDBPyConnection, *, reuse: bool = True) -> int:
    """(Re)build ``linkage.residence`` from the house index and person ids; return its rows.

    Needs ``linkage.houses`` and ``linkage.house_matches`` (:func:`build_house_index`) and
    ``linkage.person_ids``. A link whose record has no person id is dropped and counted in
    the log: it means the ids are older than the records, and the next identify step fixes
    it. Written in one transaction. With ``reuse`` and a table of a previous build only
    the links that differ are rewritten — looking only at the records that can have
    changed (`_scope`) when that can be said; the first build and ``reuse=False`` write it
    sorted by dwelling, role and record. Either way the same input gives the same rows.
    ``linkage.residence_pending`` is left holding the records whose links were dropped for
    want of a person id, to be looked at again next time.
    """
    for table, step in (
        (HOUSES, "build_house_index"),
        (MATCHES, "build_house_index"),
        ("linkage.person_ids", "the identify step (linkage.index)"),
    ):
        if not table_exists(con, table):
            raise ContractViolation(f"{table} does not exist; run {step} before build_residence")
    con.begin()
    try:
        marks.count_parts(con, _ID_SOURCES)
        delta, scoped = _write_residence(con, reuse=reuse)
        rows, residents, owners = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE role = 'resident'),
                       count(*) FILTER (WHERE role = 'owner') FROM {RESIDENCE}"""
        ).fetchall()[0]
        # Scoped, every link without an id is in _links: those of earlier runs were pending.
        orphans = con.execute(_ORPHANS).fetchall()[0][0]
        con.execute(
            f"CREATE OR REPLACE TABLE {RESIDENCE_PENDING} AS "
            "SELECT DISTINCT record_id FROM _links WHERE NOT known"
        )
        marks.save_marks(con, RESIDENCE, own=[RESIDENCE])
        marks.drop_temp(con)
        con.execute("DROP TABLE _links")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if orphans:
        log.warning(
            "%d house links dropped: their records have no person id in linkage.person_ids "
            "(ids older than the records?)",
            orphans,
        )
    log.info("built %s: %d links (%d resident, %d owner)", RESIDENCE, rows, residents, owners)
    log.info("%s %s (%s)", RESIDENCE, written(delta),
             "only links of changed matches and persons rewritten" if scoped else "all compared")  # fmt: skip
    return int(rows)
