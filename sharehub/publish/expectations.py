"""Great Expectations suites derived from the shared-table contracts, run on pandas batches.

Why derived: the contract is the single source of what a shared table must satisfy, so the
suite is rebuilt from it on every publication (required → not null, unique/primaryKey →
unique, duplicateValues → compound key, enum → accepted values, minimum/maximum → range,
relationships → referential integrity, rowCount → bound against the previous version);
nothing is restated by hand.

Why pandas batches: Great Expectations does not validate DuckDB through duckdb-engine
reliably (DESIGN.md), and the candidates are built in an open DuckDB transaction that no
second connection could see anyway. Each candidate is read once into a DataFrame.

Why referential integrity is computed in DuckDB: an expectation looks at one batch, while
a foreign key spans two tables. DuckDB joins them and adds, per row, the key that finds no
match (an "orphan" column, NULL when the row is fine); the suite expects that column to be
null, so the unexpected values GE reports are the offending keys themselves. Links whose
source is a warehouse table (every staged record must be cross-referenced) get a batch of
their own holding only the orphans.

Great Expectations is imported lazily (about 3 s): only publication pays for it, and it
starts the import in the background before building the version (`sharehub.publish.gx_import`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from sharehub.delta import shape
from sharehub.errors import PublishAborted
from sharehub.publish import gx_import
from sharehub.publish.contract import Link, SharedContract, shared_contract

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.expectations.expectation import Expectation

log = logging.getLogger(__name__)

EXAMPLES = 5
# Bump when the rules deriving expectations from a contract change: a version validated
# under the old rules is then no baseline for validating only what changed.
SUITE_RULES = 1
# Per-row flag of a changed table's other rows (`_changed_batch_sql`): shares a key.
_KEEP = "_sharehub_keep"
Relation = Callable[[str], str]
"""Maps a shared table name to the relation holding the version being validated."""


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation: where, what, how many rows, and a few of them."""

    table: str
    expectation: str
    description: str
    column: str | None
    unexpected_count: int | None
    examples: tuple[Any, ...]

    def __str__(self) -> str:
        count = f" ({self.unexpected_count} rows)" if self.unexpected_count else ""
        return f"shared.{self.table}: {self.description} failed{count}, e.g. {list(self.examples)}"


def orphan_column(index: int) -> str:
    """Name of the computed column holding the unmatched key of the table's ``index``-th link."""
    return f"_orphan_{index}"


def own_links(contract: SharedContract) -> list[Link]:
    """Links whose rows are the table's own rows (checked on the table's batch)."""
    return [link for link in contract.links if link.source.shared and link.source.table == contract.name]


def coverage_links(contract: SharedContract) -> list[Link]:
    """Links from a warehouse table into this one (checked on a batch of their own)."""
    return [link for link in contract.links if link not in own_links(contract)]


def _gx() -> Any:
    """Great Expectations (imported lazily, possibly already in the background:
    `sharehub.publish.gx_import`)."""
    return gx_import.load()


def _gxe() -> Any:
    return _gx().expectations


def _meta(description: str, column: str | None, rename: dict[str, str] | None = None) -> dict[str, Any]:
    """What a failure report needs: the rule in words, the contract column(s), and the
    reader-facing name of a computed column appearing in the examples."""
    return {"description": description, "column": column, "rename": rename or {}}


def column_expectations(contract: SharedContract) -> list[Expectation]:
    """Expectations on the table's own columns, in contract order."""
    gxe = _gxe()
    found: list[Expectation] = []
    for col in contract.columns:
        name = col.name
        if col.required:
            found.append(gxe.ExpectColumnValuesToNotBeNull(
                column=name, meta=_meta(f"{name} is not null", name)))
        if col.unique:
            found.append(gxe.ExpectColumnValuesToBeUnique(
                column=name, meta=_meta(f"{name} is unique", name)))
        if col.valid_values:
            values = list(col.valid_values)
            found.append(gxe.ExpectColumnValuesToBeInSet(
                column=name, value_set=values, meta=_meta(f"{name} is one of {values}", name)))
        if col.minimum is not None or col.maximum is not None:
            found.append(gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=col.minimum, max_value=col.maximum,
                meta=_meta(f"{name} lies in [{col.minimum}, {col.maximum}]", name)))
    for key in contract.compound_keys:
        found.append(gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(key), meta=_meta(f"({', '.join(key)}) is unique", ", ".join(key))))
    return found


