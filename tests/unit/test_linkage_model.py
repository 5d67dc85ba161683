"""The linkage model on a hand-built district: training, prediction, twins.

The records are built here, not generated elsewhere: ~110 persons in households (parents,
children, twins, grandparents on civil-affairs rolls), each seen by one to four feeds
with the damage those feeds really carry (homophone names, missing or mistyped IDs, a
guardian's ID, birth year-month only, a relative's phone, placeholder newborn names).
Columns follow `linkage.person_features` (docs/architecture.md).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from pypinyin import lazy_pinyin

from linkage.blocking import count_comparisons, prediction_blocking_rules
from linkage.evaluate import evaluate_clusters
from linkage.predict import link
from linkage.train import train_model
from sharehub.errors import LinkageError

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "欧阳", "单"]
SURNAME_PINYIN = {"单": "shan", "欧阳": "ouyang"}
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰思雨晨浩宇欣怡"
HOMOPHONE = {
    "伟": "玮",
    "丽": "莉",
    "明": "铭",
    "华": "化",
    "静": "婧",
    "军": "君",
    "娜": "那",
    "杰": "洁",
    "红": "宏",
    "英": "瑛",
    "平": "萍",
    "芳": "方",
}
ESTATES = ["幸福里", "阳光花园", "和平小区", "建设新村"]
REGION = "110105"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(birth: date, seq: int) -> str:
    """A GB 11643 ID with a correct check digit."""
    body = f"{REGION}{birth:%Y%m%d}{seq:03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


@dataclass
class Person:
    pid: str
    surname: str
    given: str
    sex: str
    birth: date
    id_no: str
    phone: str
    home: tuple[str, str, str, str]
    twin_of: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)


def _pinyin(surname: str, given: str) -> tuple[str, str]:
    return SURNAME_PINYIN.get(surname, "".join(lazy_pinyin(surname))), "".join(lazy_pinyin(given))


def _record(p: Person, feed: str, key: str, rng: random.Random, **over: Any) -> dict[str, Any]:
    surname, given = over.pop("surname", p.surname), over.pop("given", p.given)
    sp, gp = _pinyin(surname, given)
    est, bld, unit, room = over.pop("home", p.home)
    rec: dict[str, Any] = {
        "unique_id": f"{feed}:{key}",
        "source_dataset": feed,
        "name_std": surname + given,
        "surname": surname,
        "given_name": given,
        "name_pinyin": sp + gp,
        "surname_pinyin": sp,
        "given_pinyin": gp,
        "is_placeholder_name": False,
        "id_norm": p.id_no,
        "id_valid": True,
        "id_problem": None,
        "birth_conflict": False,
        "birth_date": p.birth,
        "birth_ym": f"{p.birth:%Y-%m}",
        "sex": p.sex,
        "phone_std": p.phone,
        "phone_kind": "mobile",
        "addr_std": f"{est}{bld}号楼{unit}单元{room}室",
        "addr_estate": est,
        "addr_building": bld,
        "addr_unit": unit,
        "addr_room": room,
        "addr_key": f"{est}|{bld}|{unit}|{room}",
        "hukou_addr_key": None,
        "record_status": "active",
        "true_person_id": p.pid,
    }
    rec.update(over)
    if rec["id_norm"] is None:
        rec["id_valid"] = False
    return rec


def _homophone(given: str, rng: random.Random) -> str:
    chars = [HOMOPHONE.get(c, c) if rng.random() < 0.7 else c for c in given]
    return "".join(chars)


def build_district(seed: int = 7, households: int = 60) -> pd.DataFrame:
    """Person features for a small district, with ``true_person_id`` per record."""
    rng = random.Random(seed)
    persons: list[Person] = []
    seqs: dict[date, Any] = {}  # per birth date, as the police station issues them

    def person(surname: str, sex: str, birth: date, home: Any, phone: str) -> Person:
        s = next(seqs.setdefault(birth, iter(range(11, 999, 2)))) + (sex == "F")
        given = "".join(rng.sample(GIVEN, rng.choice([1, 2])))
        p = Person(
            f"P{len(persons):04d}", surname, given, sex, birth, resident_id(birth, s), phone, home
        )
        persons.append(p)
        return p

    def birth(lo: int, hi: int) -> date:
        return date(lo, 1, 1) + timedelta(days=rng.randrange((hi - lo) * 365))

    for h in range(households):
        k = h // 4  # one room per household, up to 100 households per estate
        estate = ESTATES[h % 4] + (f"{h // 400}期" if h >= 400 else "")
        home = (estate, str(1 + k % 10), str(1 + (k // 10) % 2), f"{1 + (k // 20) % 5}0{1 + h % 4}")
        phone = f"13{rng.randrange(10**9):09d}"
        surname = rng.choice(SURNAMES)
        dad = person(surname, "M", birth(1960, 1990), home, phone)
        person(rng.choice(SURNAMES), "F", birth(1960, 1990), home, f"15{rng.randrange(10**9):09d}")
        if h % 5 == 0:  # twins share surname, birth date, home and phone
            b = birth(2000, 2020)
            a = person(surname, "M", b, home, phone)
            t = person(surname, "M" if rng.random() < 0.7 else "F", b, home, phone)
            # twins' given names differ in sound, not only in characters (宇/玉 would not)
            while _pinyin(surname, t.given)[1] in (_pinyin(surname, a.given)[1], ""):
                t.given = "".join(rng.sample(GIVEN, 2))
            a.twin_of, t.twin_of = t.pid, a.pid
        elif h % 2 == 0:
            person(surname, rng.choice("MF"), birth(1995, 2022), home, phone)
        if h % 3 == 0:
            person(surname, rng.choice("MF"), birth(1930, 1955), home, dad.phone)

    for p in persons:
        serial = iter(range(1, 10))

        def key(prefix: str, p: Person = p, serial: Any = serial) -> str:
            return f"{prefix}{p.pid}{next(serial)}"

        if rng.random() < 0.9:
            bad = rng.random() < 0.04
            id_no = (
                (p.id_no[:9] + str((int(p.id_no[9]) + 1) % 10) + p.id_no[10:]) if bad else p.id_no
            )
            p.records.append(
                _record(
                    p,
                    "ps_population",
                    key("R"),
                    rng,
                    id_norm=id_no,
                    id_valid=not bad,
                    id_problem="checksum" if bad else None,
                    hukou_addr_key=f"{ESTATES[0]}|9|1|101" if rng.random() < 0.3 else None,
                )
            )
        n_health = (1 if rng.random() < 0.6 else 0) * (2 if rng.random() < 0.15 else 1)
        for _ in range(n_health):
            moved = rng.random() < 0.2  # registered at a clinic before moving: old home
            p.records.append(
                _record(
                    p,
                    "hw_ehr_person",
                    key("H"),
                    rng,
                    id_norm=None if rng.random() < 0.25 else p.id_no,
                    given=_homophone(p.given, rng) if rng.random() < 0.08 else p.given,
                    home=("老城区", str(rng.randrange(1, 30)), "1", "101") if moved else p.home,
                    phone_std=f"18{rng.randrange(10**9):09d}" if moved else p.phone,
                )
            )
        elderly = p.birth.year < 1956
        if rng.random() < (0.8 if elderly else 0.08):
            for _ in range(rng.choice([1, 1, 2])):
                roll = rng.random()
                p.records.append(
                    _record(
                        p,
                        "ca_recipients",
                        key("C"),
                        rng,
                        id_norm=None if roll < 0.35 else p.id_no,
                        id_problem="excel_damaged" if roll < 0.15 else None,
                        given=_homophone(p.given, rng) if rng.random() < 0.25 else p.given,
                        birth_date=None,
                        phone_std=f"13{rng.randrange(10**9):09d}"
                        if rng.random() < 0.5
                        else p.phone,
                    )
                )
        if not p.records:
            p.records.append(_record(p, "hw_ehr_person", key("H"), rng))

    # a child's civil-affairs row carrying the father's ID: flagged as a birth conflict
    kids = [p for p in persons if p.birth.year >= 2000]
    fathers = {p.home: p for p in persons if p.sex == "M" and 1960 <= p.birth.year < 1990}
    for kid in kids[:3]:
        dad = fathers.get(kid.home)
        if dad is not None:
            kid.records.append(
                _record(
                    kid,
                    "ca_recipients",
                    f"G{kid.pid}",
                    rng,
                    id_norm=dad.id_no,
                    birth_date=None,
                    birth_conflict=True,
                    phone_std=dad.phone,
                )
            )
    # a newborn registered in health before being named
    for kid in [p for p in persons if p.birth.year >= 2015 and p.twin_of is None][:2]:
        mother = next(q for q in persons if q.home == kid.home and q.sex == "F")
        kid.records.append(
            _record(
                kid,
                "hw_ehr_person",
                f"N{kid.pid}",
                rng,
                surname=mother.surname,
                given=mother.given + "之子",
                is_placeholder_name=True,
                id_norm=None,
            )
        )
    # the house owner, as the housing feed names them: name and ID only
    for p in persons:
        if p.sex == "M" and 1960 <= p.birth.year < 1990 and rng.random() < 0.5:
            p.records.append(
                _record(
                    p,
                    "ps_housing",
                    f"O{p.pid}",
                    rng,
                    birth_date=None,
                    birth_ym=None,
                    sex=None,
                    phone_std=None,
                )
            )
    frame = pd.DataFrame([r for p in persons for r in p.records])
    frame.attrs["twins"] = sorted(tuple(sorted((p.pid, p.twin_of))) for p in persons if p.twin_of)
    return frame


# ----------------------------------------------------------------------------- fixtures

TABLE = "linkage.person_features"


def _load(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, table: str = TABLE) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
    features = frame.drop(columns=["true_person_id"])  # noqa: F841  (read by duckdb)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM features")


def _truth(frame: pd.DataFrame) -> pd.DataFrame:
    feed, _, key = frame["unique_id"].str.partition(":").T.values
    return pd.DataFrame(
        {"feed": feed, "source_key": key, "true_person_id": frame["true_person_id"]}
    )


def _twins(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(frame.attrs["twins"], columns=["person_a", "person_b"]).drop_duplicates()


@pytest.fixture(scope="module")
def district() -> pd.DataFrame:
    return build_district()


@pytest.fixture(scope="module")
def trained(district: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model trained on the district, shared by the prediction tests."""
    path = tmp_path_factory.mktemp("model") / "model.json"
    con = duckdb.connect()
    _load(con, district)
    train_model(con, TABLE, seed=42, model_path=path)
    con.close()
    return path


