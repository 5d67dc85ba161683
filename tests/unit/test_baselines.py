"""The baselines on inline rows: the exact-ID join and plain Splink's naive columns."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from linkage.baselines import (
    NAIVE_FEATURES_SQL,
    blocking_rules,
    comparisons,
    exact_id_clusters,
)
from linkage.blocking import prediction_blocking_rules
from linkage.evaluate import evaluate_clusters
from sharehub.errors import LinkageError

ID = "110105194803120016"


def _records(rows: list[tuple[str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "id_number"])


def test_exact_id_joins_trimmed_upper_cased_equal_ids_only() -> None:
    records = _records([
        ("p:1", ID), ("c:1", f" {ID} "),                      # trimmed: one person
        ("h:1", "11010519491231002x"), ("p:2", "11010519491231002X"),  # upper-cased
        ("c:2", None), ("c:3", ""), ("c:4", "   "),            # no ID: alone
        ("h:2", "1.10105E+17"), ("c:5", "1.10105E+17"),        # Excel damage joins strangers
        ("h:3", ID[:15] + "000"),                              # lost digits: no match
    ])
    clusters = exact_id_clusters(records).set_index("unique_id")["cluster_id"]
    assert clusters["p:1"] == clusters["c:1"] == "c:1"  # smallest record id names the group
    assert clusters["h:1"] == clusters["p:2"]
    assert clusters["h:2"] == clusters["c:5"]
    alone = ["c:2", "c:3", "c:4", "h:3"]
    assert [clusters[u] for u in alone] == alone
    assert clusters.nunique() == 7


def test_exact_id_scores_against_truth() -> None:
    records = _records([("f:1", ID), ("f:2", ID), ("f:3", None), ("f:4", "1.1E+17"),
                        ("f:5", "1.1E+17")])
    truth = pd.DataFrame({"feed": "f", "source_key": list("12345"),
                          "true_person_id": ["P", "P", "P", "Q", "R"]})
    r = evaluate_clusters(exact_id_clusters(records), truth)
    # predicted 1-2 (right) and 4-5 (wrong); missed 1-3 and 2-3
    assert (r.true_positive_pairs, r.false_positive_pairs, r.false_negative_pairs) == (1, 1, 2)


def test_exact_id_needs_its_columns() -> None:
    with pytest.raises(LinkageError, match="id_number"):
        exact_id_clusters(pd.DataFrame({"record_id": ["a"]}))


def test_naive_features_clean_only_what_anyone_would() -> None:
    con = duckdb.connect()
    con.execute("""
        CREATE TABLE person_records (record_id VARCHAR, name VARCHAR, id_number VARCHAR,
            sex_raw VARCHAR, birth_raw VARCHAR, phone VARCHAR, address VARCHAR)
    """)
    con.execute("""INSERT INTO person_records VALUES
        ('p:1', ' 张伟 ', '11010519491231002x', '男', '19491231', '+86 138-0013-8000',
         '幸福里小区3号楼2单元501室'),
        ('c:1', '張 偉', '1.10105E+17', '女', '1949-12', '010 6512 3456', '幸福里3-2-501'),
        ('h:1', '', NULL, NULL, '1949-12-31', NULL, NULL),
        ('c:2', '欧阳娜娜', '', NULL, '1949年12月', '', '')
    """)
    cursor = con.execute(
        "SELECT * FROM (" + NAIVE_FEATURES_SQL.replace("__RECORDS__", "person_records") + ")"
    )
    columns = [d[0] for d in cursor.description or []]
    rows = {r[0]: dict(zip(columns, r, strict=True)) for r in cursor.fetchall()}
    assert rows["p:1"]["name"] == "张伟"  # trimmed, nothing else
    assert rows["c:1"]["name"] == "張 偉"  # no opencc, inner space kept
    assert (rows["c:2"]["surname"], rows["c:2"]["given_name"]) == ("欧", "阳娜娜")
    assert rows["p:1"]["id"] == "11010519491231002X"
    assert rows["c:1"]["id"] == "1.10105E+17"  # no repair
    assert rows["p:1"]["phone"] == "8613800138000"  # digits only, +86 kept as digits
    assert rows["c:1"]["address"] == "幸福里3-2-501"  # as delivered
    assert rows["p:1"]["birth_date"] == rows["h:1"]["birth_date"] == dt.date(1949, 12, 31)
    assert rows["c:1"]["birth_date"] is None and rows["c:2"]["birth_date"] is None
    assert rows["p:1"]["birth_ym"] == "1949-12"
    assert [rows["h:1"][c] for c in ("name", "id", "phone")] == [None, None, None]
    assert rows["c:2"]["address"] is None


def test_plain_model_mirrors_sharehubs_blocking_and_uses_stock_comparisons() -> None:
    assert len(blocking_rules()) == len(prediction_blocking_rules())
    names = [type(c).__name__ for c in comparisons()]
    assert names == ["NameComparison", "ExactMatch", "DateOfBirthComparison", "ExactMatch",
                     "ExactMatch", "JaroWinklerAtThresholds"]
