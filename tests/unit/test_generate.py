"""The synthetic district generator: formats, manifests, truth, day 2, determinism.

Small districts (a few hundred persons) keep this fast; day 1 and day 2 are generated once
per module. Rates are raised where a test needs an event to be present at this size, so a
test fails when the feature breaks, not when the dice are unkind.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from sharehub.errors import ConfigError, NotFound
from sharehub.generate import (
    HOUSING_HEADER,
    POPULATION_HEADER,
    RECIPIENTS_HEADER,
    ErrorRates,
    GenerateSummary,
    generate,
)
from sharehub.generate.damage import TAGS, Damage
from sharehub.generate.idnumbers import check_digit, is_valid_id

PERSONS = 300
SEED = 7
DAY1, DAY2 = "20261101-001", "20261102-001"
# Busy enough that every kind of event and damage appears in a 300-person district.
RATES = ErrorRates(
    twins=0.5, day2_death=0.02, day2_move_in=0.05, day2_relocate=0.04, day2_phone_change=0.05,
    day2_name_change=0.02, day2_health_delete=0.8, day2_ca_leave=0.1, day2_ca_new=0.05,
    ca_id_float=0.2, ca_id_sci_text=0.1, elderly_allowance=1.0, dibao_households=0.1,
)
HEADERS = {"ps_population": POPULATION_HEADER, "ps_housing": HOUSING_HEADER}
KEY_COLUMN = {"ps_population": "人员编号", "ps_housing": "房屋编码"}


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Day 1 written, a copy of its truth kept, then day 2 written on top."""
    out = tmp_path_factory.mktemp("district")
    day1 = generate(out, PERSONS, SEED, rates=RATES)
    truth1 = (out / "truth.csv").read_text(encoding="utf-8")
    health1 = read_health(out / "health.db")
    day2 = generate(out, PERSONS, SEED, day=2, rates=RATES)
    yield {"out": out, "day1": day1, "day2": day2, "truth1": truth1, "health1": health1}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="gb18030", newline="") as fh:
        return list(csv.DictReader(fh))


def read_roster(path: Path) -> tuple[list[list[Any]], int]:
    """Rows of the 服务对象 sheet and the index of the header row."""
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("服务对象").to_python()
    header = next(i for i, row in enumerate(rows) if "对象编号" in row)
    return rows, header


def read_health(path: Path) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return {r["record_id"]: dict(r) for r in con.execute("SELECT * FROM hw_ehr_person")}
    finally:
        con.close()


def feed_keys(out: Path, batch: str) -> dict[str, list[str]]:
    """Source keys of every record delivered in one batch (and the health table)."""
    keys = {feed: [r[KEY_COLUMN[feed]] for r in read_csv(out / "landing" / feed / batch / name)]
            for feed, name in (("ps_population", "population.csv"), ("ps_housing", "housing.csv"))}
    rows, header = read_roster(out / "landing" / "ca_recipients" / batch / "recipients.xlsx")
    keys["ca_recipients"] = [str(r[0]) for r in rows[header + 1 :]]
    keys["hw_ehr_person"] = list(read_health(out / "health.db"))
    return keys


def truth_rows(text: str) -> list[tuple[str, str, str]]:
    """``(feed, source_key, true_person_id)``: the three columns every reader relies on."""
    reader = csv.reader(text.splitlines())
    assert next(reader)[:3] == ["feed", "source_key", "true_person_id"]
    return [(f, k, p) for f, k, p, *_ in reader]


