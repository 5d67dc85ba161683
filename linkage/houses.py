"""The master house index: one row per dwelling, and which person records point at it.

Why a house index: the feeds describe the same flats in different words — public security
by 房屋编码 (``staging.ps_housing``, and 房屋编码 on population rows), civil affairs and
health only by a free-text address (``幸福里小区3号楼2单元501室``, ``幸福里3-2-501``,
``北京市朝阳区幸福里小区3栋2单元501``). The register of public security is the only list of
dwellings with a stable key, so it defines the dwellings; everything else is matched onto
it.

How a record finds its dwelling (``linkage.house_matches``, one row per non-owner record):

1. its 房屋编码, when it has one that the register knows (``house_code``);
2. otherwise the dwelling whose standardised address key (``estate|building|unit|room``,
   from :func:`linkage.standardize.standardize_address`) equals the record's
   ``linkage.person_features.addr_key`` (``address_match``). Only the full room-level key
   matches: a building or unit alone would put neighbours in one flat. A key held by two
   dwellings is ambiguous and links nothing; active dwellings take precedence over
   deregistered ones with the same key, so a flat re-registered under a new code is not
   ambiguous.

Both outcomes are kept for every record, so a population record with a code *and* an
address measures how often the address match agrees with the code.

``house_id`` is ``H`` + a hash of 房屋编码: opaque (no source key leaves the hub in it) and
identical on every re-run. Person-level links (``linkage.residence``) are built from these
matches in :mod:`linkage.residence`, once person ids exist.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from linkage import address_heads
from linkage.standardize import standardize_address
from sharehub import marks
from sharehub.delta import Delta, apply_delta, replace_scope, same_shape, written
from sharehub.errors import ContractViolation
from sharehub.feeds.person_records import TABLE as PERSON_RECORDS
from sharehub.feeds.person_records import records_of_new_batches, staged_sources
from sharehub.warehouse import add_to_set, one, table_exists

log = logging.getLogger(__name__)

HOUSES = "linkage.houses"
MATCHES = "linkage.house_matches"
OWNER_FEED = "ps_housing"

_HOUSES_DDL = f"""
CREATE OR REPLACE TABLE {HOUSES} (
    house_id VARCHAR PRIMARY KEY,
    house_code VARCHAR NOT NULL UNIQUE,
    address VARCHAR,
    addr_std VARCHAR,
    addr_estate VARCHAR,
    addr_building VARCHAR,
    addr_unit VARCHAR,
    addr_room VARCHAR,
    addr_key VARCHAR,
    usage VARCHAR,
    occupancy VARCHAR,
    status VARCHAR NOT NULL,
    owner_record_id VARCHAR
)"""
_HOUSE_COLUMNS = (
    "house_id", "house_code", "address", "addr_std", "addr_estate", "addr_building",
    "addr_unit", "addr_room", "addr_key", "usage", "occupancy", "status", "owner_record_id",
)  # fmt: skip

# The parse of each distinct address of the register: the previous build's (_PARSED_BEFORE)
# plus a fresh one for every address it did not hold (_UNPARSED, NULL included).
_PARSES_DDL = """
CREATE OR REPLACE TEMP TABLE _house_parses (
    address VARCHAR, addr_std VARCHAR, addr_estate VARCHAR, addr_building VARCHAR,
    addr_unit VARCHAR, addr_room VARCHAR, addr_key VARCHAR
)"""
_PARSED_BEFORE = f"""
INSERT INTO _house_parses
SELECT address, any_value(addr_std), any_value(addr_estate), any_value(addr_building),
       any_value(addr_unit), any_value(addr_room), any_value(addr_key)
