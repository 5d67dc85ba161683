"""The house index and residence kept up to date day by day equal a rebuild every day.

Unlike tests/unit/test_houses.py, whose rows are written by hand, the inputs here come
the way the pipeline makes them: deliveries pulled through the feed code, person records
staged (`build_person_records`), standardised (`linkage.changes.standardise`) and given
person ids by `linkage.index.assign_person_ids` (on clusters written here, so that
persons merge and split on cue). Then `build_house_index` and `build_residence` compare
only what the day's batches and id changes can have touched. After every day a copy of
the warehouse is rebuilt from scratch and every table must be equal, as a multiset.

The days: a dwelling deregistered and re-registered while its residents' records stay
unchanged; a dwelling losing its last resident, and regaining one; an owner emptied
(the record vanishes) and named again; a new dwelling sharing an address key (the key
turns ambiguous for records that did not change); a dwelling appearing for a code a
record already carries; two persons merged, then split; records ended; a day when ids
were not assigned (links wait for an id) and the day they are; days with nothing new.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from linkage.changes import standardise
from linkage.houses import HOUSES, MATCHES, RESIDENCE_PENDING, build_house_index
from linkage.index import assign_person_ids
from linkage.residence import RESIDENCE, build_residence
from sharehub.feeds import build_person_records, pull_health, pull_pending
from sharehub.feeds.person_records import TABLE as PERSON_RECORDS
from sharehub.settings import Settings

Con = duckdb.DuckDBPyConnection
POP, HOUSE, CA, HW = "ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"
TABLES = (PERSON_RECORDS, HOUSES, MATCHES, RESIDENCE)

A1, A2 = "幸福里小区3号楼2单元501室", "幸福里小区3号楼2单元502室"
A3, A4, A5 = "阳光花园1号楼1单元101室", "阳光花园1号楼1单元102室", "阳光花园2号楼1单元201室"
A4_AGAIN = "阳光花园1栋1单元102室"  # another dwelling's address with A4's key
A6 = "阳光花园3号楼1单元301室"


def _rows(con: Con, table: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def _clusters(con: Con, persons: list[list[str]]) -> None:
    """``linkage.clusters``: each group of records one cluster, every other record alone."""
    group = {r: min(p) for p in persons for r in p}
    ids = [r for (r,) in con.execute(f"SELECT record_id FROM {PERSON_RECORDS}").fetchall()]
    con.execute("CREATE OR REPLACE TABLE linkage.clusters (unique_id VARCHAR, cluster_id VARCHAR)")
    con.executemany(
        "INSERT INTO linkage.clusters VALUES (?, ?)", [(r, group.get(r, r)) for r in ids]
    )


def _reference(con: Con, tmp: Path, day: int) -> tuple[Con, Any, int]:
    """A copy of the warehouse with every derived table rebuilt from scratch."""
    con.execute("CHECKPOINT")
    copy = tmp / f"reference-{day}.duckdb"
    shutil.copy(con.execute("SELECT path FROM duckdb_databases() WHERE database_name = "
                            "current_database()").fetchall()[0][0], copy)  # fmt: skip
    ref = duckdb.connect(str(copy))
    build_person_records(ref, full=True)
    result = build_house_index(ref, reuse=False)
    rows = build_residence(ref, reuse=False)
    return ref, result, rows


class Day:
    """One day's run, the pipeline's stages in order; checked against a rebuild."""

    def __init__(self, con: Con, settings: Settings, tmp: Path, caplog: pytest.LogCaptureFixture):
        self.con, self.settings, self.tmp, self.caplog = con, settings, tmp, caplog
        self.day = 0

    def run(self, persons: list[list[str]] | None) -> str:
        """Pull, stage, standardise, (assign ids unless ``persons`` is None), index houses;
        compare with a rebuild; return the log."""
        self.day += 1
        con = self.con
        self.caplog.clear()
        with self.caplog.at_level("INFO"):
            pull_pending(con, self.settings)
            pull_health(con, self.settings)
            build_person_records(con)
            standardise(con)
            if persons is not None:
                _clusters(con, persons)
                assign_person_ids(
                    con, run_id=f"run-{self.day}", now=datetime(2026, 11, self.day, 20)
                )
            result = build_house_index(con)
            rows = build_residence(con)
        logged = self.caplog.text
        ref, expected, expected_rows = _reference(con, self.tmp, self.day)
        try:
            assert (result, rows) == (expected, expected_rows)
            for table in TABLES:
                assert _rows(con, table) == _rows(ref, table), (self.day, table)
            assert _rows(con, RESIDENCE_PENDING) == _rows(ref, RESIDENCE_PENDING)
        finally:
            ref.close()
        return logged

    def links(self) -> dict[tuple[str, str], tuple[Any, ...]]:
        """(record_id, role) → (person_id, house code, valid)."""
        rows = self.con.execute(
            f"SELECT r.record_id, r.role, r.person_id, h.house_code, r.valid FROM {RESIDENCE} r "
            f"JOIN {HOUSES} h USING (house_id)"
        ).fetchall()
        return {(r[0], r[1]): tuple(r[2:]) for r in rows}

    def person(self, record_id: str) -> str:
        return str(self.con.execute("SELECT person_id FROM linkage.person_ids WHERE record_id = ?",
                                    [record_id]).fetchall()[0][0])  # fmt: skip


SCOPED = (
    "only the records of new batches rewritten",
    "only dwellings and records of new batches, and those they move, rewritten",
    "only links of changed matches and persons rewritten",
)


def test_daily_house_index_and_residence_equal_a_rebuild(
    con: Con,
    settings: Settings,
    deliver: Callable[..., Path],
    health_db: Callable[..., Path],
    samples: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    day = Day(con, settings, tmp_path, caplog)
    owner_b = {"产权人姓名": "李娜", "产权人证件号码": "110105198001010028"}
    owner_c = {"产权人姓名": "王芳", "产权人证件号码": "110105197505050021"}
    zhang = ["ps_population:P0001", "ca_recipients:M0001", "ps_housing:H0001"]
    li = ["ps_population:P0003", "hw_ehr_person:E0001", "ps_housing:H0003"]

    # Day 1: four dwellings, records linking by code, by address, and one by a code
    # the register does not know yet (H0009).
    deliver(HOUSE, "20261101-001", [
        samples.row(HOUSE, 房屋编码="H0001", 房屋地址=A1),
        samples.row(HOUSE, 房屋编码="H0002", 房屋地址=A2, 产权人姓名=None, 产权人证件号码=None),
        samples.row(HOUSE, 房屋编码="H0003", 房屋地址=A3, **owner_b),
        samples.row(HOUSE, 房屋编码="H0004", 房屋地址=A4, **owner_c),
    ])  # fmt: skip
    deliver(POP, "20261101-001", [
        samples.row(POP, 人员编号="P0001", 房屋编码="H0001", 居住地址=A1),
        samples.row(POP, 人员编号="P0002", 姓名="赵强", 房屋编码=None, 居住地址=A2),
        samples.row(POP, 人员编号="P0003", 姓名="李娜", 房屋编码="H0003", 居住地址=A3),
        samples.row(POP, 人员编号="P0004", 姓名="钱七", 房屋编码="H0009", 居住地址=A5),
    ])  # fmt: skip
    deliver(
        CA,
        "20261101-001",
        [
            samples.row(CA, 对象编号="M0001"),
            samples.row(CA, 对象编号="M0002", 家庭住址="阳光花园1-1-102"),
        ],
    )
    health_db([samples.row(HW, record_id="E0001", address=A3),
               samples.row(HW, record_id="E0002", name="王芳", address=A4)])  # fmt: skip
    logged = day.run([zhang, li])
    assert "linkage.houses rebuilt" in logged and "linkage.residence rebuilt" in logged
    links = day.links()
    assert links[("ps_population:P0002", "resident")][1:] == ("H0002", True)
    assert links[("hw_ehr_person:E0002", "resident")][1:] == ("H0004", True)
    assert ("ps_population:P0004", "resident") not in links
    assert links[("ps_population:P0003", "resident")][0] == day.person("hw_ehr_person:E0001")

    # Day 2: H0003 deregistered (its residents' records unchanged), H0001's owner
    # emptied, a new dwelling H0005 shares A4's key (E0002 and M0002 lose their match),
    # P0002 leaves H0002 empty; the persons of P0002 and P0003 are merged.
    deliver(HOUSE, "20261102-001", [
        samples.row(HOUSE, 房屋编码="H0003", 房屋地址=A3, 变动类型="注销", **owner_b,
                    更新时间="2026-11-02 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0001", 房屋地址=A1, 变动类型="变更", 产权人姓名=None,
                    产权人证件号码=None, 更新时间="2026-11-02 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0005", 房屋地址=A4_AGAIN, 产权人姓名=None,
                    产权人证件号码=None, 更新时间="2026-11-02 02:00:00"),
    ], extract_type="delta")  # fmt: skip
    deliver(POP, "20261102-001", [
        samples.row(POP, 人员编号="P0002", 姓名="赵强", 房屋编码=None, 居住地址=A5, 变动类型="变更",
                    更新时间="2026-11-02 10:00:00"),
    ], extract_type="delta")  # fmt: skip
    health_db([samples.row(HW, record_id="E0003", name="孙八", address=A1,
                           updated_at="2026-11-02 09:00:00")])  # fmt: skip
    logged = day.run([zhang, [*li, "ps_population:P0002"]])
    assert all(s in logged for s in SCOPED), logged
    links = day.links()
    assert links[("ps_population:P0003", "resident")][1:] == ("H0003", False)
    assert links[("hw_ehr_person:E0001", "resident")][1:] == ("H0003", False)
    assert ("ps_housing:H0001", "owner") not in links
    assert ("hw_ehr_person:E0002", "resident") not in links  # A4's key is ambiguous now
    assert not [k for k, v in links.items() if v[1] == "H0002"]  # H0002 lost its resident
    assert day.person("ps_population:P0002") == day.person("ps_population:P0003")

    # Day 3: H0009 registered (P0004's code links), H0003 back, H0001's owner named again,
    # P0001 deregistered; the merged person is split again.
    deliver(HOUSE, "20261103-001", [
        samples.row(HOUSE, 房屋编码="H0009", 房屋地址=A6, 产权人姓名=None, 产权人证件号码=None,
                    更新时间="2026-11-03 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0003", 房屋地址=A3, 变动类型="变更", **owner_b,
                    更新时间="2026-11-03 02:00:00"),
        samples.row(HOUSE, 房屋编码="H0001", 房屋地址=A1, 变动类型="变更",
                    更新时间="2026-11-03 02:00:00"),
    ], extract_type="delta")  # fmt: skip
    deliver(POP, "20261103-001", [
        samples.row(POP, 人员编号="P0001", 房屋编码="H0001", 居住地址=A1, 变动类型="注销",
                    更新时间="2026-11-03 10:00:00"),
    ], extract_type="delta")  # fmt: skip
    logged = day.run([zhang, li])
    assert all(s in logged for s in SCOPED), logged
    links = day.links()
    assert links[("ps_population:P0004", "resident")][1:] == ("H0009", True)  # by its code
    assert links[("ps_population:P0003", "resident")][1:] == ("H0003", True)
    assert links[("ps_housing:H0001", "owner")][1:] == ("H0001", True)
    assert links[("ps_population:P0001", "resident")][1:] == ("H0001", False)
    assert day.person("ps_population:P0002") != day.person("ps_population:P0003")

    # Day 4: E0004 arrives at H0002 but ids are not assigned (its link waits); M0002
    # leaves the civil-affairs rolls.
    health_db([samples.row(HW, record_id="E0004", name="周九", address=A2,
                           updated_at="2026-11-04 09:00:00")])  # fmt: skip
    deliver(CA, "20261104-001", [samples.row(CA, 对象编号="M0001")])
    logged = day.run(None)
    assert all(s in logged for s in SCOPED), logged
    assert "1 house links dropped" in logged
    assert ("hw_ehr_person:E0004", "resident") not in day.links()
    assert _rows(con, RESIDENCE_PENDING) == [("hw_ehr_person:E0004",)]

    # Day 5: nothing delivered, ids assigned: the waiting link appears. Li's person is
    # merged into Zhang's (the older id), though none of their records changed.
    logged = day.run([[*zhang, *li]])
    assert all(s in logged for s in SCOPED), logged
    links = day.links()
    assert links[("hw_ehr_person:E0004", "resident")][1:] == ("H0002", True)
    merged = day.person("ps_population:P0001")
    assert links[("ps_population:P0003", "resident")][0] == merged
    assert links[("ps_housing:H0003", "owner")][0] == merged

    # Day 6: split again; day 7: nothing at all, nothing is rewritten.
    logged = day.run([zhang, li])
    assert all(s in logged for s in SCOPED), logged
    assert day.links()[("ps_population:P0003", "resident")][0] != merged
    logged = day.run([zhang, li])
    assert all(s in logged for s in SCOPED), logged
    assert "linkage.houses 0 rewritten" in logged and "linkage.house_matches 0 rewritten" in logged
    assert "linkage.residence 0 rewritten" in logged


def test_tables_out_of_step_are_compared_in_full_and_stay_equal(
    con: Con,
    settings: Settings,
    deliver: Callable[..., Path],
    health_db: Callable[..., Path],
    samples: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pull the person records have not seen, a table edited by hand, a dropped
    pending set: each run falls back to comparing everything, and is right."""
    day = Day(con, settings, tmp_path, caplog)
    deliver(
        HOUSE,
        "20261101-001",
        [
            samples.row(HOUSE, 房屋编码="H0001", 房屋地址=A1),
            samples.row(HOUSE, 房屋编码="H0002", 房屋地址=A2),
        ],
    )
    deliver(
        POP,
        "20261101-001",
        [
            samples.row(POP, 人员编号="P0001", 房屋编码="H0001"),
            samples.row(POP, 人员编号="P0002", 房屋编码=None, 居住地址=A2),
        ],
    )
    health_db([samples.row(HW, record_id="E0001", address=A1)])
    day.run([])
    day.run([])
    # A pull after staging: the house index must not trust person records.
    deliver(HOUSE, "20261102-001", [samples.row(HOUSE, 房屋编码="H0002", 房屋地址=A2, 变动类型="注销",
                                                更新时间="2026-11-02 02:00:00")],
            extract_type="delta")  # fmt: skip
    pull_pending(con, settings)
    caplog.clear()
    with caplog.at_level("INFO"):
        build_house_index(con)
    assert "is not up to date with staging" in caplog.text
    assert "linkage.house_matches 0 rewritten" in caplog.text
    assert "linkage.houses 1 rewritten" in caplog.text  # H0002, read from staging itself
    logged = day.run([])  # person records catch up: the index has no marks, so all compared
    assert "(all compared)" in logged
    assert day.links()[("ps_population:P0002", "resident")][1:] == ("H0002", False)
    logged = day.run([])
    assert all(s in logged for s in SCOPED), logged
    # Tables written by something else since their marks: compared in full.
    con.execute(f"DELETE FROM {MATCHES} WHERE record_id = 'ps_population:P0001'")
    con.execute(f"DELETE FROM {RESIDENCE} WHERE record_id = 'ps_population:P0002'")
    con.execute(f"DELETE FROM {PERSON_RECORDS} WHERE record_id = 'ps_housing:H0001'")
    logged = day.run([])
    assert "every record compared" in logged and "(all compared)" in logged
    assert "only links of changed matches and persons rewritten" not in logged
    # No pending set: residence cannot know what the index rewrote.
    con.execute(f"DROP TABLE {RESIDENCE_PENDING}")
    logged = day.run([])
    assert "linkage.residence 0 rewritten (0 rows deleted, 0 inserted) (all compared)" in logged
    logged = day.run([])
    assert all(s in logged for s in SCOPED), logged