def truth_table(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """Every truth row by (feed, source_key), with all its columns."""
    return {(r["feed"], r["source_key"]): r for r in csv.DictReader(text.splitlines())}


def tags(row: dict[str, str]) -> set[str]:
    return set(filter(None, row["damage"].split(";")))


def test_summary_counts_match_what_was_written(district: dict[str, Any]) -> None:
    day1: GenerateSummary = district["day1"]
    assert day1.batch_ids == dict.fromkeys(("ps_population", "ps_housing", "ca_recipients"), DAY1)
    assert day1.records["ps_population"] == len(read_csv(day1.paths["ps_population"]))
    assert 0.85 * PERSONS < day1.records["ps_population"] < 1.05 * PERSONS
    assert 0.45 * PERSONS < day1.records["hw_ehr_person"] < 0.75 * PERSONS
    assert day1.records["ps_housing"] > 0.2 * PERSONS and day1.records["ca_recipients"] > 0
    assert day1.true_persons >= PERSONS  # residents plus owners living elsewhere
    assert "truth.csv" in day1.describe()


@pytest.mark.parametrize("feed", ["ps_population", "ps_housing"])
def test_csv_is_gb18030_with_the_exact_chinese_header(district: dict[str, Any], feed: str) -> None:
    name = "population.csv" if feed == "ps_population" else "housing.csv"
    raw = (district["out"] / "landing" / feed / DAY1 / name).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # Chinese text in GB18030 is not valid UTF-8
    first_line = raw.decode("gb18030").splitlines()[0]
    assert first_line == ",".join(HEADERS[feed])


def test_roster_has_title_rows_above_its_header(district: dict[str, Any]) -> None:
    for batch in (DAY1, DAY2):
        rows, header = read_roster(district["out"] / "landing" / "ca_recipients" / batch /
                                   "recipients.xlsx")
        assert 1 <= header <= 2
        assert "服务对象花名册" in rows[0][0]
        assert tuple(rows[header]) == RECIPIENTS_HEADER


def test_manifests_agree_with_their_files(district: dict[str, Any]) -> None:
    out = district["out"]
    kinds = {}
    for feed in ("ps_population", "ps_housing", "ca_recipients"):
        for batch in (DAY1, DAY2):
            folder = out / "landing" / feed / batch
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["feed"] == feed and manifest["batch_id"] == batch
            assert manifest["extracted_at"].startswith(f"2026-11-0{batch[7]}T")
            assert manifest["extracted_at"].endswith("+08:00")
            (entry,) = manifest["files"]
            path = folder / entry["name"]
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            if feed == "ca_recipients":
                rows, header = read_roster(path)
                assert entry["rows"] == len(rows) - header - 1
            else:
                assert entry["rows"] == len(read_csv(path))
            kinds[feed, batch] = manifest["extract_type"]
    assert kinds == {
        ("ps_population", DAY1): "full", ("ps_population", DAY2): "delta",
        ("ps_housing", DAY1): "full", ("ps_housing", DAY2): "delta",
        ("ca_recipients", DAY1): "full", ("ca_recipients", DAY2): "full",
    }


def test_day1_truth_lists_every_record_exactly_once(district: dict[str, Any]) -> None:
    truth = truth_rows(district["truth1"])
    listed = [(f, k) for f, k, _ in truth]
    assert len(listed) == len(set(listed))
    out = district["out"]
    delivered = feed_keys(out, DAY1)
    delivered["hw_ehr_person"] = list(district["health1"])
    records = [(feed, key) for feed, keys in delivered.items() for key in keys]
    assert len(records) == len(set(records))
    assert set(records) == set(listed)


def test_day2_truth_covers_both_days_and_keeps_true_ids(district: dict[str, Any]) -> None:
    out = district["out"]
    truth2 = truth_rows((out / "truth.csv").read_text(encoding="utf-8"))
    listed = [(f, k) for f, k, _ in truth2]
    assert len(listed) == len(set(listed))
    assert set(truth_rows(district["truth1"])) <= set(truth2)  # same key, same true id
    every = set(listed)
    for batch in (DAY1, DAY2):
        for feed, keys in feed_keys(out, batch).items():
            assert {(feed, k) for k in keys} <= every, (feed, batch)
    assert len(truth2) > len(truth_rows(district["truth1"]))


def test_day2_population_and_housing_are_deltas(district: dict[str, Any]) -> None:
    out = district["out"]
    day1 = {r["人员编号"]: r for r in read_csv(out / "landing/ps_population" / DAY1 / "population.csv")}
    delta = read_csv(out / "landing/ps_population" / DAY2 / "population.csv")
    kinds = defaultdict(list)
    for row in delta:
        kinds[row["变动类型"]].append(row)
    assert set(kinds) == {"新增", "变更", "注销"}
    assert all(r["人员编号"] not in day1 for r in kinds["新增"])
    assert all(r["人员编号"] in day1 for r in kinds["变更"] + kinds["注销"])
    assert all(r["更新时间"].startswith("2026-11-01") for r in delta)
    changed = [r for r in kinds["变更"] if r != day1[r["人员编号"]] | {"变动类型": "变更", "更新时间": r["更新时间"]}]
    assert changed, "a 变更 row must change something besides its type and time"
    housing = read_csv(out / "landing/ps_housing" / DAY2 / "housing.csv")
    assert {"新增", "变更"} <= {r["变动类型"] for r in housing}
    assert len(delta) < len(day1) / 2  # a delta, not a second full extract


def test_day2_roster_is_a_new_full_extract(district: dict[str, Any]) -> None:
    out = district["out"]
    def keys(batch: str) -> set[str]:
        rows, header = read_roster(out / "landing/ca_recipients" / batch / "recipients.xlsx")
        return {str(r[0]) for r in rows[header + 1 :]}
    day1, day2 = keys(DAY1), keys(DAY2)
    assert day1 - day2, "some recipients left the rolls"
    assert day2 - day1, "some recipients are new"
    assert len(day1 & day2) > len(day1) / 2, "most recipients stay"


def test_day2_health_has_new_updated_and_deleted_rows(district: dict[str, Any]) -> None:
    before, after = district["health1"], read_health(district["out"] / "health.db")
    watermark = max(r["updated_at"] for r in before.values())
    assert watermark < "2026-11-01"
    new = set(after) - set(before)
    updated = {k for k in before if after[k]["updated_at"] > watermark}
    assert new and updated
    assert all(after[k]["updated_at"] > watermark for k in new)
    assert any(after[k]["is_deleted"] == 1 and before[k]["is_deleted"] == 0 for k in updated)
    unchanged = set(before) - updated
    assert all(after[k] == before[k] for k in unchanged)


def test_health_table_types_and_codes(district: dict[str, Any]) -> None:
    con = sqlite3.connect(district["out"] / "health.db")
    try:
        types = con.execute(
            "SELECT DISTINCT typeof(gender_code), typeof(is_deleted), typeof(birth_date) "
            "FROM hw_ehr_person").fetchall()
        codes = {r[0] for r in con.execute("SELECT DISTINCT id_type FROM hw_ehr_person")}
        null_ids, total = con.execute(
            "SELECT sum(id_no IS NULL), count(*) FROM hw_ehr_person").fetchone()
        date, clock = "[12][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]", "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
        bad_dates = con.execute(
            f"SELECT count(*) FROM hw_ehr_person WHERE birth_date NOT GLOB '{date}' "
            f"OR updated_at NOT GLOB '{date} {clock}'").fetchone()[0]
    finally:
        con.close()
    assert types == [("integer", "integer", "text")]
    assert codes <= {"01", "03", "99"} and {"01", "99"} <= codes
    assert 0.1 < null_ids / total < 0.45
    assert bad_dates == 0


def test_twins_share_birth_and_address_but_not_ids(district: dict[str, Any]) -> None:
    out = district["out"]
    truth = {(f, k): p for f, k, p in truth_rows(district["truth1"])}
    groups: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for row in read_csv(out / "landing/ps_population" / DAY1 / "population.csv"):
        if row["人员类别"] == "境外人员" or not is_valid_id(row["公民身份号码"]):
            continue
        person = truth["ps_population", row["人员编号"]]
        groups[row["出生日期"], row["居住地址"], row["姓名"][0]][person] = row["公民身份号码"]
    twins = [ids for ids in groups.values() if len(ids) >= 2]
    assert twins, "expected twins at twins=0.5"
    for ids in twins:
        assert len(set(ids.values())) == len(ids)


def test_valid_resident_ids_are_never_shared_by_two_persons(district: dict[str, Any]) -> None:
    truth = {(f, k): p for f, k, p in truth_rows(district["truth1"])}
    owners: dict[str, set[str]] = defaultdict(set)
    for row in read_csv(district["out"] / "landing/ps_population" / DAY1 / "population.csv"):
        if is_valid_id(row["公民身份号码"]):
            owners[row["公民身份号码"]].add(truth["ps_population", row["人员编号"]])
    assert owners and all(len(persons) == 1 for persons in owners.values())


def test_truth_names_twins_both_ways_and_twins_share_a_birth_date(
    district: dict[str, Any],
) -> None:
    text = district["truth1"]
    assert text.splitlines()[0] == "feed,source_key,true_person_id,twin_of,damage"
    twin_of = {r["true_person_id"]: r["twin_of"] for r in truth_table(text).values()}
    twins = {p: t for p, t in twin_of.items() if t}
    assert twins, "expected twins at twins=0.5"
    for person, twin in twins.items():
        assert twin != person
        if twin in twin_of:  # a twin with no record of their own is not listed
            assert twin_of[twin] == person
    births: dict[str, set[str]] = defaultdict(set)
    truth = truth_table(text)
    for row in read_csv(district["out"] / "landing/ps_population" / DAY1 / "population.csv"):
        births[truth["ps_population", row["人员编号"]]["true_person_id"]].add(row["出生日期"])
    pairs = [(p, t) for p, t in twins.items() if p in births and t in births]
    assert pairs
    assert all(births[p] & births[t] for p, t in pairs)


def test_damage_tags_are_known_and_match_what_was_delivered(district: dict[str, Any]) -> None:
    truth = truth_table(district["truth1"])
    seen = set().union(*(tags(r) for r in truth.values()))
    assert seen <= set(TAGS)
    assert {"id_excel", "id_missing", "birth_format", "address_format", "relative_phone",
            "phone_format"} <= seen
    out = district["out"]
    id_damage = {"id_typo", "id_check_digit", "id_transposed"}
    for row in read_csv(out / "landing/ps_population" / DAY1 / "population.csv"):
        damage = tags(truth["ps_population", row["人员编号"]])
        if row["人员类别"] != "境外人员":  # the check digit catches every typo and swap
            assert is_valid_id(row["公民身份号码"]) == (not damage & id_damage), row
        assert (row["联系电话"] == "") == ("phone_missing" in damage), row
    rows, header = read_roster(out / "landing/ca_recipients" / DAY1 / "recipients.xlsx")
    for cells in rows[header + 1 :]:
        damage = tags(truth["ca_recipients", str(cells[0])])
        if "id_excel" in damage and "guardian_id" not in damage:
            assert not (isinstance(cells[2], str) and is_valid_id(cells[2])), cells
        assert (cells[2] in (None, "")) == ("id_missing" in damage), cells
        assert (isinstance(cells[4], str)) == ("birth_format" in damage), cells
    for record, health in district["health1"].items():
        damage = tags(truth["hw_ehr_person", record])
        assert (health["id_no"] is None) == ("id_missing" in damage), health
        assert (health["gender_code"] in (0, 9)) == ("sex_unknown" in damage), health


def test_day2_truth_marks_records_still_carrying_a_former_name(
    district: dict[str, Any],
) -> None:
    before = truth_table(district["truth1"])
    after = truth_table((district["out"] / "truth.csv").read_text(encoding="utf-8"))
    renamed = {k for k, r in after.items()
               if k in before and "name_change" in tags(r) and "name_change" not in tags(before[k])}
    assert renamed, "expected day-2 renames at day2_name_change=0.02"
    assert {after[k]["true_person_id"] for k in renamed}  # tagged records name a person
    for key in before.keys() & after.keys():
        assert tags(before[key]) - {"name_change"} == tags(after[key]) - {"name_change"}


def test_damage_fields_replace_and_unknown_tags_are_refused() -> None:
    damage = Damage()
    damage.add("id", "id_typo")
    damage.add("phone", "relative_phone")
    damage.replace("id", "id_transposed")
    assert str(damage) == "id_transposed;relative_phone"
    with pytest.raises(ValueError, match="unknown damage"):
        damage.add("id", "typo")


def test_roster_carries_excel_damage_and_mixed_birth_formats(district: dict[str, Any]) -> None:
    rows, header = read_roster(district["out"] / "landing/ca_recipients" / DAY1 / "recipients.xlsx")
    ids = [r[2] for r in rows[header + 1 :]]
    births = [r[4] for r in rows[header + 1 :]]
    assert any(isinstance(v, float) and v > 1e17 for v in ids)
    assert any(isinstance(v, str) and "E+17" in v for v in ids)
    assert any(not isinstance(v, str) for v in births)  # an Excel date cell
    assert any(isinstance(v, str) and "-" in v for v in births)


def test_check_digit_follows_gb11643() -> None:
    assert check_digit("11010519491231002") == "X"
    assert is_valid_id("11010519491231002X") and not is_valid_id("110105194912310021")


def test_same_seed_gives_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def digest(out: Path) -> dict[str, str]:
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, 120, 3)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86_400 * 3)  # zip entry times
    generate(b, 120, 3)
    monkeypatch.undo()
    generate(c, 120, 4)
    assert digest(a) == digest(b)
    assert digest(a)["truth.csv"] != digest(c)["truth.csv"]
    assert len(digest(a)) == 9  # 3 feeds × (data + manifest), health.db, truth, generate.json


def test_day2_needs_day1(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="day 2 needs the day-1 output"):
        generate(tmp_path / "empty", 50, 1, day=2)
    generate(tmp_path / "d", 50, 1)
    with pytest.raises(ConfigError, match="same seed"):
        generate(tmp_path / "d", 50, 2, day=2)
    with pytest.raises(ConfigError, match="same seed"):
        generate(tmp_path / "d", 50, 1, day=2, rates=replace(ErrorRates(), twins=0.9))


@pytest.mark.parametrize("kwargs", [{"persons": 0}, {"seed": -1}, {"day": 3}])
def test_bad_arguments_are_config_errors(tmp_path: Path, kwargs: dict[str, int]) -> None:
    args = {"persons": 10, "seed": 1, "day": 1} | kwargs
    with pytest.raises(ConfigError):
        generate(tmp_path, **args)


def test_rates_must_be_probabilities() -> None:
    with pytest.raises(ConfigError, match=r"twins=1\.5"):
        ErrorRates(twins=1.5)