FROM {HOUSES} WHERE address IS NOT NULL {{scope}} GROUP BY address"""
_UNPARSED = f"""
SELECT DISTINCT h.address FROM staging.{OWNER_FEED} h
ANTI JOIN _house_parses p ON p.address = h.address
WHERE h.is_current {{scope}}"""
# Scoped (`_HOUSE_SCOPE`): only the dwellings whose staged row may have changed, and
# only their addresses' parses.
_HOUSE_SCOPE = "_house_scope"
# The current rows of _house_scope are those in the batches the index has not seen.
_IN_HOUSE_SCOPE = f"AND {marks.in_grown_part(f'staging.{OWNER_FEED}', 'h.batch_id')}"
_ADDRESSES_IN_SCOPE = f"""AND address IN (
    SELECT h.address FROM staging.{OWNER_FEED} h WHERE h.is_current {_IN_HOUSE_SCOPE})"""

# Current dwellings of the register, ended ones included, in the columns of HOUSES. house_id
# is house_id() in SQL: sha256() gives lowercase hex of the UTF-8 bytes, as hashlib does.
_HOUSES_SELECT = f"""
SELECT 'H' || upper(sha256(h.house_code)[1:15]) AS house_id, h.house_code, h.address,
       p.addr_std, p.addr_estate, p.addr_building, p.addr_unit, p.addr_room, p.addr_key,
       h.usage, h.occupancy, h.record_status AS status, o.record_id AS owner_record_id
FROM staging.{OWNER_FEED} h
LEFT JOIN staging.person_records o ON o.feed = '{OWNER_FEED}' AND o.source_key = h.house_code
LEFT JOIN _house_parses p ON p.address IS NOT DISTINCT FROM h.address
WHERE h.is_current"""
_HOUSES_INSERT = f"""
INSERT INTO {HOUSES} ({", ".join(_HOUSE_COLUMNS)})
{_HOUSES_SELECT}
ORDER BY h.house_code"""
# house_id from 房屋编码 in SQL, as in _HOUSES_SELECT (and `house_id`).
_HOUSE_ID_SQL = "'H' || upper(sha256({code})[1:15])"
# The constraints _HOUSES_DDL declares: a table without them is rebuilt, not updated.
_HOUSES_CONSTRAINTS = """
SELECT count(*) FILTER (WHERE constraint_type = 'PRIMARY KEY'),
       count(*) FILTER (WHERE constraint_type = 'UNIQUE')
FROM duckdb_constraints()
WHERE schema_name = ? AND table_name = ?"""

# Per full key: how many dwellings of the best status tier hold it (an active dwelling
# wins over deregistered ones), and the one it names, NULL when two or more share it.
# ``{scope}``: the keys wanted (all, or those of the records being matched).
_KEY_DWELLINGS = f"""
SELECT addr_key, CASE WHEN active > 0 THEN active ELSE held END AS dwellings,
       CASE WHEN active > 0 THEN active_id ELSE any_id END AS only_id
FROM (SELECT addr_key, count(*) FILTER (WHERE status = 'active') AS active, count(*) AS held,
             min(house_id) FILTER (WHERE status = 'active') AS active_id, min(house_id) AS any_id
      FROM {HOUSES} WHERE addr_key IS NOT NULL {{scope}} GROUP BY addr_key)"""
_KEY_TARGETS_DDL = """
CREATE OR REPLACE TEMP TABLE _key_targets (addr_key VARCHAR, house_id VARCHAR, dwellings BIGINT)"""
_KEY_TARGETS = f"""
INSERT INTO _key_targets
SELECT addr_key, CASE WHEN dwellings = 1 THEN only_id END, dwellings FROM ({_KEY_DWELLINGS})"""
_AMBIGUOUS = f"SELECT count(*) FROM ({_KEY_DWELLINGS.format(scope='')}) WHERE dwellings > 1"
_KEYS_OF_SCOPE = "AND addr_key IN (SELECT addr_key FROM _rec)"

# What matching reads of each non-owner record; ``{scope}`` narrows it to some records.
_REC_SELECT = f"""
SELECT r.record_id, r.feed, r.record_status,
       nullif(trim(r.house_code), '') AS house_code,
       nullif(trim(r.address), '') IS NOT NULL AS has_address,
       f.addr_key
