"""A pattern's checked-in OpenAPI document, read at synth: the API's request models.

The document (``patterns/<name>/openapi.json``) is generated from the handler code by
``blocks/openapi_docs.py``; its request bodies are the handlers' pydantic models in
JSON Schema 2020-12 (OpenAPI 3.1). API Gateway validates bodies with JSON Schema
draft 4, so :func:`to_draft4` converts each body schema:

- ``$ref`` (to ``#/components/schemas/...`` or ``#/$defs/...``) is inlined;
- ``anyOf: [X, {"type": "null"}]`` (pydantic's ``X | None``) becomes X with
  ``type: [<X's type>, "null"]``; any other ``anyOf``, ``oneOf``, ``allOf`` or ``not``
  is refused, as is every keyword this module does not know: synth fails rather than
  deploy a model that validates something else than the handler;
- numeric ``exclusiveMinimum``/``exclusiveMaximum`` (2020-12) become an inclusive bound
  on integers and draft 4's boolean form on numbers;
- ``const`` becomes a one-value ``enum``;
- annotations (``title``, ``description``, ``default``, ``examples``) and
  ``additionalProperties: true`` (the default) are dropped.

The result is equivalent for every JSON document, so the gateway refuses no body the
document (and the handler) accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Schema keywords that only annotate: they validate nothing.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
#: Keywords draft 4 reads as 2020-12 does.
_SAME = frozenset(
    {
        "type",
        "enum",
        "required",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
    }
)


class UnsupportedSchemaError(ValueError):
    """A request schema uses something API Gateway's draft 4 models cannot say."""


class ApiDocument:
    """An OpenAPI 3.1 document and the draft 4 request models it gives.

    Parameters
    ----------
    path : Path
        The document (``patterns/<name>/openapi.json``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))

    def operations(self) -> set[tuple[str, str]]:
        """Every ``(METHOD, /path/{param})`` the document declares."""
        return {
            (method.upper(), path)
            for path, item in self.document.get("paths", {}).items()
            for method in item
            if method in {"get", "put", "post", "delete", "patch", "head", "options"}
        }

    def operation(self, method: str, path: str) -> dict[str, Any]:
        """The document's operation object of ``method path``.

        Raises
        ------
        KeyError
            If the document does not declare it (the API and its handler disagree).
        """
        found: dict[str, Any] | None = (
            self.document.get("paths", {}).get(path, {}).get(method.lower())
        )
        if found is None:
            raise KeyError(
                f"{method} {path} is not in {self.path.name} ({self.path.parent.name}): route "
                "it in the handler, or run `make api-docs`"
            )
        return found

    def request_schema(self, method: str, path: str) -> dict[str, Any] | None:
        """The draft 4 schema of the JSON body ``method path`` requires, if any.

        An optional body (``requestBody.required`` false) gets no schema: API Gateway
        would check an empty body against it too.
        """
        body = self.operation(method, path).get("requestBody")
        if not body or not body.get("required", False):
            return None
        schema = body["content"]["application/json"]["schema"]
        return to_draft4(schema, self.document)


def to_draft4(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` (JSON Schema 2020-12, ``$ref`` resolved in ``root``) as draft 4.

    Examples
    --------
    >>> to_draft4({"anyOf": [{"type": "integer", "exclusiveMaximum": 10}, {"type": "null"}],
    ...            "default": None, "title": "N"}, {})
    {'type': ['integer', 'null'], 'maximum': 9}
    """
    return _convert(schema, root, ())


def _resolve(reference: str, root: Mapping[str, Any], seen: tuple[str, ...]) -> Mapping[str, Any]:
    if reference in seen:
        raise UnsupportedSchemaError(f"recursive schema {reference}: a model cannot inline it")
    if not reference.startswith("#/"):
        raise UnsupportedSchemaError(f"external $ref {reference}")
    target: Any = root
    for part in reference[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return dict(target)


def _convert(
    schema: Mapping[str, Any], root: Mapping[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    if "$ref" in schema:
        reference = schema["$ref"]
        rest = {k: v for k, v in schema.items() if k != "$ref" and k not in _ANNOTATIONS}
        if rest:
            raise UnsupportedSchemaError(f"$ref with siblings {sorted(rest)}")
        return _convert(_resolve(reference, root, seen), root, (*seen, reference))
    if "anyOf" in schema:
        return _nullable(schema, root, seen)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS or key == "$defs":
            continue
        if key in _SAME:
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _convert(sub, root, seen) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, root, seen)
        elif key == "additionalProperties":
            if value is not True:
                out[key] = value if isinstance(value, bool) else _convert(value, root, seen)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            _exclusive_bound(out, key, value, schema.get("type"))
        else:
            raise UnsupportedSchemaError(f"unsupported JSON schema keyword {key!r}")
    return out


def _exclusive_bound(out: dict[str, Any], key: str, value: Any, type_: Any) -> None:
    lower = key == "exclusiveMinimum"
    if isinstance(value, bool):
        raise UnsupportedSchemaError(f"boolean {key} is draft 4's form, not 2020-12's")
    if type_ == "integer" and isinstance(value, int):
        out["minimum" if lower else "maximum"] = value + 1 if lower else value - 1
    else:
        out["minimum" if lower else "maximum"] = value
        out[key] = True


def _nullable(
    schema: Mapping[str, Any], root: Mapping[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    """``anyOf: [X, {"type": "null"}]`` as X allowing null (draft 4 type lists)."""
    rest = {k for k in schema if k != "anyOf" and k not in _ANNOTATIONS}
    branches = [_convert(branch, root, seen) for branch in schema["anyOf"]]
    others = [b for b in branches if b != {"type": "null"}]
    if rest or len(branches) != 2 or len(others) != 1 or not isinstance(others[0].get("type"), str):
        raise UnsupportedSchemaError(
            "anyOf is supported only as [<schema with one type>, {'type': 'null'}]"
        )
    converted = dict(others[0])
    converted["type"] = [converted["type"], "null"]
    if "enum" in converted:
        converted["enum"] = [*converted["enum"], None]
    return converted