def _row_count_expectation(contract: SharedContract, previous_rows: int | None) -> Expectation | None:
    bound = contract.row_count
    if bound is None or not previous_rows:
        return None
    low, high = bound.bounds(previous_rows)
    return _gxe().ExpectTableRowCountToBeBetween(
        min_value=low, max_value=high,
        meta=_meta(f"row count lies in [{low}, {high}]: {bound.min_change_pct:+g}%..."
                   f"{bound.max_change_pct:+g}% (±{bound.tolerance_rows} rows) of the "
                   f"previous version's {previous_rows}", None))  # fmt: skip


def build_suite(
    contract: SharedContract, *, previous_rows: int | None = None, row_count: bool = True
) -> ExpectationSuite:
    """The suite for the table's own batch (its columns plus one orphan column per own link).

    ``previous_rows`` is the published version's row count; without one (first version, or
    an empty previous table) the rowCount bound has nothing to compare with and is skipped.
    ``row_count=False`` leaves the bound out, for a batch holding only the changed rows
    (`row_count_suite` checks it on the whole table then).
    """
    gx = _gx()
    gxe = gx.expectations
    links = own_links(contract)
    orphans = [orphan_column(i) for i in range(len(links))]
    expectations = [gxe.ExpectTableColumnsToMatchOrderedList(
        column_list=[*contract.names, *orphans],
        meta=_meta(f"columns are the contract's {list(contract.names)}", None))]
    expectations += column_expectations(contract)
    for link, orphan in zip(links, orphans, strict=True):
        expectations.append(gxe.ExpectColumnValuesToBeNull(column=orphan, meta=_meta(
            link.description, ", ".join(link.source.columns), {orphan: f"not in {link.target}"})))
    bound = _row_count_expectation(contract, previous_rows) if row_count else None
    if bound is not None:
        expectations.append(bound)
    return gx.ExpectationSuite(name=f"shared.{contract.name}", expectations=expectations)


def row_count_suite(contract: SharedContract, previous_rows: int | None) -> ExpectationSuite | None:
    """The rowCount bound alone, for a batch as long as the table (see `validate`)."""
    bound = _row_count_expectation(contract, previous_rows)
    if bound is None:
        return None
    return _gx().ExpectationSuite(name=f"shared.{contract.name} row count", expectations=[bound])


def coverage_suite(link: Link) -> ExpectationSuite:
    """The suite for a coverage batch: its single orphan column must be all null."""
    gx = _gx()
    return gx.ExpectationSuite(name=f"coverage {link.source} → {link.target}", expectations=[
        gx.expectations.ExpectColumnValuesToBeNull(
            column=orphan_column(0), meta=_meta(link.description, ", ".join(link.source.columns)))])


def quote(name: str) -> str:
    """A column name as a quoted SQL identifier (contract names such as role, value, usage)."""
    return '"' + name.replace('"', '""') + '"'


def _relation(table: str, shared: bool, relation: Relation) -> str:
    return relation(table) if shared else table


def _value_sql(link: Link, alias: str) -> str:
    """The link's source value of row ``alias`` as text, as failure examples show it."""
    if len(link.source.columns) == 1:
        return f"CAST({alias}.{quote(link.source.columns[0])} AS VARCHAR)"
    return "concat_ws(', ', " + ", ".join(
        f"'{c}=' || CAST({alias}.{quote(c)} AS VARCHAR)" for c in link.source.columns) + ")"