FROM staging.person_records r
LEFT JOIN linkage.person_features f ON f.unique_id = r.record_id
WHERE r.feed <> '{OWNER_FEED}' {{scope}}"""
# The match of each record of ``{rec}`` (rows of _REC_SELECT).
_MATCHED_SELECT = f"""
WITH matched AS (
    SELECT rec.*, h.house_id AS code_house_id, k.house_id AS addr_house_id,
           CASE WHEN NOT rec.has_address THEN 'no_address'
                WHEN rec.addr_key IS NULL THEN 'no_key'
                WHEN k.addr_key IS NULL THEN 'no_match'
                WHEN k.house_id IS NULL THEN 'ambiguous'
                ELSE 'matched' END AS addr_outcome
    FROM {{rec}} rec
    LEFT JOIN {HOUSES} h ON h.house_code = rec.house_code
    LEFT JOIN _key_targets k ON k.addr_key = rec.addr_key
)
SELECT record_id, feed, record_status, house_code, addr_key, code_house_id, addr_house_id,
       addr_outcome, coalesce(code_house_id, addr_house_id) AS house_id,
       CASE WHEN code_house_id IS NOT NULL THEN 'house_code'
            WHEN addr_house_id IS NOT NULL THEN 'address_match' END AS link_source
FROM matched"""
_MATCHES_SELECT = _MATCHED_SELECT.format(rec=f"({_REC_SELECT.format(scope='')})")

_RATES = f"""
SELECT feed,
       count(*),
       count(*) FILTER (WHERE house_code IS NOT NULL),
       count(code_house_id),
       count(*) FILTER (WHERE addr_outcome <> 'no_address'),
       count(addr_key),
       count(addr_house_id),
       count(*) FILTER (WHERE addr_outcome = 'ambiguous'),
       count(*) FILTER (WHERE code_house_id IS NOT NULL AND addr_house_id IS NOT NULL),
       count(*) FILTER (WHERE code_house_id = addr_house_id),
       count(*) FILTER (WHERE link_source = 'house_code'),
       count(*) FILTER (WHERE link_source = 'address_match')
FROM {MATCHES}
GROUP BY feed
ORDER BY feed"""


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class FeedMatch:
    """How one feed's person records found their dwellings (owners excluded)."""

    feed: str
    records: int
    with_house_code: int  # a non-empty 房屋编码 was delivered
    known_house_code: int  # … and the register knows it
    with_address: int
    with_key: int  # the address standardised to a full room-level key
    address_matched: int  # the key names exactly one dwelling
    ambiguous: int  # the key names two or more dwellings: not linked
    code_and_address: int  # both a known code and an address match
    code_address_agree: int  # … and both point at the same dwelling
    by_house_code: int
    by_address: int

    @property
    def linked(self) -> int:
        return self.by_house_code + self.by_address

    @property
    def linked_rate(self) -> float:
        """Share of the feed's records linked to a dwelling by either route."""
        return _ratio(self.linked, self.records)

    @property
    def address_match_rate(self) -> float:
        """Share of records with an address whose address names exactly one dwelling."""
        return _ratio(self.address_matched, self.with_address)

    @property
    def house_code_rate(self) -> float:
        """Share of delivered 房屋编码 that the register knows."""
        return _ratio(self.known_house_code, self.with_house_code)

    @property
    def agreement_rate(self) -> float:
        """Where code and address both link: share pointing at the same dwelling."""
        return _ratio(self.code_address_agree, self.code_and_address)


@dataclass(frozen=True)
class HouseIndexResult:
    """What one build of the house index found, per dwelling and per feed."""

    houses: int
    active: int
    with_key: int
    ambiguous_keys: int  # full keys held by two or more dwellings of the best status tier
    owners: int  # dwellings whose owner is a person record
    feeds: dict[str, FeedMatch] = field(default_factory=dict)


def house_id(house_code: str) -> str:
    """The opaque, stable id of a dwelling: ``H`` + 15 hex digits of sha256(房屋编码).

    A hash rather than the code itself keeps the police key out of shared tables; a
    collision (2⁻⁶⁰ per pair) would fail the primary key of ``linkage.houses`` loudly.
    """
    return "H" + hashlib.sha256(house_code.encode("utf-8")).hexdigest()[:15].upper()


def _require(con: duckdb.DuckDBPyConnection, table: str, step: str) -> None:
    if not table_exists(con, table):
        raise ContractViolation(f"{table} does not exist; run {step} before building houses")


