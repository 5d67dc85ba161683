"""Clerical review: the uncertain cases a person decides, and the decisions every run honours.

The model is sure of most pairs; three kinds of case are not for it to settle, and go to
``linkage.review_queue``, rebuilt after every linkage:

- ``grey_pair``: pairs scored in the grey zone between ``REVIEW_THRESHOLD`` and the match
  threshold;
- ``held_apart``: pairs scored at or above the threshold that clustering kept in two
  clusters — a link cut because it chained two valid IDs together, or a record (a
  newborn's placeholder) that fits two persons alike (`linkage.constraints`);
- ``conflicting_ids``: clusters still holding two different valid resident ID numbers
  (clustering splits them, so only a reviewer's own ``match`` can leave one). An ID whose
  embedded birth date contradicts its record's (a guardian's ID on a civil-affairs row) is
  not the record's own, as the model already treats it, so it raises no conflict.
An item's ``review_id`` is a hash of its record pair, so it is the same on every run and
a decision once taken stays attached to it.

Decisions are appended to ``linkage.review_decisions`` and never changed: the latest
decision on a pair wins, earlier ones remain as the audit trail (who, when, why). Every
later linkage, incremental or full, turns them into clustering constraints
(`linkage.cluster.Constraints`): ``match`` forces the two records together, ``no-match``
keeps them apart even when other links would chain them.
"""

from __future__ import annotations

import hashlib
import html
import logging
from dataclasses import astuple, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from linkage.constraints import Constraints, held_apart_sql, own_id_sql
from linkage.reclustered import RECLUSTERED, changed_records
from sharehub.errors import LinkageError, NotFound
from sharehub.warehouse import one, table_exists

log = logging.getLogger(__name__)

