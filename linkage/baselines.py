"""Two baselines scored on the same records as sharehub, so its accuracy has a reference.

- **Exact-ID join** (`exact_id_clusters`): what departments do today — two records are
  one person iff their delivered ID strings, trimmed and upper-cased, are equal and
  non-empty. Equality is transitive, so the connected components of that relation are
  simply the groups of equal IDs; a record without an ID stands alone. An Excel-damaged
  ID such as ``1.10105E+17`` is a non-empty string like any other, so every record
  carrying it joins one group, as it would in a department's spreadsheet join.
- **Plain Splink** (`plain_splink_clusters`): a competent Splink model without any
  Chinese-specific standardisation. It reads naive columns computed from
  ``staging.person_records`` (name trimmed, ID upper-cased, phone digits only, address as
  delivered, birth date parsed only when written ``YYYYMMDD`` or ``YYYY-MM-DD``; no
  opencc, no pinyin, no ID repair, no address parsing), blocks with the same rules as
  sharehub's model (each derived key replaced by its naive counterpart, see
  `blocking_rules`), uses Splink's default comparisons for each field, and is trained the
  way sharehub's is (prior from deterministic rules at the same assumed recall, seeded u
  sampling, one EM session per training rule) and clustered by connected components at
  the same threshold. The gap between it and sharehub is what the standardisation and
  the Chinese-aware model buy.

Both run on whatever connection they are given; the evaluation gives them an in-memory
DuckDB holding a copy of the records, so the published warehouse is never written.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import duckdb
import pandas as pd
import splink.comparison_library as cl
from splink import SettingsCreator, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_creator import ComparisonCreator

from linkage.train import fit
from sharehub.errors import LinkageError

log = logging.getLogger(__name__)

EXACT_ID = "exact_id"
PLAIN_SPLINK = "plain_splink"
PLAIN_MODEL_UID = "plain_splink_baseline"

# Naive columns from staging.person_records: the cleaning anyone would do without
# knowing Chinese identity data. ``surname`` / ``given_name`` split after the first
# character (no compound surnames); ``birth_ym`` only from a parsed full date.
NAIVE_FEATURES_SQL = r"""
    SELECT
        CAST(record_id AS VARCHAR) AS unique_id,
        NULLIF(trim(name), '') AS name,
        NULLIF(substr(trim(name), 1, 1), '') AS surname,
        NULLIF(substr(trim(name), 2), '') AS given_name,
        NULLIF(upper(trim(id_number)), '') AS id,
        birth_date,
        strftime(birth_date, '%Y-%m') AS birth_ym,
        NULLIF(trim(sex_raw), '') AS sex,
        NULLIF(regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g'), '') AS phone,
        NULLIF(address, '') AS address
    FROM (
        SELECT *,
            CASE
                WHEN regexp_full_match(trim(birth_raw), '[0-9]{8}')
                    THEN CAST(try_strptime(trim(birth_raw), '%Y%m%d') AS DATE)
                WHEN regexp_full_match(trim(birth_raw), '[0-9]{4}-[0-9]{2}-[0-9]{2}')
                    THEN CAST(try_strptime(trim(birth_raw), '%Y-%m-%d') AS DATE)
            END AS birth_date
        FROM __RECORDS__
    )
"""


def exact_id_clusters(records: pd.DataFrame) -> pd.DataFrame:
    """Cluster ``records`` (record_id, id_number) by the exact-ID join.

    Returns (unique_id, cluster_id); the cluster id of a group is its smallest record
    id, as in sharehub's clusters.
    """
    missing = [c for c in ("record_id", "id_number") if c not in records.columns]
    if missing:
        raise LinkageError(f"exact-ID baseline needs columns record_id, id_number; lacks {missing}")
    uid = records["record_id"].astype(str)
    key = records["id_number"].astype("string").str.strip().str.upper()
    key = key.where(key.notna() & (key != ""), "\0" + uid)  # no ID: a group of its own
    cluster = uid.groupby(key.to_numpy()).transform("min")
    return pd.DataFrame({"unique_id": uid.to_numpy(), "cluster_id": cluster.to_numpy()})


def blocking_rules() -> list[BlockingRuleCreator]:
    """sharehub's prediction rules, in order, on naive columns.

    ``id_norm`` → ``id``; ``birth_date`` → parsed ``birth_date``; ``surname_pinyin`` →
    first character; ``name_pinyin`` → ``name``; ``birth_ym`` → ``birth_ym``;
    ``phone_std`` → ``phone``; ``addr_key`` → ``address`` as delivered;
    ``given_pinyin`` → ``given_name``.
    """
    return [
        block_on("id"),
        block_on("birth_date", "surname"),
        block_on("name", "birth_ym"),
        block_on("phone", "birth_ym"),
        block_on("address", "given_name"),
        block_on("address", "birth_ym"),
        block_on("name", "substr(id, 1, 10)"),
        block_on("name", "substr(id, 11, 8)"),
    ]


def training_rules() -> list[BlockingRuleCreator]:
    """sharehub's EM training rules on naive columns."""
    return [block_on("id"), block_on("name", "birth_ym"), block_on("address", "birth_ym")]


def deterministic_rules() -> list[BlockingRuleCreator]:
    """sharehub's rules for the prior match probability, on naive columns."""
    return [block_on("id", "surname"), block_on("name", "birth_date", "address")]


def comparisons() -> list[ComparisonCreator]:
    """Splink's out-of-the-box comparison for each field sharehub compares."""
    return [
        cl.NameComparison("name"),
        cl.ExactMatch("id"),
        cl.DateOfBirthComparison("birth_date", input_is_string=False),
        cl.ExactMatch("sex"),
        cl.ExactMatch("phone"),
        cl.JaroWinklerAtThresholds("address"),
    ]


def settings_creator() -> SettingsCreator:
    """The plain model: sharehub's link type, prior and EM settings, naive everything else."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=list(comparisons()),
        blocking_rules_to_generate_predictions=list(blocking_rules()),
        probability_two_random_records_match=1e-4,
        linker_uid=PLAIN_MODEL_UID,
        em_convergence=1e-4,
        max_iterations=25,
    )


@dataclass(frozen=True)
class PlainSplinkResult:
    """Clusters of the plain model and what it scored, for reports."""

    clusters: pd.DataFrame
    scored_pairs: int
    linked_pairs: int


def plain_splink_clusters(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    *,
    seed: int,
    threshold: float,
    u_max_pairs: float = 5e6,
    em_max_pairs: float | None = 5e6,
) -> PlainSplinkResult:
    """Train the plain model on ``records_table`` (staging.person_records columns),
    predict, and cluster at ``threshold``; leaves no tables behind on ``con``."""
    from splink import DuckDBAPI, Linker

    if not 0.0 < threshold <= 1.0:
        raise LinkageError(f"threshold must be in (0, 1]; got {threshold}")
    features = f"__sharehub_plain_{uuid.uuid4().hex[:8]}"
    try:
        con.execute(f"CREATE TEMP TABLE {features} AS "
                    + NAIVE_FEATURES_SQL.replace("__RECORDS__", records_table))
    except duckdb.Error as exc:
        raise LinkageError(f"cannot build naive features from {records_table}: {exc}") from exc
    db_api = DuckDBAPI(connection=con)
    try:
        linker = Linker(db_api.register(features), settings_creator(), log_level=None)
        fit(linker, deterministic=deterministic_rules(), em_rules=training_rules(),
            seed=seed, u_max_pairs=u_max_pairs, em_max_pairs=em_max_pairs)
        scored = linker.inference.predict(threshold_match_probability=0.01,
                                          warning_mode="never")
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
            scored, threshold_match_probability=threshold
        )
        clusters = con.execute(
            f"SELECT CAST(unique_id AS VARCHAR) AS unique_id, "
            f"CAST(cluster_id AS VARCHAR) AS cluster_id FROM {clustered.physical_name}"
        ).df()
        counts = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE match_probability >= ?) "
            f"FROM {scored.physical_name}", [threshold]
        ).fetchall()[0]
    except LinkageError:
        raise
    except Exception as exc:  # splink and duckdb raise many unrelated types
        raise LinkageError(f"plain Splink baseline on {records_table} failed: {exc}") from exc
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        con.execute(f"DROP TABLE IF EXISTS {features}")
    log.info("plain Splink baseline: %d records, %d pairs scored, %d linked, %d clusters",
             len(clusters), counts[0], counts[1], clusters["cluster_id"].nunique())
    return PlainSplinkResult(clusters, int(counts[0]), int(counts[1]))
