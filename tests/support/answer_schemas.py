"""Handler unit tests: every success answer's body is the one its OpenAPI document gives.

The document's success schemas come from the ``TypedDict`` each handler declares and
builds (``handler_kit.contract.ok(..., body=...)``); mypy checks the code builds that
shape, and this checks the values the unit tests' real answers carry (a stored item's
null, a key present only in some states) against it. The e2e API fuzz does the same on
the local cloud, but its generated ids mostly find nothing, so it sees few finished
resources; the unit tests walk each resource through all of its states.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema

from tests.support.events import HttpResponse


@functools.cache
def _document(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def assert_answer_documented(
    api: ModuleType, event: Mapping[str, Any], response: HttpResponse
) -> None:
    """Fail if ``response``, a success answer of ``api`` to ``event``, has a body its
    pattern's document (``patterns/<name>/openapi.json``) does not allow.

    Answers of a route or status the document does not declare, and error answers, are
    left to the tests that make them.
    """
    if not 200 <= response.status < 300 or api.__file__ is None:
        return
    document = _document(Path(api.__file__).resolve().parents[1] / "openapi.json")
    operation = document["paths"].get(event["resource"], {}).get(event["httpMethod"].lower())
    declared = (operation or {}).get("responses", {}).get(str(response.status))
    if declared is None:
        return
    schema = declared["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(response.body))
    if error is not None:
        where = f"{event['httpMethod']} {event['resource']} {response.status}"
        raise AssertionError(f"{where}: the body is not the documented one: {error.message}")
