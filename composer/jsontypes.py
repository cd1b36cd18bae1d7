"""Types of JSON documents (``summary.json``, stored Optuna attributes, settings files).

A record the code reasons about is a frozen dataclass; ``JSONObject`` is only what such a record
serialises to (``to_dict``) or is read back from (``from_dict``), so the values are known to be JSON.
"""

from __future__ import annotations

__all__ = ["JSONValue", "JSONObject"]

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]
"""Any value ``json.dumps`` writes without a ``default``."""

JSONObject = dict[str, JSONValue]
"""A JSON object: the serialised form of a record."""
