"""A validator of a Singer message stream, written from the Singer specification (the
singer-io "getting started" SPEC: message types and their fields) independently of
``ctctsync.singer``: every line is one JSON message of a known type with its required fields;
a RECORD's stream has had a SCHEMA; every RECORD validates against its stream's latest
SCHEMA (formats checked: ``date-time`` values must be RFC 3339); key properties are in the
schema and filled in every record; a STATE holds a JSON value."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import orjson

MESSAGE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "type": {"const": "RECORD"},
                "stream": {"type": "string", "minLength": 1},
                "record": {"type": "object"},
                "version": {"type": "integer"},
                "time_extracted": {"type": "string", "format": "date-time"},
            },
            "required": ["type", "stream", "record"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "type": {"const": "SCHEMA"},
                "stream": {"type": "string", "minLength": 1},
                "schema": {"type": "object"},
                "key_properties": {"type": "array", "items": {"type": "string"}},
                "bookmark_properties": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["type", "stream", "schema", "key_properties"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"type": {"const": "STATE"}, "value": {}},
            "required": ["type", "value"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"type": {"const": "ACTIVATE_VERSION"},
                           "stream": {"type": "string"}, "version": {"type": "integer"}},
            "required": ["type", "stream", "version"],
            "additionalProperties": False,
        },
    ]
}

_MESSAGE = jsonschema_rs.validator_for(MESSAGE_SCHEMA, validate_formats=True)


@dataclass
class Checked:
    """What a valid message stream carried."""

    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The last SCHEMA message of each stream."""
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: list[Any] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    """Message types in the order sent."""

    @property
    def last_state(self) -> Any:
        return self.states[-1] if self.states else None


def check_messages(data: bytes) -> Checked:
    """Validate a tap's whole stdout; raises AssertionError naming the first bad line."""
    out = Checked()
    validators: dict[str, Any] = {}
    keys: dict[str, list[str]] = {}
    assert data.endswith(b"\n") or not data, "the output must end with a newline"
    for n, line in enumerate(data.splitlines(), 1):
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise AssertionError(f"line {n} is not JSON ({exc}): {line[:120]!r}") from None
        errors = [e.message for e in _MESSAGE.iter_errors(message)]
        assert not errors, f"line {n} is not a Singer message: {errors[:3]} {line[:200]!r}"
        kind = message["type"]
        out.order.append(kind)
        if kind == "SCHEMA":
            schema = message["schema"]
            assert jsonschema_rs.meta.is_valid(schema), f"line {n}: invalid JSON Schema"
            props = schema.get("properties", {})
            missing = [k for k in message["key_properties"] if k not in props]
            assert not missing, f"line {n}: key properties {missing} not in the schema"
            for mark in message.get("bookmark_properties", []):
                assert mark in props, f"line {n}: bookmark property {mark} not in the schema"
            stream = message["stream"]
            validators[stream] = jsonschema_rs.validator_for(schema, validate_formats=True)
            keys[stream] = message["key_properties"]
            out.schemas[stream] = message
        elif kind == "RECORD":
            stream = message["stream"]
            assert stream in validators, f"line {n}: RECORD of {stream} before its SCHEMA"
            record = message["record"]
            bad = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
                   for e in validators[stream].iter_errors(record)]
            assert not bad, f"line {n}: {stream} record does not match its SCHEMA: {bad[:3]}"
            empty = [k for k in keys[stream] if record.get(k) is None]
            assert not empty, f"line {n}: {stream} record without key {empty}"
            out.records[stream].append(record)
        elif kind == "STATE":
            out.states.append(message["value"])
    return out