def _parse_addresses(con: duckdb.DuckDBPyConnection, *, reuse: bool, scoped: bool) -> int:
    """Fill ``_house_parses`` with the parse of every current address (``scoped``: of the
    dwellings in ``_house_scope``); return how many were new.

    Standardising a register of 370,000 dwellings costs seconds a run, and a day changes a
    few hundred addresses, so the previous build's parse of an unchanged address string is
    copied in SQL and only the rest goes through :func:`standardize_address` — the one
    standardiser, so a reused parse and a fresh one cannot differ. ``reuse=False`` (a full
    re-link, as after an upgrade of the standardiser) parses everything again. Must run
    before ``linkage.houses`` is replaced: the previous parses are read from it.
    """
    con.execute(_PARSES_DDL)
    if reuse and table_exists(con, HOUSES):
        con.execute(_PARSED_BEFORE.format(scope=_ADDRESSES_IN_SCOPE if scoped else ""))
    unparsed = _UNPARSED.format(scope=_IN_HOUSE_SCOPE if scoped else "")
    new = [a for (a,) in con.execute(unparsed).fetchall()]
    if new:
        std = [standardize_address(a) for a in new]
        columns: dict[str, list[str | None]] = {
            "address": new,
            "addr_std": [s.addr_std for s in std],
            "addr_estate": [s.estate for s in std],
            "addr_building": [s.building for s in std],
            "addr_unit": [s.unit for s in std],
            "addr_room": [s.room for s in std],
            "addr_key": [s.key for s in std],
        }
        # Text arrays keep the VARCHAR type even when a column is all NULL.
        frame = pd.DataFrame({k: pd.array(v, dtype="str") for k, v in columns.items()})
        con.register("_new_parses", frame)
        try:
            con.execute(f"INSERT INTO _house_parses SELECT {', '.join(columns)} FROM _new_parses")
        finally:
            con.unregister("_new_parses")
    return len(new)


def match_rates(con: duckdb.DuckDBPyConnection) -> dict[str, FeedMatch]:
    """Per-feed match figures from ``linkage.house_matches`` (owners excluded)."""
    return {
        str(row[0]): FeedMatch(str(row[0]), *(int(v) for v in row[1:]))
        for row in con.execute(_RATES).fetchall()
    }


def _houses_updatable(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``linkage.houses`` is a previous build to update: the columns and the keys
    that ``_HOUSES_DDL`` declares (a table without them would never gain them)."""
    if not same_shape(con, HOUSES, _HOUSES_SELECT):
        return False
    schema, _, name = HOUSES.partition(".")
    primary, unique = one(con, _HOUSES_CONSTRAINTS, [schema, name])
    return bool(primary == 1 and unique == 1)


def _scope(con: duckdb.DuckDBPyConnection, *, records_in_step: bool) -> bool:
    """Temp tables ``_house_scope`` (house_code) and ``_house_index_records`` (record_id,
    feed, source_key) of the dwellings and records whose current versions are in
    batches the index has not seen (`records_of_new_batches`); False when that cannot be
    said, and everything is compared instead.

    Trusted when the index's marks (`sharehub.marks`) say which batches are new and
    ``staging.person_records`` is up to date with the same staging rows (it is built from
    them just before, and dwellings read their owner from it). Standardised features
    are taken to be up to date with ``staging.person_records`` too — the pipeline
    standardises right after staging, and a record's features change only with its
    staged values (`linkage.changes`), hence only for records of new batches.
    """
    if not records_in_step:
        log.info("%s is not up to date with staging; comparing every dwelling and record",
                 PERSON_RECORDS)  # fmt: skip
        return False
    if marks.grown_parts(con, HOUSES, list(staged_sources()), own=[HOUSES, MATCHES]) is None:
        return False
    if not records_of_new_batches(con, "_house_index_records"):
        return False
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_HOUSE_SCOPE} AS
            SELECT source_key AS house_code FROM _house_index_records WHERE feed = '{OWNER_FEED}'"""
    )
    return True


# The dwellings of _house_scope as the index holds them: before, then after, the rewrite.
_SCOPED_HOUSES = f"""
SELECT house_id, house_code, addr_key, owner_record_id FROM {HOUSES}
WHERE house_code IN (SELECT house_code FROM {_HOUSE_SCOPE})"""