def _matches(link: Link, source: str, target: str) -> str:
    """SQL: row ``source`` points to row ``target`` (every column equal; NULL never matches)."""
    return " AND ".join(f"{target}.{quote(t)} = {source}.{quote(s)}"
                        for s, t in zip(link.source.columns, link.target.columns, strict=True))


def _orphan_sql(link: Link, alias: str, target: str, index: int, within: str | None = None) -> tuple[str, str]:
    """(JOIN clause, orphan expression) for one link of rows aliased ``alias``.

    ``within`` (a relation holding every row the expression is computed for) narrows the
    target to the values those rows point to before it is made distinct: the same
    matches, without aggregating a table of millions of rows for a few thousand.
    """
    keys = [f"k{i}" for i in range(len(link.target.columns))]
    picks = ", ".join(f"u.{quote(c)} AS {k}" for c, k in zip(link.target.columns, keys, strict=True))
    on = " AND ".join(f"o{index}.{k} = {alias}.{quote(c)}"
                      for k, c in zip(keys, link.source.columns, strict=True))
    narrow = f" WHERE EXISTS (SELECT 1 FROM {within} _w WHERE {_matches(link, '_w', 'u')})" if within else ""
    join = f"LEFT JOIN (SELECT DISTINCT {picks} FROM {target} u{narrow}) o{index} ON {on}"
    present = " AND ".join(f"{alias}.{quote(c)} IS NOT NULL" for c in link.source.columns)
    return join, f"CASE WHEN {present} AND o{index}.k0 IS NULL THEN {_value_sql(link, alias)} END"


@dataclass(frozen=True)
class Changes:
    """A table changed in place in the version being validated (`sharehub.publish.delta`)."""

    rows: str  # condition on the row alias ``t``: the row lies at a rewritten key
    written: str  # SELECT of exactly the rows written at those keys
    # relation of the deleted rows' values that other tables point to (None: not kept)
    gone: str | None = None


def batch_sql(
    contract: SharedContract,
    relation: Relation,
    baseline: str | None = None,
    changes: Mapping[str, Changes] | None = None,
) -> str:
    """SELECT yielding the table's batch: every row and column, plus the orphan columns.

    ``t.*`` rather than the contract's columns: an extra or missing column must fail the
    column-list expectation with a readable message, not the SELECT.

    With ``baseline`` (a published version of the same table that passed these same
    suites) the batch holds only the rows that can fail now: rows not in the baseline
    (compared by row hash as multisets — EXCEPT ALL — so a second copy of an unchanged
    row counts as new), rows with an orphan key (a target row may have gone), and
    rows sharing a unique or compound key with a changed row (a duplicate needs both).
    Every other row is identical to one that passed, in a table whose keys it still
    cannot collide with. Two different rows with equal 64-bit hashes would be taken as
    unchanged: about one chance in 10^7 for two million rows.

    ``changes`` replaces that comparison for a table changed in place (in the publishing
    transaction, at the keys that differ: `sharehub.publish.delta`), whose changed rows
    are known; the batch is the same rows. Where every table the rows point to also
    changed in place and kept its deleted values (`Changes.gone`), the rows at risk of
    being orphans are narrowed too: an unchanged row pointed to a target row that passed
    with it, so it can be an orphan now only if a deleted target row held its value
    (`_changed_batch_sql`).
    """
    links = own_links(contract)
    table = relation(contract.name)
    changes = changes or {}
    own = changes.get(contract.name)
    targets = [changes.get(link.target.table) if link.target.shared else None for link in links]
    if own is not None and all(t is not None and t.gone is not None for t in targets):
        return _changed_batch_sql(contract, relation, own, changes)
    joins, orphans, tests = [], [], []
    for i, link in enumerate(links):
        target = _relation(link.target.table, link.target.shared, relation)
        join, expr = _orphan_sql(link, "t", target, i)
        joins.append(join)
        orphans.append(f"{expr} AS {orphan_column(i)}")
        tests.append(f"({expr}) IS NOT NULL")
    select = ", ".join(["t.*", *orphans])
    sql = f"SELECT {select} FROM {table} t " + " ".join(joins)
    if baseline is None and own is None:
        return sql
    if own is None:
        prelude = (
            f"_delta AS (SELECT hash(c) AS h FROM {table} c EXCEPT ALL SELECT hash(b) FROM {baseline} b), "
            f"_changed AS (SELECT * FROM {table} c WHERE hash(c) IN (SELECT h FROM _delta))"
        )
        delta = "hash(t) IN (SELECT h FROM _delta)"
    else:
        prelude, delta = f"_changed AS ({own.written})", own.rows
    tests.insert(0, delta)
    tests += _shared_key_tests(contract)
    return f"WITH {prelude} {sql} WHERE " + " OR ".join(tests)


