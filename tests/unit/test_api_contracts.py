"""Each pattern's OpenAPI document: generated from its handler, checked in, valid."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, NotRequired

import pytest
from typing_extensions import TypedDict

from blocks import openapi_docs

PATTERN_DIRS = openapi_docs.pattern_dirs()
DOCUMENTS = {p.name: p / openapi_docs.DOCUMENT_NAME for p in PATTERN_DIRS}


def test_every_pattern_with_an_api_has_a_document() -> None:
    # Every folder with a runtime/*_api.py; a fork that removes or adds one follows.
    assert DOCUMENTS
    for name, document in DOCUMENTS.items():
        assert document.is_file(), f"patterns/{name}/openapi.json is missing: make api-docs"


@pytest.mark.parametrize("pattern_dir", PATTERN_DIRS, ids=[p.name for p in PATTERN_DIRS])
def test_the_checked_in_document_is_what_the_handler_code_generates(pattern_dir: Path) -> None:
    # GIVEN the handler code WHEN its document is generated (in a fresh interpreter)
    generated = openapi_docs.generate(pattern_dir)

    # THEN it is the checked-in file, byte for byte, and valid OpenAPI 3.1
    checked_in = (pattern_dir / openapi_docs.DOCUMENT_NAME).read_text(encoding="utf-8")
    assert checked_in == generated, f"{pattern_dir.name}/openapi.json is stale: make api-docs"
    openapi_docs.validate(json.loads(checked_in))


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_error_answer_has_the_handlers_error_shape(name: str) -> None:
    document = json.loads(DOCUMENTS[name].read_text(encoding="utf-8"))
    assert "HTTPValidationError" not in json.dumps(document)  # no framework 422 shape
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert {"400", "403", "429", "5XX"} <= statuses, (method, path)
            for status, response in operation["responses"].items():
                schema = response["content"]["application/json"]["schema"]
                if status.startswith("2"):
                    continue
                (error_ref, codes) = schema["allOf"]
                assert error_ref == {"$ref": "#/components/schemas/Error"}
                assert codes["properties"]["error"]["enum"], (method, path, status)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_success_answer_documents_its_body_fields(name: str) -> None:
    # GIVEN the checked-in document
    document = json.loads(DOCUMENTS[name].read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                # THEN each success answer names a component (its TypedDict) that lists
                # its fields and which of them every answer carries
                ref = response["content"]["application/json"]["schema"]["$ref"]
                body = schemas[ref.removeprefix("#/components/schemas/")]
                assert body["type"] == "object", (method, path, status)
                assert body["properties"], (method, path, status)
                assert set(body["required"]) <= set(body["properties"]), (method, path, status)


def _error_codes(operation: dict[str, Any], status: str) -> list[str]:
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    codes: list[str] = schema["allOf"][1]["properties"]["error"]["enum"]
    return codes


def _keyed_operations() -> list[Any]:
    """``pytest.param(operation, its Idempotency-Key parameter)`` of every document."""
    found = []
    for name, document_path in sorted(DOCUMENTS.items()):
        document = json.loads(document_path.read_text(encoding="utf-8"))
        for path, item in document["paths"].items():
            for method, operation in item.items():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "Idempotency-Key":
                        found.append(
                            pytest.param(operation, parameter, id=f"{name}:{method} {path}")
                        )
    return found


KEYED_OPERATIONS = _keyed_operations()


def test_the_keyed_operations_are_found() -> None:
    # Every write API of the patterns takes a key; the test below must not run on none.
    assert KEYED_OPERATIONS


@pytest.mark.parametrize(("operation", "parameter"), KEYED_OPERATIONS)
def test_every_keyed_operation_declares_that_an_ambiguous_key_is_400(
    operation: dict[str, Any], parameter: dict[str, Any]
) -> None:
    # GIVEN an operation of a checked-in document that reads an Idempotency-Key
    # THEN its 400 lists ambiguous_idempotency_key, and a key with a comma (a folded
    # list) breaks the key's schema
    assert "ambiguous_idempotency_key" in _error_codes(operation, "400")
    pattern = re.compile(parameter["schema"]["pattern"])
    assert pattern.search("k-1") and not pattern.search("k-1, k-1")


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_operation_that_takes_a_body_declares_that_another_media_type_is_415(
    name: str,
) -> None:
    # GIVEN the checked-in document
    document = json.loads(DOCUMENTS[name].read_text(encoding="utf-8"))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            # THEN an operation with a (JSON) body answers 415 unsupported_media_type for
            # a body of another media type; one without a body checks none
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == ["application/json"]
                assert _error_codes(operation, "415") == ["unsupported_media_type"]
            else:
                assert "415" not in operation["responses"], (method, path)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_operation_declares_the_503_of_a_failed_aws_call(name: str) -> None:
    # GIVEN the checked-in document
    document = json.loads(DOCUMENTS[name].read_text(encoding="utf-8"))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            # THEN every operation says it answers 503 service_unavailable with
            # Retry-After, as every API does when DynamoDB or another AWS service fails
            # after the SDK's retries (handler_kit.error_answers.dependency_failures)
            assert _error_codes(operation, "503") == ["service_unavailable"], (method, path)
            assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)


class _Link(TypedDict):
    self: str


class _Body(TypedDict):
    """A body with an optional key and a nullable one."""

    thing_id: str
    cursor: str | None
    result: NotRequired[int]
    link: _Link


def test_a_success_body_typeddict_becomes_a_component_with_its_required_keys() -> None:
    # GIVEN the components of a document being built
    schemas: dict[str, Any] = {}

    # WHEN a success body's TypedDict is added
    name = openapi_docs._add_body(schemas, _Body)

    # THEN it is a component: NotRequired keys are optional, None allows null, and the
    # nested TypedDict is a component of its own, referenced where the document keeps it
    body = schemas[name]
    assert name == "_Body"
    assert body["required"] == ["thing_id", "cursor", "link"]
    assert {"type": "null"} in body["properties"]["cursor"]["anyOf"]
    assert body["properties"]["link"] == {"$ref": "#/components/schemas/_Link"}
    assert schemas["_Link"]["required"] == ["self"]


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_request_body_states_the_handlers_raw_size_limit(name: str) -> None:
    document = json.loads(DOCUMENTS[name].read_text(encoding="utf-8"))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                limit = operation["requestBody"]["x-max-body-bytes"]
                assert isinstance(limit, int) and limit > 0, (method, path)
                assert str(limit) in operation["requestBody"]["description"]


def test_a_route_the_contract_does_not_declare_fails_the_generation(tmp_path: Path) -> None:
    # GIVEN a copy of a pattern whose handler routes one path past its contract (with the
    # resolver's own decorator, every handler's resolver being ``app``)
    pattern_dir = _copy_pattern(PATTERN_DIRS[0].name, tmp_path)
    handler = pattern_dir / "runtime" / f"{openapi_docs.api_module_of(pattern_dir)}.py"
    handler.write_text(
        handler.read_text()
        + '\n\n@app.get("/undeclared")\ndef undeclared() -> dict[str, str]:\n    return {}\n'
    )

    # WHEN its document is generated THEN generation names the undeclared route
    with pytest.raises(RuntimeError, match=r"routes without a declaration.*undeclared"):
        openapi_docs.generate(pattern_dir)


def _copy_pattern(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(
        openapi_docs.PATTERNS_DIR / name, target, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target
