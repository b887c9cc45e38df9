"""The check every pattern's contract test makes: API Gateway's request model (derived
from the pattern's OpenAPI document) refuses no body the handler's pydantic model accepts.

Bodies are drawn mostly fitting the document's schema (edge values included), some with
a field swapped for an arbitrary value or an unknown field added; the handler's model is
the oracle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from handler_kit.strict_json import parse_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from pydantic import BaseModel, ValidationError

from blocks.openapi import ApiDocument

#: Each pattern's document.
PATTERNS_DIR = Path(__file__).resolve().parents[2] / "patterns"


def document_of(pattern: str) -> ApiDocument:
    """The checked-in OpenAPI document of ``patterns/<pattern>``."""
    return ApiDocument(PATTERNS_DIR / pattern / "openapi.json")


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


def fitting(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that mostly fit ``schema`` (2020-12, the document's): edges included."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return fitting(root["components"]["schemas"][name], root)
    if "anyOf" in schema:
        return st.one_of([fitting(branch, root) for branch in schema["anyOf"]])
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
            fitting(schema.get("items", {}), root),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 5), 5),
        )
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties:
            return st.dictionaries(st.text(max_size=3), _SCALARS, max_size=3)
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: fitting(sub, root) for name, sub in properties.items() if name in required},
            optional={
                name: fitting(sub, root) for name, sub in properties.items() if name not in required
            },
        )
    return _VALUES


def check_gateway_accepts_what_the_handler_accepts(
    document: ApiDocument, method: str, path: str, model: type[BaseModel], data: st.DataObject
) -> None:
    """Draw one body; if ``model`` accepts it, the derived request model must too."""
    schema = document.request_schema(method, path)
    assert schema is not None, (method, path)
    gateway = Draft4Validator(schema)
    body_schema = document.operation(method, path)["requestBody"]["content"]["application/json"]
    body = dict(data.draw(fitting(body_schema["schema"], document.document)))
    if data.draw(st.booleans()):
        body[data.draw(st.sampled_from([*model.model_fields, "extra"]))] = data.draw(_VALUES)
    text = json.dumps(body)
    try:
        parse_model(model, text)
    except (ValidationError, ValueError):
        return
    assert gateway.is_valid(json.loads(text)), (text, list(gateway.iter_errors(body)))


def gateway_acceptance_test(
    pattern: str, models: Mapping[str, type[BaseModel]]
) -> Callable[..., None]:
    """A test, parametrized by path, that draws 300 bodies per POST route of ``pattern``
    (``models``: the handler's model for each path) through
    :func:`check_gateway_accepts_what_the_handler_accepts`.

    A pattern's contract test module assigns it to a ``test_...`` name.
    """
    document = document_of(pattern)

    @pytest.mark.parametrize("path", list(models))
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test(path: str, data: st.DataObject) -> None:
        check_gateway_accepts_what_the_handler_accepts(document, "POST", path, models[path], data)

    return test