def _shared_key_tests(contract: SharedContract) -> list[str]:
    """Conditions on row ``t``: it shares a unique or compound key with a ``_changed`` row."""
    keys = [(c.name,) for c in contract.columns if c.unique] + list(contract.compound_keys)
    tests = []
    for key in keys:
        same = " AND ".join(f"n.{quote(k)} = t.{quote(k)}" for k in key)
        tests.append(f"EXISTS (SELECT 1 FROM _changed n WHERE {same})")
    return tests


def _changed_batch_sql(
    contract: SharedContract, relation: Relation, own: Changes, changes: Mapping[str, Changes]
) -> str:
    """`batch_sql` of a table changed in place whose every link target kept its deleted
    values: the written rows (``_changed``, read from the new rows, not from the table),
    plus the other rows of the table that share a key with one of them or are orphans.

    Why this shape: an unchanged row can only be an orphan if it points to a deleted
    value, and the conditions choosing the other rows need only the key and link columns;
    the few rows they choose (none on an ordinary day) are then fetched whole by rowid.
    Reading every column of a million golden rows to evaluate them cost more than all
    the rest of the validation's SQL.
    """
    links = own_links(contract)
    table = relation(contract.name)
    keys = [(c.name,) for c in contract.columns if c.unique] + list(contract.compound_keys)
    # one LEFT JOIN per condition on distinct values (a plain hash join): EXISTS inside an
    # OR made DuckDB de-duplicate the table's own values first, a million of them
    matches: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
        (f"_s{i}", "_changed", key, key) for i, key in enumerate(keys)
    ] + [
        (f"_g{i}", str(changes[link.target.table].gone), link.target.columns, link.source.columns)
        for i, link in enumerate(links)
    ]  # fmt: skip
    found = []
    for alias, source, their, ours in matches:
        picks = ", ".join(quote(c) for c in their)
        on = " AND ".join(f"{alias}.{quote(a)} = t.{quote(b)}" for a, b in zip(their, ours, strict=True))
        found.append((f"LEFT JOIN (SELECT DISTINCT {picks}, true AS hit FROM {source}) {alias} ON {on}",
                      f"{alias}.hit IS NOT NULL"))  # fmt: skip
    shares = [hit for (alias, *_), (_, hit) in zip(matches, found, strict=True) if alias.startswith("_s")]
    narrow = dict.fromkeys(
        [*contract.key, *(k for key in keys for k in key), *(c for link in links for c in link.source.columns)]
    )
    cols = ", ".join(f"t.{quote(c)}" for c in narrow)
    written_joins, written_orphans, other_joins, other_orphans, other_tests = [], [], [], [], [f"o.{_KEEP}"]
    for i, link in enumerate(links):
        target = _relation(link.target.table, link.target.shared, relation)
        join, expr = _orphan_sql(link, "w", target, i, within="_changed")
        written_joins.append(join)
        written_orphans.append(f"{expr} AS {orphan_column(i)}")
        join, expr = _orphan_sql(link, "o", target, i, within="_others")
        other_joins.append(join)
        other_orphans.append(f"{expr} AS {orphan_column(i)}")
        other_tests.append(f"({expr}) IS NOT NULL")
    picked = ", ".join(["o._row", *other_orphans])
    fetched = ", ".join(["t.*", *(f"p.{orphan_column(i)}" for i in range(len(links)))])
    return (
        f"WITH _changed AS MATERIALIZED ({own.written}), "
        f"_others AS MATERIALIZED (SELECT t.rowid AS _row, {cols}, ({' OR '.join(shares) or 'false'}) AS {_KEEP} "
        f"FROM {table} t {' '.join(join for join, _ in found)} "
        f"WHERE ({' OR '.join(hit for _, hit in found) or 'false'}) AND NOT ({own.rows})), "
        f"_picked AS MATERIALIZED (SELECT {picked} FROM _others o {' '.join(other_joins)} "
        f"WHERE {' OR '.join(other_tests)}) "
        f"SELECT {', '.join(['w.*', *written_orphans])} FROM _changed w {' '.join(written_joins)} "
        f"UNION ALL SELECT {fetched} FROM {table} t JOIN _picked p ON t.rowid = p._row"
    )