def _write_houses(con: duckdb.DuckDBPyConnection, *, reuse: bool, scoped: bool) -> Delta | None:
    """Bring ``linkage.houses`` up to date; None when it was rebuilt from scratch.

    Why a delta: rebuilding 370,000 dwellings re-creates both key indexes for a day that
    changes a few hundred. A dwelling is rewritten when any column differs (its address
    parse, status, owner): DELETE first, then INSERT, so the keys hold throughout.
    ``scoped``: only the dwellings of ``_house_scope`` are rewritten — a dwelling's row
    reads its staged row, its owner record (built from that same row) and its address's
    parse — and ``_house_changes`` is left with their rows before and after.
    """
    if reuse and _houses_updatable(con):
        if scoped:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _house_changes AS {_SCOPED_HOUSES}")
            delta = replace_scope(
                con, HOUSES, f"{_HOUSES_SELECT} {_IN_HOUSE_SCOPE}", ("house_id",),
                f"(SELECT {_HOUSE_ID_SQL.format(code='house_code')} AS house_id "
                f"FROM {_HOUSE_SCOPE})",
                order="house_code",
            )  # fmt: skip
            con.execute(f"INSERT INTO _house_changes {_SCOPED_HOUSES}")
            return delta
        # Materialised: evaluating the join with person_records once measured faster.
        return apply_delta(
            con, HOUSES, _HOUSES_SELECT, ("house_id",), order="house_code", materialize=True
        )
    con.execute(_HOUSES_DDL)
    con.execute(_HOUSES_INSERT)
    return None