@pytest.fixture()
def con(district: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    _load(con, district)
    return con


# ----------------------------------------------------------------------------- training


def test_training_is_reproducible_and_the_seed_matters(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # a u-sample smaller than the ~70k possible pairs, so the seed decides the sample
    paths = [tmp_path / n for n in ("a.json", "b.json", "c.json")]
    for path, seed in zip(paths, (1, 1, 2), strict=True):
        train_model(con, TABLE, seed=seed, model_path=path, u_max_pairs=2e4)
    first, again, other = (p.read_bytes() for p in paths)
    assert first == again
    assert first != other


def test_trained_model_is_saved_as_splink_json(trained: Path) -> None:
    model = json.loads(trained.read_text(encoding="utf-8"))
    assert model["link_type"] == "dedupe_only"
    assert [c["output_column_name"] for c in model["comparisons"]] == [
        "name",
        "id",
        "birth",
        "sex",
        "contact",
    ]
    levels = {
        lvl.get("label_for_charts"): lvl
        for c in model["comparisons"]
        for lvl in c["comparison_levels"]
    }
    assert levels["two different valid IDs"]["m_probability"] == pytest.approx(1e-5)
    assert 0 < model["probability_two_random_records_match"] < 0.05


def test_training_rejects_a_table_without_the_model_columns(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA linkage")
    con.execute("CREATE TABLE linkage.person_features AS SELECT 'a:1' AS unique_id")
    with pytest.raises(LinkageError, match="id_norm"):
        train_model(con, TABLE, seed=1, model_path=tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


# ----------------------------------------------------------------------------- prediction


def test_link_loads_the_saved_model_and_never_trains(
    con: duckdb.DuckDBPyConnection, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from splink.internals.linker_components.training import LinkerTraining

    def forbidden(*_: Any, **__: Any) -> None:
        raise AssertionError("prediction must not train")

    for name in (
        "estimate_u_using_random_sampling",
        "estimate_parameters_using_expectation_maximisation",
        "estimate_probability_two_random_records_match",
    ):
        monkeypatch.setattr(LinkerTraining, name, forbidden)

    link(con, TABLE, model_path=trained, threshold=0.9, review_floor=1e-9)
    base = con.execute(
        "SELECT unique_id_l, unique_id_r, match_weight FROM linkage.predictions"
    ).df()

    # the weights come from the file: lower its prior eightfold, every weight drops 3 bits
    model = json.loads(trained.read_text(encoding="utf-8"))
    model["probability_two_random_records_match"] /= 8
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(model), encoding="utf-8")
    link(con, TABLE, model_path=edited, threshold=0.9, review_floor=1e-9)
    shifted = con.execute(
        "SELECT unique_id_l, unique_id_r, match_weight FROM linkage.predictions"
    ).df()
    both = base.merge(shifted, on=["unique_id_l", "unique_id_r"], suffixes=("", "_new"))
    assert len(both) == len(base) > 100
    drop = both["match_weight"] - both["match_weight_new"]
    assert drop.min() == pytest.approx(3.0, abs=0.05)
    assert drop.max() == pytest.approx(3.0, abs=0.05)
    with pytest.raises(LinkageError, match="does not exist"):
        link(con, TABLE, model_path=tmp_path / "missing.json", threshold=0.9)


def test_link_writes_predictions_with_evidence_and_every_record_clustered(
    con: duckdb.DuckDBPyConnection, trained: Path, district: pd.DataFrame
) -> None:
    result = link(con, TABLE, model_path=trained, threshold=0.9)
    columns = {r[0] for r in con.execute("DESCRIBE linkage.predictions").fetchall()}
    assert {
        "unique_id_l",
        "unique_id_r",
        "match_weight",
        "match_probability",
        "gamma_name",
        "gamma_id",
        "gamma_birth",
        "gamma_sex",
        "gamma_contact",
    } <= columns
    clusters = con.execute("SELECT * FROM linkage.clusters").df()
    assert sorted(clusters["unique_id"]) == sorted(district["unique_id"])
    assert result.records == len(district)
    assert result.clusters == clusters["cluster_id"].nunique()
    # no splink scratch tables or views are left on the caller's connection
    left = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_name LIKE '%splink%' OR table_name LIKE '%sharehub%' "
        "OR table_name = 'result_df'"
    ).fetchall()
    assert left == []
    # idempotent: the same input and model give the same tables
    before = con.execute("SELECT * FROM linkage.clusters ORDER BY unique_id").fetchall()
    link(con, TABLE, model_path=trained, threshold=0.9)
    assert con.execute("SELECT * FROM linkage.clusters ORDER BY unique_id").fetchall() == before


def test_twins_are_not_merged_and_people_are(
    con: duckdb.DuckDBPyConnection, trained: Path, district: pd.DataFrame
) -> None:
    link(con, TABLE, model_path=trained, threshold=0.9)
    clusters = con.execute("SELECT unique_id, cluster_id FROM linkage.clusters").df()
    report = evaluate_clusters(clusters, _truth(district), twins=_twins(district))
    assert report.twin_pairs and report.twin_pairs >= 10
    assert report.twin_pairs_merged == 0
    assert report.precision >= 0.97
    assert report.recall >= 0.95


def test_guardian_ids_and_placeholder_names_join_the_right_person(
    con: duckdb.DuckDBPyConnection, trained: Path, district: pd.DataFrame
) -> None:
    link(con, TABLE, model_path=trained, threshold=0.9)
    cluster = dict(con.execute("SELECT unique_id, cluster_id FROM linkage.clusters").fetchall())
    person = dict(zip(district["unique_id"], district["true_person_id"], strict=True))
    special = [u for u in district["unique_id"] if u.split(":")[1][0] in "GN"]
    assert len(special) >= 4  # children carrying a guardian's ID; unnamed newborns
    for uid in special:
        members = {person[u] for u, c in cluster.items() if c == cluster[uid]}
        assert members == {person[uid]}, uid
        assert sum(cluster[u] == cluster[uid] for u in cluster) > 1, uid


def _pair(
    con: duckdb.DuckDBPyConnection,
    district: pd.DataFrame,
    first: dict[str, Any] | None = None,
    **changes: Any,
) -> pd.DataFrame:
    """Two records of one district person, ``first`` applied to both, ``changes`` to the
    second only; added to the district so the model sees them among real frequencies."""
    row = district[district["source_dataset"] == "ps_population"].iloc[0]
    a, b = row.copy(), row.copy()
    a["unique_id"], b["unique_id"] = "test:a", "test:b"
    for column, value in (first or {}).items():
        a[column] = b[column] = value
    for column, value in changes.items():
        b[column] = value
    frame = pd.concat([district, pd.DataFrame([a, b])], ignore_index=True)
    _load(con, frame)
    return frame


def test_two_different_valid_ids_outweigh_everything_else(
    con: duckdb.DuckDBPyConnection, trained: Path, district: pd.DataFrame
) -> None:
    row = district[district["source_dataset"] == "ps_population"].iloc[0]
    other_id = resident_id(row["birth_date"], 997)
    _pair(con, district, id_norm=other_id)
    link(con, TABLE, model_path=trained, threshold=0.9)
    cluster = dict(
        con.execute(
            "SELECT unique_id, cluster_id FROM linkage.clusters WHERE unique_id LIKE 'test:%'"
        ).fetchall()
    )
    assert cluster["test:a"] != cluster["test:b"]
    # the same two records without the second ID are one person
    _pair(con, district, id_norm=None, id_valid=False)
    link(con, TABLE, model_path=trained, threshold=0.9)
    cluster = dict(
        con.execute(
            "SELECT unique_id, cluster_id FROM linkage.clusters WHERE unique_id LIKE 'test:%'"
        ).fetchall()
    )
    assert cluster["test:a"] == cluster["test:b"]


# ----------------------------------------------------------------------------- blocking


def test_count_comparisons_counts_each_rule_exactly(con: duckdb.DuckDBPyConnection) -> None:
    rules = prediction_blocking_rules()
    counts = count_comparisons(con, TABLE, rules)
    assert len(counts) == len(rules)
    conditions = [
        "l.id_norm = r.id_norm",
        "l.birth_date = r.birth_date AND l.surname_pinyin = r.surname_pinyin",
        "l.name_pinyin = r.name_pinyin AND coalesce(l.birth_ym, strftime(l.birth_date, '%Y-%m')) = coalesce(r.birth_ym, strftime(r.birth_date, '%Y-%m'))",
    ]
    expected = con.execute(
        f"SELECT count(*) FROM {TABLE} l JOIN {TABLE} r ON l.unique_id < r.unique_id "
        f"AND (({conditions[0]}) OR ({conditions[1]}) OR ({conditions[2]}))"
    ).fetchall()[0][0]
    assert counts[2].cumulative_comparisons == expected
    assert counts[0].marginal_comparisons > 0
    assert all(not c.is_estimate for c in counts)
    assert counts[-1].cumulative_comparisons < counts[-1].total_possible_comparisons / 50


def _name(surname: str, given: str) -> dict[str, Any]:
    sp, gp = _pinyin(surname, given)
    return {"name_std": surname + given, "surname": surname, "given_name": given,
            "name_pinyin": sp + gp, "surname_pinyin": sp, "given_pinyin": gp}  # fmt: skip


@pytest.mark.parametrize(
    ("given_a", "given_b", "level"),
    [
        ("超", "超", "exact"),
        ("静", "婧", "same pinyin (homophone)"),  # jing / jing
        ("静", "锦", "same surname, given-name pinyin alike (JW >= 0.9)"),  # jing / jin
        ("超", "浩", "All other comparisons"),  # chao / hao: JW 0.92, a sibling's name
        ("娟", "娟欣", "All other comparisons"),  # juan / juanxin: a prefix, not a slip
    ],
)
def test_name_levels_tell_slips_from_siblings(
    con: duckdb.DuckDBPyConnection,
    trained: Path,
    district: pd.DataFrame,
    given_a: str,
    given_b: str,
    level: str,
) -> None:
    _pair(con, district, _name("欧阳", given_a), **_name("欧阳", given_b))
    link(con, TABLE, model_path=trained, threshold=0.9)
    gamma = con.execute(
        "SELECT gamma_name FROM linkage.predictions "
        "WHERE unique_id_l = 'test:a' AND unique_id_r = 'test:b'"
    ).fetchall()[0][0]
    model = json.loads(trained.read_text(encoding="utf-8"))
    levels = [lvl for lvl in model["comparisons"][0]["comparison_levels"]
              if not lvl.get("is_null_level")]  # fmt: skip
    # Splink numbers non-null levels from the most similar (n - 1) down to else (0)
    label = levels[len(levels) - 1 - gamma]["label_for_charts"]
    assert label == ("Exact match on name_std" if level == "exact" else level)


def test_the_guarded_id_edit_level_equals_damerau_levenshtein() -> None:
    """The windows in ONE_ID_EDIT only skip pairs that cannot be one edit apart: checked
    against DuckDB's own damerau_levenshtein on random IDs with every kind of single edit
    at every position, strangers, and IDs of other lengths."""
    from linkage.model import ONE_ID_EDIT

    rng = random.Random(7)
    digits = "0123456789X"

    def edited(s: str, pos: int) -> str:
        kind = rng.choice(["sub", "swap", "del", "ins"])
        if kind == "sub":
            return s[:pos] + rng.choice(digits.replace(s[pos], "")) + s[pos + 1 :]
        if kind == "swap" and pos + 1 < len(s):
            return s[:pos] + s[pos + 1] + s[pos] + s[pos + 2 :]
        if kind == "del":
            return s[:pos] + s[pos + 1 :]
        return s[:pos] + rng.choice(digits) + s[pos:]

    pairs = []
    for _ in range(300):
        a = "110105" + "".join(rng.choice(digits[:10]) for _ in range(12))
        pairs += [(a, edited(a, pos)) for pos in range(18)]
        pairs.append((a, "110105" + "".join(rng.choice(digits[:10]) for _ in range(12))))
        pairs.append((a, a[: rng.randint(8, 17)]))
    con = duckdb.connect()
    frame = pd.DataFrame(pairs, columns=["id_norm_l", "id_norm_r"])  # noqa: F841
    mismatched = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE ({ONE_ID_EDIT}) "
        "IS DISTINCT FROM (damerau_levenshtein(id_norm_l, id_norm_r) <= 1)) FROM frame"
    ).fetchall()[0]
    assert mismatched == (len(pairs), 0)