def coverage_sql(link: Link, relation: Relation) -> str:
    """SELECT yielding only the source rows that find no match in the target."""
    source = _relation(link.source.table, link.source.shared, relation)
    target = _relation(link.target.table, link.target.shared, relation)
    present = " AND ".join(f"s.{quote(c)} IS NOT NULL" for c in link.source.columns)
    return (f"SELECT {_value_sql(link, 's')} AS {orphan_column(0)} FROM {source} s WHERE {present} "
            f"AND NOT EXISTS (SELECT 1 FROM {target} u WHERE {_matches(link, 's', 'u')})")


def type_failures(
    con: duckdb.DuckDBPyConnection, contract: SharedContract, relation: Relation
) -> list[ExpectationFailure]:
    """Columns whose DuckDB type differs from the contract's physicalType.

    Checked in DuckDB, not by GE: a pandas batch has lost the SQL types (DECIMAL becomes
    float, DATE becomes datetime), and the PostgreSQL tables are created from these types.
    """
    actual = {row[0]: row[1] for row in con.execute(f"DESCRIBE {relation(contract.name)}").fetchall()}
    wrong = [
        {"column": c.name, "expected": c.duckdb_type, "found": actual[c.name]}
        for c in contract.columns
        if c.name in actual and actual[c.name] != c.duckdb_type
    ]
    if not wrong:
        return []
    return [ExpectationFailure(contract.name, "column_types_match_contract",
                               "column types are the contract's physicalType",
                               ", ".join(w["column"] for w in wrong), len(wrong), tuple(wrong))]


