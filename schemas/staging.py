"""Pandera model of ``staging.person_records``, the table linkage reads.

Why written out (unlike the feed schemas): this table is the hub's own interface, fixed by
docs/architecture.md, not a department's delivery; linkage is written against exactly
these columns. A unit test checks the model against the built table, so a change to one
without the other fails.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

FEEDS = ["ps_population", "ps_housing", "ca_recipients", "hw_ehr_person"]
RECORD_STATUSES = ["active", "deregistered", "deleted", "inactive"]


class PersonRecords(pa.DataFrameModel):
    """One row per current (or ended) person record from any feed."""

    record_id: Series[str] = pa.Field(unique=True, str_matches=r"^(ps_population|ps_housing|ca_recipients|hw_ehr_person):.+$")
    feed: Series[str] = pa.Field(isin=FEEDS)
    source_key: Series[str]
    batch_id: Series[str]
    name: Series[str] = pa.Field(nullable=True)
    id_number: Series[str] = pa.Field(nullable=True)
    id_type: Series[str] = pa.Field(nullable=True, isin=["01", "03", "99"])
    sex_raw: Series[str] = pa.Field(nullable=True, isin=["男", "女"])
    birth_raw: Series[str] = pa.Field(nullable=True)
    phone: Series[str] = pa.Field(nullable=True)
    address: Series[str] = pa.Field(nullable=True)
    hukou_address: Series[str] = pa.Field(nullable=True)
    house_code: Series[str] = pa.Field(nullable=True)
    record_status: Series[str] = pa.Field(isin=RECORD_STATUSES)
    updated_at: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check
    @classmethod
    def record_id_is_feed_and_key(cls, df: pd.DataFrame) -> pd.Series:
        """record_id is ``<feed>:<source_key>``: the key linkage and publish join on."""
        return df["record_id"] == df["feed"] + ":" + df["source_key"]

    class Config:
        strict = True
        ordered = True
        coerce = False
