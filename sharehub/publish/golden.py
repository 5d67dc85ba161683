"""Golden records: one row per person, each value chosen by a written survivorship rule.

The rules (also in docs/metrics.md, "Golden records"):

- identity (name, resident ID, sex, birth date) comes from the most authoritative source
  that has a usable value: public security population, then health, then civil affairs,
  then housing owners; active records before ended ones; a valid ID before an invalid one;
  a real name before a newborn placeholder (张丽之子); then the most recent update;
- phone comes from the most recent record with a mobile number, civil affairs last because
  its phone is often a relative's;
- current address comes from public security population (the residence register), then
  the most recent record with an address.

Every chosen value names the record it came from (``*_source`` columns), so each shared
value traces back to its source record and batch.
"""

from __future__ import annotations

AUTHORITY = {"ps_population": 1, "hw_ehr_person": 2, "ca_recipients": 3, "ps_housing": 4}

_AUTHORITY_CASE = (
    "CASE r.feed "
    + " ".join(f"WHEN '{feed}' THEN {rank}" for feed, rank in AUTHORITY.items())
    + " ELSE 9 END"
)

_IDENTITY_ORDER = (
    f"{_AUTHORITY_CASE}, (r.record_status <> 'active'), (NOT coalesce(f.id_valid, false)), "
    "coalesce(f.is_placeholder_name, false), r.updated_at DESC NULLS LAST, r.record_id"
)
_PHONE_ORDER = (
    "(f.phone_kind IS DISTINCT FROM 'mobile'), (r.feed = 'ca_recipients'), "
    "(r.record_status <> 'active'), r.updated_at DESC NULLS LAST, r.record_id"
)
_ADDRESS_ORDER = (
    "(r.feed <> 'ps_population'), (r.record_status <> 'active'), "
    "r.updated_at DESC NULLS LAST, r.record_id"
)


def _pick(value: str, order: str, alias: str, *, extra_filter: str = "") -> str:
    cond = f"{value} IS NOT NULL" + (f" AND {extra_filter}" if extra_filter else "")
    return (
        f"first({value} ORDER BY {order}) FILTER (WHERE {cond}) AS {alias},\n"
        f"        first(r.record_id ORDER BY {order}) FILTER (WHERE {cond}) AS {alias}_source"
    )


def golden_person_sql(person_ids: str = "linkage.person_ids") -> str:
    """SELECT producing one golden row per person_id."""
    return f"""
    SELECT
        p.person_id,
        {_pick("f.name_std", "coalesce(f.is_placeholder_name, false), " + _IDENTITY_ORDER, "name")},
        {_pick("f.id_norm", _IDENTITY_ORDER, "id_number", extra_filter="f.id_valid")},
        {_pick("f.sex", _IDENTITY_ORDER, "sex")},
        {_pick("f.birth_date", _IDENTITY_ORDER, "birth_date")},
        {_pick("f.phone_std", _PHONE_ORDER, "phone")},
        {_pick("r.address", _ADDRESS_ORDER, "address")},
        {_pick("r.house_code", _ADDRESS_ORDER, "house_code", extra_filter="r.feed = 'ps_population'")},
        CASE WHEN bool_or(r.record_status = 'active') THEN 'active'
             WHEN bool_or(r.record_status = 'deregistered') THEN 'deregistered'
             ELSE min(r.record_status) END AS status,
        count(*) AS source_records,
        list(DISTINCT r.feed ORDER BY r.feed) AS feeds
    FROM {person_ids} p
    JOIN staging.person_records r ON r.record_id = p.record_id
    JOIN linkage.person_features f ON f.unique_id = p.record_id
    GROUP BY p.person_id
    """
