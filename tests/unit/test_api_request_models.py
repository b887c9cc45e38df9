"""The conversion of an OpenAPI document's request bodies (JSON Schema 2020-12) into API
Gateway request models (draft 4). That a pattern's models refuse no body its handler
accepts is each pattern's test (``tests/unit/<name>/test_*_contract.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from blocks.openapi import UnsupportedSchemaError, to_draft4


def test_draft4_conversion_inlines_refs_and_rewrites_what_draft4_says_otherwise() -> None:
    root = {
        "components": {
            "schemas": {
                "Limit": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
                "Ratio": {"type": "number", "exclusiveMaximum": 1.5},
            }
        }
    }
    schema = {
        "type": "object",
        "title": "Body",
        "properties": {
            "limit": {"$ref": "#/components/schemas/Limit"},
            "ratio": {"$ref": "#/components/schemas/Ratio"},
            "kind": {"const": "job"},
            "mode": {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]},
            "payload": {"type": "object", "additionalProperties": True},
        },
        "additionalProperties": False,
    }
    assert to_draft4(schema, root) == {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": 9},
            "ratio": {"type": "number", "maximum": 1.5, "exclusiveMaximum": True},
            "kind": {"enum": ["job"]},
            "mode": {"enum": ["a", "b", None], "type": ["string", "null"]},
            "payload": {"type": "object"},
        },
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"oneOf": [{"type": "string"}]},
        {"type": "string", "format": "date-time"},
        {"$ref": "#/components/schemas/Loop"},
    ],
    ids=["anyOf", "oneOf", "unknown-keyword", "recursive-ref"],
)
def test_draft4_conversion_refuses_what_it_cannot_say_exactly(schema: dict[str, Any]) -> None:
    root = {
        "components": {
            "schemas": {
                "Loop": {
                    "type": "object",
                    "properties": {"next": {"$ref": "#/components/schemas/Loop"}},
                }
            }
        }
    }
    with pytest.raises(UnsupportedSchemaError):
        to_draft4(schema, root)