def _match_scope(con: duckdb.DuckDBPyConnection) -> None:
    """Temp tables ``_match_scope`` (record_id) of the records whose match can differ and
    ``_rec`` of what matching reads of them.

    A record's match reads its own staged row and features, the dwelling its 房屋编码
    names and the dwellings holding its address key. So beside the records of new
    batches (``_house_index_records``) come those whose code or key is that of a
    dwelling rewritten today, before or after (``_house_changes``): a dwelling that
    appeared, changed its key or its status can move the target of its key. The others'
    codes and keys are those of their stored match (their inputs did not change), which
    is where they are looked up.
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _match_scope AS
            SELECT record_id FROM _house_index_records WHERE feed <> '{OWNER_FEED}'
            UNION
            SELECT record_id FROM {MATCHES}
            WHERE house_code IN (SELECT house_code FROM _house_changes)
               OR addr_key IN (SELECT addr_key FROM _house_changes)"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rec AS "
        + _REC_SELECT.format(scope="AND r.record_id IN (SELECT record_id FROM _match_scope)")
    )


def _write_matches(con: duckdb.DuckDBPyConnection, *, reuse: bool, scoped: bool) -> Delta | None:
    """Bring ``linkage.house_matches`` up to date; None when it was rebuilt from scratch.

    Only records whose match differs are written: a new or ended record, a changed
    address, or a dwelling whose key became ambiguous or unambiguous for the records
    that carry it. ``scoped``: only the records of ``_match_scope`` are matched again
    (from ``_rec``) and rewritten.
    """
    if reuse and same_shape(con, MATCHES, _MATCHES_SELECT):
        if scoped:
            return replace_scope(
                con, MATCHES, _MATCHED_SELECT.format(rec="_rec"), ("record_id",),
                "_match_scope", order="record_id",
            )  # fmt: skip
        # Materialised: the query joins every record with its features; once is enough.
        return apply_delta(
            con, MATCHES, _MATCHES_SELECT, ("record_id",), order="record_id", materialize=True
        )
    con.execute(f"CREATE OR REPLACE TABLE {MATCHES} AS {_MATCHES_SELECT} ORDER BY record_id")
    return None


def _note_for_residence(con: duckdb.DuckDBPyConnection, scoped: bool) -> None:
    """Add the records whose residence links may have changed to ``linkage.residence_pending``.

    A link reads the record's match, the dwelling's status and, for an owner link, the
    dwelling's owner: so the records matched again, and a rewritten dwelling's owner
    record, before and after. (A record matched to a rewritten dwelling was matched
    again: the dwelling's code or key is its own.) Compared in full or rebuilt, the
    index does not say what changed: the set is dropped, and residence is compared in
    full.
    """
    if not scoped:
        forget_pending(con)
        return
    note_pending(
        con,
        """SELECT record_id FROM _match_scope
           UNION ALL
           SELECT owner_record_id FROM _house_changes WHERE owner_record_id IS NOT NULL""",
    )


def build_house_index(con: duckdb.DuckDBPyConnection, *, reuse: bool = True) -> HouseIndexResult:
    """(Re)build ``linkage.houses`` and ``linkage.house_matches``; report match rates.

    Reads ``staging.ps_housing`` (current versions, ended dwellings included with status
    ``deregistered`` so old links stay explainable), ``staging.person_records`` and
    ``linkage.person_features`` (run standardisation first). Both tables are written in
    one transaction, so a reader never sees houses and matches of different runs.

    With ``reuse`` (a daily run) and tables of a previous build, only the dwellings and
    matches that differ are rewritten: the tables then hold the rows a rebuild would give,
    changed rows last. When the index's marks say which staging batches are new since it
    was built (`_scope`), only the dwellings and records those batches touched, and the
    records a rewritten dwelling can move (`_match_scope`), are matched again and
    rewritten; otherwise every dwelling and record is compared.
    ``reuse=False`` and first builds write both tables from scratch, sorted (houses by
    房屋编码, matches by record id). Figures are counted from the tables, so they do not
    depend on the path. The records whose residence links may have changed are left in
    ``linkage.residence_pending`` for :func:`linkage.residence.build_residence`.
    """
    _require(con, f"staging.{OWNER_FEED}", "the pull of ps_housing")
    _require(con, "staging.person_records", "build_person_records")
    _require(con, "linkage.person_features", "standardisation (linkage.person_features)")
    con.begin()
    try:
        con.execute(_PARSES_DDL)  # empty: the shapes of the queries below read both
        con.execute(_KEY_TARGETS_DDL)
        marks.count_parts(con, staged_sources())
        in_step = marks.in_step(con, PERSON_RECORDS, list(staged_sources()), own=[PERSON_RECORDS])
        scoped = (
            reuse
            and _houses_updatable(con)
            and same_shape(con, MATCHES, _MATCHES_SELECT)
            and _scope(con, records_in_step=in_step)
        )
        parsed = _parse_addresses(con, reuse=reuse, scoped=scoped)
        address_heads.store(con)  # heads of new dwellings' addresses, for later runs
        houses_delta = _write_houses(con, reuse=reuse, scoped=scoped)
        if scoped:
            _match_scope(con)
        con.execute(_KEY_TARGETS.format(scope=_KEYS_OF_SCOPE if scoped else ""))
        matches_delta = _write_matches(con, reuse=reuse, scoped=scoped)
        _note_for_residence(con, scoped)
        if in_step:
            marks.save_marks(con, HOUSES, own=[HOUSES, MATCHES])
        else:  # the records read were not those of these staging rows: no marks
            marks.forget_marks(con, HOUSES)
        houses, active, keyed, owners = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE status = 'active'), count(addr_key),
                       count(owner_record_id) FROM {HOUSES}"""
        ).fetchall()[0]
        ambiguous = con.execute(_AMBIGUOUS).fetchall()
        # A record without features has no addr_key, so only those need the anti join;
        # and a record with features but no key has a features row without one.
        missing = con.execute(
            f"""SELECT count(*) FROM {MATCHES} m
                ANTI JOIN (SELECT unique_id FROM linkage.person_features WHERE addr_key IS NULL) f
                  ON f.unique_id = m.record_id
                WHERE m.addr_key IS NULL"""
        ).fetchall()
        for table in ("_key_targets", "_house_parses", "_house_changes", "_match_scope",
                      "_rec", _HOUSE_SCOPE, "_house_index_records"):  # fmt: skip
            con.execute(f"DROP TABLE IF EXISTS {table}")
        marks.drop_temp(con)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if missing[0][0]:
        log.warning(
            "%d person records have no row in linkage.person_features (stale features?); "
            "they can link only by 房屋编码",
            missing[0][0],
        )
    result = HouseIndexResult(
        houses=int(houses),
        active=int(active),
        with_key=int(keyed),
        ambiguous_keys=int(ambiguous[0][0]),
        owners=int(owners),
        feeds=match_rates(con),
    )
    log.info(
        "built %s: %d dwellings (%d active, %d with a room-level key, %d ambiguous keys); "
        "%d addresses standardised, the rest reused from the previous build",
        HOUSES,
        result.houses,
        result.active,
        result.with_key,
        result.ambiguous_keys,
        parsed,
    )
    log.info("%s %s, %s %s (%s)", HOUSES, written(houses_delta), MATCHES, written(matches_delta),
             "only dwellings and records of new batches, and those they move, rewritten"
             if scoped else "all compared")  # fmt: skip
    for m in result.feeds.values():
        log.info(
            "%s: %d of %d records linked (%d by 房屋编码, %d by address); address match "
            "%.1f%% of %d addresses, %d ambiguous",
            m.feed,
            m.linked,
            m.records,
            m.by_house_code,
            m.by_address,
            100 * m.address_match_rate,
            m.with_address,
            m.ambiguous,
        )
    return result


