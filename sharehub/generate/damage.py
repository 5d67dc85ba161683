"""What the generator did to one record: damage tags, written to ``truth.csv``.

Why record it: an accuracy figure alone says how often linkage fails, not why. With each
record's damage known, every wrong or missed link can be grouped by cause (an ID typo, a
homophone, a guardian's ID, an address written another way), so a regression is traced
to the kind of data that provokes it and a target met on easy data shows as such.

Why by field: some damage replaces earlier damage of the same field (a duplicate
registration re-types the ID, a second clinic's record drops the phone), so tags are kept
per field and a field's tags can be replaced; the truth file lists the union of all
fields' tags, sorted, ``;``-separated. Recording a tag never draws from an RNG, so the
delivered files are the same bytes whether or not anyone reads the tags.
"""

from __future__ import annotations

# Every tag the generator writes, and what it means. The evaluation groups errors by
# these; docs/accuracy.md reproduces the table.
TAGS: dict[str, str] = {
    "id_check_digit": "resident ID with a wrong check character",
    "id_typo": "resident ID with one digit mistyped",
    "id_transposed": "resident ID with two adjacent digits swapped",
    "id_missing": "no ID delivered (blank cell, health record without ID)",
    "id_15digit": "legacy 15-digit ID (no century, no check character)",
    "id_excel": "ID damaged by Excel: a float, '1.10105E+17' text, or lost last digits",
    "id_lower_x": "ID ending in a lowercase x",
    "guardian_id": "the guardian's ID typed into the recipient's ID column",
    "homophone": "a character of the name replaced by a homophone (surnames included)",
    "traditional": "name typed with traditional characters",
    "fullwidth": "full-width characters or an ideographic space in the name or ID",
    "space": "stray space inside, before or after the name",
    "dot_variant": "minority name's middle dot written as a look-alike character",
    "name_change": "the record carries a former name (曾用名)",
    "placeholder_name": "newborn registered before naming (张丽之子)",
    "sex_unknown": "health gender_code 0 or 9",
    "birth_format": "birth known only as year and month, in one of four formats",
    "birth_jan1": "elderly health record with only the birth year (YYYY-01-01)",
    "birth_malformed": "出生日期 breaking the YYYYMMDD contract (quarantined)",
    "phone_missing": "no phone delivered",
    "relative_phone": "a household member's mobile or the household landline",
    "guardian_phone": "the guardian's mobile as the recipient's contact phone",
    "phone_format": "phone spaced, dashed or with +86",
    "address_format": "address in another style (3-2-501, 3栋, no 室) or abbreviated prefix",
    "address_stale": "an older address elsewhere in the district",
    "address_missing": "no address delivered",
}
FIELDS = ("id", "name", "sex", "birth", "phone", "address")


class Damage:
    """The damage tags of one record, kept per field (see module docstring)."""

    __slots__ = ("_by_field",)

    def __init__(self) -> None:
        self._by_field: dict[str, list[str]] = {}

    def add(self, field: str, tag: str) -> None:
        """Record that ``tag`` was done to ``field`` (on top of earlier damage)."""
        if field not in FIELDS or tag not in TAGS:
            raise ValueError(f"unknown damage {field}/{tag}; fields {FIELDS}, tags {list(TAGS)}")
        tags = self._by_field.setdefault(field, [])
        if tag not in tags:
            tags.append(tag)

    def replace(self, field: str, tag: str | None = None) -> None:
        """The field was written again: forget its earlier tags, keep ``tag`` if given."""
        self._by_field.pop(field, None)
        if tag is not None:
            self.add(field, tag)

    def tags(self) -> tuple[str, ...]:
        """All tags of the record, sorted and without repeats."""
        return tuple(sorted({t for tags in self._by_field.values() for t in tags}))

    def copy(self) -> Damage:
        other = Damage()
        other._by_field = {k: list(v) for k, v in self._by_field.items()}
        return other

    def __str__(self) -> str:
        return ";".join(self.tags())

    def __repr__(self) -> str:
        return f"Damage({self})"


def note(damage: Damage | None, field: str, tag: str) -> None:
    """``damage.add(field, tag)`` when a caller asked for damage to be recorded."""
    if damage is not None:
        damage.add(field, tag)
