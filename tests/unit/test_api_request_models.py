"""The API Gateway request models derived from each OpenAPI document (draft 4): the
conversion, and that a model refuses no body its handler accepts."""

from __future__ import annotations

import json
from typing import Any

import account_models
import fan_out_models
import job_models
import pytest
import schedule_models
from handler_kit.strict_json import parse_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from pydantic import BaseModel, ValidationError

from blocks import openapi_docs
from blocks.openapi import ApiDocument, UnsupportedSchemaError, to_draft4

DOCUMENTS = {p.name: p / openapi_docs.DOCUMENT_NAME for p in openapi_docs.pattern_dirs()}


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


# Each request body: its pydantic model (what the handler validates with) and the request
# model API Gateway gets (the document's schema as draft 4, as the stack builds it).
BODIES: list[tuple[str, str, str, type[BaseModel]]] = [
    ("decoupled_invocation", "POST", "/jobs", job_models.JobRequest),
    ("fan_out_fan_in", "POST", "/jobs", fan_out_models.JobRequest),
    ("event_sourcing", "POST", "/accounts/{account_id}/credit", account_models.AmountRequest),
    ("event_sourcing", "POST", "/accounts/{account_id}/withdraw", account_models.AmountRequest),
    ("one_off_schedules", "POST", "/schedules", schedule_models.ScheduleRequest),
]

_BOUNDARIES = [0, 1, 9, 10, 100, 999, 1000, 1001, 9999, 10_000, 10_001, 10_000_000]
_BOUNDARIES += [100_000_000, 100_000_001, 2**31 - 1, 2**31, 10**9, 10**9 + 1, -(10**9)]
_STRINGS = ["", "a", "job.1", "bad task", "succeed", "fail", "crash", "2030-01-01T00:00:00Z"]
_STRINGS += ["a" * 64, "a" * 65, "x" * 4096, "x" * 4097]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_BOUNDARIES),
    st.integers(-3, 3),
    st.sampled_from([1.0, 0.5]),
    st.sampled_from(_STRINGS),
    st.text(max_size=4),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.one_of(st.integers(-2, 10_001), st.sampled_from(_BOUNDARIES)), max_size=4),
    st.lists(_SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=3), _SCALARS, max_size=2),
)


def _fitting(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that mostly fit ``schema`` (2020-12, the document's): edges included."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _fitting(root["components"]["schemas"][name], root)
    if "anyOf" in schema:
        return st.one_of([_fitting(branch, root) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**40 + 1) - 1)
        return st.one_of(st.integers(low, high), st.sampled_from([low, high]))
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 80)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda text: low <= len(text) <= high
            )
        return st.one_of(
            st.text(min_size=low, max_size=min(high, 80)),
            st.sampled_from(["x" * high, "2030-01-01T00:00:00Z"]),
        )
    if kind == "array":
        return st.lists(
            _fitting(schema.get("items", {}), root),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 5), 5),
        )
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties:
            return st.dictionaries(st.text(max_size=3), _SCALARS, max_size=3)
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: _fitting(sub, root) for name, sub in properties.items() if name in required},
            optional={
                name: _fitting(sub, root)
                for name, sub in properties.items()
                if name not in required
            },
        )
    return _VALUES


@pytest.mark.parametrize(
    ("pattern", "method", "path", "model"), BODIES, ids=[f"{b[0]}{b[2]}" for b in BODIES]
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_gateway_model_refuses_no_body_the_handler_accepts(
    pattern: str, method: str, path: str, model: type[BaseModel], data: st.DataObject
) -> None:
    # GIVEN the request model the stack derives from the document
    document = ApiDocument(DOCUMENTS[pattern])
    schema = document.request_schema(method, path)
    assert schema is not None
    gateway = Draft4Validator(schema)
    # AND a body that mostly fits the document's schema, with edge values; sometimes
    # with a field swapped for an arbitrary value or an unknown field added
    body_schema = document.operation(method, path)["requestBody"]["content"]["application/json"]
    body = dict(data.draw(_fitting(body_schema["schema"], document.document)))
    if data.draw(st.booleans()):
        body[data.draw(st.sampled_from([*model.model_fields, "extra"]))] = data.draw(_VALUES)
    text = json.dumps(body)

    # WHEN the handler's model accepts it THEN so does API Gateway's
    try:
        parse_model(model, text)
    except (ValidationError, ValueError):
        return
    assert gateway.is_valid(json.loads(text)), (text, list(gateway.iter_errors(body)))