# Residence links to look at again: what the house index rewrote since residence was
# last built, and links left without a person id. Absent means "unknown, compare all".
RESIDENCE_PENDING = "linkage.residence_pending"


def note_pending(con: duckdb.DuckDBPyConnection, records_sql: str) -> None:
    """Add the record ids of ``records_sql`` to ``linkage.residence_pending``, if kept
    (absent: everything may have changed, `sharehub.warehouse.add_to_set`)."""
    add_to_set(con, RESIDENCE_PENDING, "record_id", records_sql)


def forget_pending(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``linkage.residence_pending``: residence is compared in full next time."""
    con.execute(f"DROP TABLE IF EXISTS {RESIDENCE_PENDING}")


# Shared tables built from the house index, in the shape of sharehub.publish.tables:
# name → SELECT for the candidate, and name → (description, SQL returning offending rows).
HOUSE_CANDIDATES: dict[str, str] = {
    "house": f"SELECT {', '.join(_HOUSE_COLUMNS)} FROM {HOUSES} ORDER BY house_id",
    "residence": """
        SELECT person_id, house_id, record_id, feed, link_source, role, valid
        FROM linkage.residence ORDER BY house_id, role, record_id
    """,
}

HOUSE_CHECKS: dict[str, list[tuple[str, str]]] = {
    "house": [
        ("house_id is not null", "SELECT house_code FROM {t} WHERE house_id IS NULL"),
        ("house_id is unique", "SELECT house_id, count(*) n FROM {t} GROUP BY 1 HAVING n > 1"),
        ("house_code is not null", "SELECT house_id FROM {t} WHERE house_code IS NULL"),
        ("house_code is unique", "SELECT house_code, count(*) n FROM {t} GROUP BY 1 HAVING n > 1"),
    ],
    "residence": [
        (
            "every residence row points to an existing house",
            "SELECT r.record_id, r.house_id FROM {t} r "
            "ANTI JOIN shared.house__candidate h ON h.house_id = r.house_id",
        ),
        (
            "every residence row points to a person in person_xref",
            "SELECT r.record_id, r.person_id FROM {t} r "
            "ANTI JOIN shared.person_xref__candidate x ON x.person_id = r.person_id",
        ),
        (
            "the linking record belongs to that person in person_xref",
            "SELECT r.record_id, r.person_id FROM {t} r ANTI JOIN shared.person_xref__candidate x "
            "ON x.record_id = r.record_id AND x.person_id = r.person_id",
        ),
        (
            "one row per record and role",
            "SELECT record_id, role, count(*) n FROM {t} GROUP BY 1, 2 HAVING n > 1",
        ),
        (
            "role and link_source are known values",
            "SELECT record_id, role, link_source FROM {t} "
            "WHERE role NOT IN ('resident', 'owner') "
            "OR link_source NOT IN ('house_code', 'address_match', 'owner') OR valid IS NULL",
        ),
    ],
}