def _plain(value: Any) -> Any:
    """Numpy scalars and NaN as plain Python, so failures print and serialise cleanly."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _examples(result: Mapping[str, Any], rename: Mapping[str, str]) -> tuple[Any, ...]:
    # With index columns GE lists the offending rows as dicts of key and value; without
    # them it lists pandas positions, which mean nothing to a reader: use the values then.
    rows = result.get("partial_unexpected_index_list")
    if not rows or not isinstance(rows[0], dict):
        rows = result.get("partial_unexpected_list")
    if rows is None:
        return (_plain(result.get("observed_value")),) if "observed_value" in result else ()
    unique: dict[str, Any] = {}
    for row in rows:
        row = _plain(row)
        if isinstance(row, dict):
            row = {rename.get(k, k): v for k, v in row.items()}
        unique.setdefault(repr(row), row)
    return tuple(list(unique.values())[:EXAMPLES])


def _failures(table: str, suite_result: Any) -> list[ExpectationFailure]:
    found = []
    for res in suite_result.results:
        if res.success:
            continue
        config = res.expectation_config
        meta = config.meta or {}
        examples = _examples(res.result or {}, meta.get("rename") or {})
        info = res.exception_info or {}
        if info.get("raised_exception"):
            examples = (str(info.get("exception_message")),)
        found.append(ExpectationFailure(
            table=table,
            expectation=config.type,
            description=str(meta.get("description") or config.type),
            column=meta.get("column"),
            unexpected_count=(res.result or {}).get("unexpected_count"),
            examples=examples,
        ))
    return found


def _context() -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("sharehub_candidates")


def _run(source: Any, name: str, frame: Any, suite: ExpectationSuite, index: Iterable[str]) -> Any:
    batch = (source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
             .get_batch(batch_parameters={"dataframe": frame}))
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
    if index:
        result_format["unexpected_index_column_names"] = list(index)
    return batch.validate(suite, result_format=result_format)


def _same_columns(con: duckdb.DuckDBPyConnection, a: str, b: str) -> bool:
    try:
        return shape(con, a) == shape(con, b)
    except duckdb.Error:  # the baseline table does not exist
        return False


def validate(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str],
    relation: Relation,
    previous_rows: Mapping[str, int | None] | None = None,
    baseline: Relation | None = None,
    changed: Mapping[str, Changes] | None = None,
) -> list[ExpectationFailure]:
    """Run every table's contract suite on its batch; return all failures (lazy: none stop early).

    ``baseline`` maps a table name to a published version that passed these same suites;
    the batch is then only the rows that could fail now (`batch_sql`), and the row-count
    bound is checked on a batch as long as the whole table. The caller vouches for the
    baseline (`sharehub.publish.tables` checks its content hash and the suites' fingerprint).
    ``changed`` maps a table changed in place to its `Changes` (see `batch_sql`); its
    batch is then the changed rows and the rows at risk.
    """
    import pandas as pd

    names = list(names)
    started = time.perf_counter()
    source = _context()
    previous_rows = previous_rows or {}
    failures: list[ExpectationFailure] = []
    checked = rows = 0
    for name in names:
        contract = shared_contract(name)
        failures += type_failures(con, contract, relation)
        delta = (changed or {}).get(name)
        base = baseline(name) if baseline and delta is None else None
        if base is not None and not _same_columns(con, relation(name), base):
            base = None
        partial = base is not None or delta is not None
        frame = con.execute(batch_sql(contract, relation, base, changed)).df()
        rows += len(frame)
        suite = build_suite(contract, previous_rows=previous_rows.get(name), row_count=not partial)
        failures += _failures(name, _run(source, name, frame, suite, contract.key))
        checked += len(suite.expectations)
        counted = row_count_suite(contract, previous_rows.get(name)) if partial else None
        if counted is not None:
            # a frame of n rows and no columns: GE counts it, nothing is copied
            total = int(con.execute(f"SELECT count(*) FROM {relation(name)}").fetchall()[0][0])
            whole = pd.DataFrame(index=pd.RangeIndex(total))
            failures += _failures(name, _run(source, f"{name}_rows", whole, counted, ()))
            checked += 1
        for i, link in enumerate(coverage_links(contract)):
            orphans = con.execute(coverage_sql(link, relation)).df()
            failures += _failures(name, _run(source, f"{name}_coverage_{i}", orphans,
                                             coverage_suite(link), ()))
            checked += 1
    log.info("validated %d expectations on %s (%d rows%s) in %.2f s: %d failed", checked,
             ", ".join(names), rows,
             ", changed and at-risk rows only" if baseline or changed else "",
             time.perf_counter() - started, len(failures))  # fmt: skip
    return failures


def check(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str],
    relation: Relation,
    previous_rows: Mapping[str, int | None] | None = None,
    baseline: Relation | None = None,
    changed: Mapping[str, Changes] | None = None,
) -> None:
    """Validate and raise :class:`PublishAborted` listing every failure with examples."""
    names = list(names)
    failures = validate(con, names, relation, previous_rows, baseline, changed)
    if failures:
        raise PublishAborted(
            f"candidate version failed {len(failures)} expectation(s); the previous version stays "
            "published: " + "; ".join(str(f) for f in failures)
            + ". Fix the delivery or the linkage (or amend the contract in contracts/shared_*.yaml "
            "if the rule is wrong) and publish again.",
            failures=failures,
        )