# Lower bound of the grey zone [REVIEW_THRESHOLD, match_threshold): a setting once Settings
# has `review_threshold` (SHAREHUB_REVIEW_THRESHOLD). 18 pairs on 10,000 persons at 0.5.
# Not `linkage.predict.REVIEW_FLOOR` (0.01), the floor of the pairs kept at all.
REVIEW_THRESHOLD = 0.5
DECISIONS = ("match", "no-match")
QUEUE = "linkage.review_queue"
LOG = "linkage.review_decisions"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {LOG} (
    decision_no BIGINT PRIMARY KEY,
    review_id VARCHAR NOT NULL,
    unique_id_l VARCHAR NOT NULL,
    unique_id_r VARCHAR NOT NULL,
    decision VARCHAR NOT NULL,
    decided_by VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS {QUEUE} (
    review_id VARCHAR, kind VARCHAR, unique_id_l VARCHAR, unique_id_r VARCHAR,
    match_probability DOUBLE, match_weight DOUBLE, same_person BOOLEAN, status VARCHAR,
    decision VARCHAR, created_run VARCHAR, seen_run VARCHAR
);
"""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the queue and the decision log if absent."""
    con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
    con.execute(_DDL)


def review_id(a: str, b: str) -> str:
    """The stable id of the pair {a, b}: the same whichever order and whichever run."""
    left, right = sorted((a, b))
    return "R" + hashlib.sha256(f"{left}|{right}".encode()).hexdigest()[:12].upper()


_EFFECTIVE = f"""
    SELECT unique_id_l, unique_id_r, arg_max(decision, decision_no) AS decision,
           max(decision_no) AS decision_no
    FROM {LOG} GROUP BY unique_id_l, unique_id_r
"""


def constraints(con: duckdb.DuckDBPyConnection) -> Constraints:
    """The latest decision on each pair, as clustering constraints."""
    if not table_exists(con, LOG):
        return Constraints()
    rows = con.execute(_EFFECTIVE).fetchall()
    return Constraints(
        must_link=frozenset((str(a), str(b)) for a, b, d, _ in rows if d == "match"),
        must_not_link=frozenset((str(a), str(b)) for a, b, d, _ in rows if d == "no-match"),
    )


def last_decision_no(con: duckdb.DuckDBPyConnection) -> int:
    """The number of the newest decision (0 when none): a run records what it applied."""
    if not table_exists(con, LOG):
        return 0
    return int(one(con, f"SELECT coalesce(max(decision_no), 0) FROM {LOG}")[0])


def decisions_after(con: duckdb.DuckDBPyConnection, decision_no: int) -> list[str]:
    """Review ids decided after ``decision_no``: decisions no linkage has applied yet."""
    if not table_exists(con, LOG):
        return []
    rows = con.execute(
        f"SELECT DISTINCT review_id FROM {LOG} WHERE decision_no > ? ORDER BY 1", [decision_no]
    ).fetchall()
    return [str(r[0]) for r in rows]


def build_queue(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    threshold: float,
    review_threshold: float = REVIEW_THRESHOLD,
    reclustered: str | None = RECLUSTERED,
) -> int:
    """Rebuild ``linkage.review_queue`` from the current predictions and clusters.

    Items seen before keep their ``created_run``; decided pairs are kept with their
    decision. When ``reclustered`` exists (records that may have changed cluster since the
    queue was last built, `linkage.reclustered.RECLUSTERED`), conflicting IDs and held-apart
    links are looked for around those records only (`_items`). Returns the number of open
    items.
    """
    had_queue = table_exists(con, QUEUE)
    ensure_tables(con)
    try:
        _items(con, threshold, review_threshold,
               changed_records(con, reclustered) if had_queue else None)  # fmt: skip
        _write_queue(con, run_id)
    finally:
        con.execute("DROP TABLE IF EXISTS _items")
        con.execute("DROP TABLE IF EXISTS _near")
    open_items = int(one(con, f"SELECT count(*) FROM {QUEUE} WHERE status = 'open'")[0])
    log.info("review queue: %d open items", open_items)
    return open_items


def _write_queue(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Replace the queue with ``_items``, each with its scores, persons, decision and runs."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {QUEUE} AS
        SELECT 'R' || upper(substr(sha256(i.unique_id_l || '|' || i.unique_id_r), 1, 12))
                   AS review_id,
               i.kind, i.unique_id_l, i.unique_id_r, p.match_probability, p.match_weight,
               pl.person_id = pr.person_id AS same_person,
               CASE WHEN d.decision IS NULL THEN 'open' ELSE 'decided' END AS status,
               d.decision, coalesce(q.created_run, ?) AS created_run, ? AS seen_run
        FROM _items i
        LEFT JOIN linkage.predictions p USING (unique_id_l, unique_id_r)
        LEFT JOIN linkage.person_ids pl ON pl.record_id = i.unique_id_l
        LEFT JOIN linkage.person_ids pr ON pr.record_id = i.unique_id_r
        LEFT JOIN ({_EFFECTIVE}) d USING (unique_id_l, unique_id_r)
        LEFT JOIN {QUEUE} q ON q.unique_id_l = i.unique_id_l AND q.unique_id_r = i.unique_id_r
        ORDER BY status DESC, kind, p.match_probability DESC NULLS LAST, review_id""",
        [run_id, run_id],
    )


def _items(
    con: duckdb.DuckDBPyConnection,
    threshold: float,
    review_threshold: float,
    changed: str | None,
) -> None:
    """Temp table ``_items`` (kind, unique_id_l, unique_id_r): what the queue holds.

    With ``changed`` (a table of unique_id), conflicting IDs are computed for the clusters
    of its records and held-apart links for the pairs among them; the previous queue's
    items of both kinds that touch none of them are kept. Why that equals a rebuild
    (`linkage.reclustered.RECLUSTERED`): outside the set clusters, IDs and pairs are as they
    were when the queue was last built, and a held-apart link (at or above the threshold)
    touching the set lies inside it. Grey pairs are taken from all predictions, as ever: a
    cheap scan, and ``review_threshold`` may change between runs.
    """
    keep, clusters, pairs = "WHERE false", "linkage.clusters", "linkage.predictions"
    if changed is not None:
        touching = (f"unique_id_l IN (SELECT unique_id FROM {changed}) "
                    f"OR unique_id_r IN (SELECT unique_id FROM {changed})")  # fmt: skip
        keep = f"WHERE kind IN ('conflicting_ids', 'held_apart') AND NOT ({touching})"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _near AS SELECT c.unique_id, c.cluster_id "
            f"FROM linkage.clusters c SEMI JOIN {changed} r ON r.unique_id = c.unique_id"
        )
        clusters = "_near"
        pairs = "(SELECT * FROM linkage.predictions WHERE unique_id_l IN (SELECT unique_id FROM _near))"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _items AS
        WITH previous AS (SELECT DISTINCT kind, unique_id_l, unique_id_r FROM {QUEUE} {keep}),
        ids AS (
            SELECT c.cluster_id, f.id_norm, min(f.unique_id) AS rep
            FROM {clusters} c JOIN linkage.person_features f USING (unique_id)
            WHERE {own_id_sql("f")}
            GROUP BY ALL
        ), conflicts AS (
            SELECT DISTINCT 'conflicting_ids' AS kind, least(a.rep, b.rep) AS unique_id_l,
                   greatest(a.rep, b.rep) AS unique_id_r
            FROM ids a JOIN ids b ON a.cluster_id = b.cluster_id AND a.id_norm < b.id_norm
            UNION ALL
            SELECT * FROM previous WHERE kind = 'conflicting_ids'
        ), grey AS (
            SELECT 'grey_pair' AS kind, unique_id_l, unique_id_r FROM linkage.predictions
            WHERE match_probability >= ? AND match_probability < ?
        ), held AS (
            SELECT 'held_apart' AS kind, unique_id_l, unique_id_r
            FROM ({held_apart_sql(pairs, clusters, threshold)})
            UNION ALL
            SELECT * FROM previous WHERE kind = 'held_apart'
        )
        SELECT * FROM conflicts
        UNION ALL (SELECT * FROM held ANTI JOIN conflicts USING (unique_id_l, unique_id_r))
        UNION ALL (SELECT * FROM grey ANTI JOIN conflicts USING (unique_id_l, unique_id_r))""",
        [review_threshold, threshold],
    )


def list_items(con: duckdb.DuckDBPyConnection, status: str = "open") -> list[dict[str, Any]]:
    """Queue items with ``status`` (``open``, ``decided`` or ``all``), most uncertain first."""
    if not table_exists(con, QUEUE):
        return []
    cursor = con.execute(
        f"SELECT * FROM {QUEUE} WHERE ? = 'all' OR status = ?", [status, status]
    )
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def decision_log(con: duckdb.DuckDBPyConnection, rid: str | None = None) -> list[dict[str, Any]]:
    """Every decision (the audit trail), oldest first; only those on review ``rid`` if given."""
    if not table_exists(con, LOG):
        return []
    cursor = con.execute(
        f"SELECT * FROM {LOG} WHERE ? IS NULL OR review_id = ? ORDER BY decision_no", [rid, rid]
    )
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def resolve(con: duckdb.DuckDBPyConnection, ref: str) -> tuple[str, str, str]:
    """(review_id, unique_id_l, unique_id_r) for a review id or a ``record,record`` pair."""
    ref = ref.strip()
    if not table_exists(con, "linkage.person_features"):
        raise NotFound("the warehouse holds no linked records yet; run `sharehub run` first")
    if "," in ref:
        a, b = (part.strip() for part in ref.split(",", 1))
        if a == b:
            raise LinkageError(f"a pair needs two different records; got {ref!r}")
        found = {
            str(r[0])
            for r in con.execute(
                "SELECT unique_id FROM linkage.person_features WHERE unique_id IN (?, ?)", [a, b]
            ).fetchall()
        }
        missing = [uid for uid in (a, b) if uid not in found]
        if missing:
            raise NotFound(f"record {missing[0]!r} is not in linkage.person_features")
        left, right = sorted((a, b))
        return review_id(left, right), left, right
    for table in (QUEUE, LOG):
        if table_exists(con, table):
            rows = con.execute(
                f"SELECT unique_id_l, unique_id_r FROM {table} WHERE review_id = ? LIMIT 1",
                [ref.upper()],
            ).fetchall()
            if rows:
                return ref.upper(), str(rows[0][0]), str(rows[0][1])
    raise NotFound(
        f"no review item {ref!r}; see `sharehub review list`, or name a pair as RECORD,RECORD"
    )


@dataclass(frozen=True)
class Decision:
    """One row of the decision log."""

    decision_no: int
    review_id: str
    unique_id_l: str
    unique_id_r: str
    decision: str
    decided_by: str
    reason: str
    decided_at: datetime


def decide(
    con: duckdb.DuckDBPyConnection,
    ref: str,
    decision: str,
    *,
    by: str,
    reason: str,
    now: datetime | None = None,
) -> Decision:
    """Append a decision on ``ref`` (a review id or ``record,record``) to the log.

    It takes effect at the next linkage (`sharehub run` links when a decision is
    pending, even if no delivery arrived) and in every one after, incremental or full.
    """
    if decision not in DECISIONS:
        raise LinkageError(f"decision must be one of {', '.join(DECISIONS)}; got {decision!r}")
    if not by.strip() or not reason.strip():
        raise LinkageError("a decision needs the reviewer's name (--by) and a reason (--reason)")
    ensure_tables(con)
    rid, left, right = resolve(con, ref)
    con.begin()
    try:
        number = int(one(con, f"SELECT coalesce(max(decision_no), 0) + 1 FROM {LOG}")[0])
        row = Decision(number, rid, left, right, decision, by.strip(), reason.strip(),
                       now or datetime.now())  # fmt: skip
        con.execute(f"INSERT INTO {LOG} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(astuple(row)))
        con.execute(
            f"UPDATE {QUEUE} SET status = 'decided', decision = ? WHERE review_id = ?", [decision, rid]
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info("review %s (%s ~ %s): %s by %s", rid, left, right, decision, row.decided_by)
    return row


@dataclass
class Explanation:
    """Everything `sharehub review show` prints: records, evidence, decisions, chart."""

    review_id: str
    item: dict[str, Any] | None
    records: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    match_weight: float
    match_probability: float
    chart: Path
    decisions: list[dict[str, Any]] = field(default_factory=list)


_SHOWN = (
    "record_id", "feed", "source_key", "name", "id_number", "sex_raw", "birth_raw", "phone",
    "address", "hukou_address", "record_status",
)  # fmt: skip


def explain(
    con: duckdb.DuckDBPyConnection, ref: str, *, model_path: Path, out: Path
) -> Explanation:
    """Score the pair again with the saved model and write its Splink waterfall chart.

    ``con`` must allow temporary tables (see `review_connection`). The two records are
    scored with ``score_pair`` and term frequencies of all current records, so the
    evidence shown is what a full linkage would compute today.
    """
    from splink import DuckDBAPI, Linker

    from linkage.changes import FEATURES, tf_columns
    from linkage.model import create_input_table, drop_input_table
    from linkage.train import load_model

    rid, left, right = resolve(con, ref)
    items = [i for i in list_items(con, "all") if i["review_id"] == rid]
    cursor = con.execute(
        f"SELECT {', '.join(_SHOWN)}, p.person_id FROM staging.person_records r "
        "LEFT JOIN linkage.person_ids p USING (record_id) WHERE record_id IN (?, ?) "
        "ORDER BY record_id",
        [left, right],
    )
    names = [d[0] for d in cursor.description or []]
    records = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    model = load_model(model_path)
    full_input = create_input_table(con, FEATURES)
    sides = [f"{full_input}_{side}" for side in ("l", "r")]
    db_api = DuckDBAPI(connection=con)
    try:
        for table, uid in zip(sides, (left, right), strict=True):
            con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {full_input} WHERE unique_id = ?", [uid])
        linker = Linker(db_api.register(full_input), model, log_level=None, validate_settings=False)
        for column in tf_columns(model):
            linker.table_management.compute_tf_table(column)
        scored = linker.inference.score_pair(db_api.register(sides[0]), db_api.register(sides[1]))
        pair = scored.as_record_list()
        chart = linker.visualisations.waterfall_chart(pair, filter_nulls=False)
        keys = ("column_name", "label_for_charts", "value_l", "value_r", "log2_bayes_factor")
        rows: list[dict[str, Any]] = list(chart.raw_records)  # type: ignore[arg-type]
        evidence = [{k: r.get(k) for k in keys} for r in rows]
        page = chart.to_html(inline=True)
    except LinkageError:
        raise
    except Exception as exc:  # splink and duckdb raise many unrelated types
        raise LinkageError(f"scoring {left} ~ {right} with {model_path} failed: {exc}") from exc
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        for table in (*sides, full_input):
            drop_input_table(con, table)
    title = html.escape(f"review {rid}: {left} ~ {right}")
    page = page.replace("<title>Splink chart</title>", f"<title>{title}</title>", 1)
    page = page.replace("<body>", f"<body>\n<h2>{title}</h2>", 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return Explanation(
        review_id=rid, item=items[0] if items else None, records=records, evidence=evidence,
        match_weight=float(pair[0]["match_weight"]),
        match_probability=float(pair[0]["match_probability"]), chart=out,
        decisions=decision_log(con, rid),
    )  # fmt: skip


_READ = (
    "linkage.person_features", "linkage.predictions", "linkage.person_ids", "linkage.clusters",
    QUEUE, LOG, "staging.person_records",
)  # fmt: skip


def review_connection(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection reading the warehouse read-only, for `explain`.

    Why: scoring writes Splink's working tables; these go to memory, so showing a case
    never needs the warehouse's single write lock nor leaves anything behind in it.
    """
    if not Path(warehouse).exists():
        raise NotFound(f"warehouse {warehouse} does not exist; run `sharehub run` first")
    con = duckdb.connect()
    path = str(warehouse).replace("'", "''")
    con.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    for table in _READ:
        schema, name = table.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'wh' "
            "AND schema_name = ? AND table_name = ?", [schema, name]
        ).fetchall()[0][0]
        if exists:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM wh.{table}")
    return con
