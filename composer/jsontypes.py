"""Types of JSON documents (``summary.json``, stored Optuna attributes, settings files).

A record the code reasons about is a frozen dataclass; ``JSONObject`` is only what such a record
serialises to (``to_dict``) or is read back from (``from_dict``), so the values are known to be JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

__all__ = ["JSONValue", "JSONObject", "Record", "FlatRecord", "to_json"]

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]
"""Any value ``json.dumps`` writes without a ``default``."""

JSONObject = dict[str, JSONValue]
"""A JSON object: the serialised form of a record."""


def to_json(value: object) -> JSONValue:
    """``value`` as JSON: a record by its own ``to_dict``, tuples and lists as lists, mappings as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if to_dict is not None else to_json(dataclasses.asdict(value))
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    return value  # type: ignore[return-value]


class Record:
    """Base of a frozen dataclass whose JSON form is its fields in order (``to_json`` of each value)."""

    def to_dict(self) -> JSONObject:
        return {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


class FlatRecord(Record):
    """A record of scalar fields stored as a table row; ``from_dict`` keeps the entries that are fields, so
    a row written before a field was added reads it as the field's default."""

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})
