"""The API fuzz's own checks (tests.support.api_fuzz) catch what they are there for.

An in-memory API stands in for a stage: it answers from a tiny OpenAPI document's
operation and can be made to misbehave in the ways the fuzz must report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from localstage.target import HttpResponse

from tests.support import api_fuzz

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "things", "version": "1"},
    "paths": {
        "/things": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string", "maxLength": 8}},
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "made",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "400": {
                        "description": "refused",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        }
    },
}


class ThingsApi:
    """A fake target: ``POST /things`` stores a valid thing (201) and refuses the rest
    (400), unless told to write on refusal or to fail with a 500 on an empty name."""

    name = "fake"
    observer = None

    def __init__(self, *, writes_on_refusal: bool = False, fails_on_empty: bool = False) -> None:
        self.table: list[dict[str, Any]] = []
        self.writes_on_refusal = writes_on_refusal
        self.fails_on_empty = fails_on_empty

    def output(self, stack: str, name: str) -> str:
        return "https://api.example/api/"

    def call_api(self, api_url: str, method: str, path: str, **kwargs: Any) -> HttpResponse:
        try:
            body = json.loads(kwargs.get("body") or "")
            valid = (
                isinstance(body, dict)
                and set(body) == {"name"}
                and isinstance(body["name"], str)
                and len(body["name"]) <= 8
            )
        except ValueError:
            valid = False
        if valid and self.fails_on_empty and not body["name"]:
            return _answer(500, {"error": "server_error", "message": "boom"})
        if valid:
            self.table.append(body)
            return _answer(201, {"name": body["name"]})
        if self.writes_on_refusal:
            self.table.append({"refused": True})
        return _answer(400, {"error": "invalid_request", "message": "bad thing"})

    def physical_ids(self, stack: str, resource_type: str) -> list[str]:
        return ["things"] if resource_type == "AWS::DynamoDB::Table" else []

    def scan_items(self, table: str) -> list[dict[str, Any]]:
        return list(self.table)


def _answer(status: int, body: Any) -> HttpResponse:
    return HttpResponse("POST", "u", status, {"content-type": "application/json"}, body, 0.0)


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(DOCUMENT))
    return path


@pytest.fixture(autouse=True)
def no_settle_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_fuzz, "SETTLE_INTERVAL_S", 0.0)


def test_an_api_that_keeps_its_document_passes(document: Path) -> None:
    # GIVEN an API that answers as its document says
    api = ThingsApi()

    # WHEN it is fuzzed
    report = api_fuzz.fuzz_api(api, "Things", document, examples=10)  # type: ignore[arg-type]

    # THEN cases of both kinds were sent and nothing is reported
    assert report.refused > 0 and report.tried > report.refused
    assert report.failures == []


def test_a_refused_request_that_writes_is_reported(document: Path) -> None:
    # GIVEN an API that stores something while it refuses a request
    api = ThingsApi(writes_on_refusal=True)

    # WHEN it is fuzzed
    report = api_fuzz.fuzz_api(api, "Things", document, examples=10)  # type: ignore[arg-type]

    # THEN the table it changed is named
    assert "refused requests changed table things" in report.failures


def test_a_server_error_on_a_valid_request_is_reported(document: Path) -> None:
    # GIVEN an API that fails on a valid but odd request (an empty name)
    api = ThingsApi(fails_on_empty=True)

    # WHEN it is fuzzed
    report = api_fuzz.fuzz_api(api, "Things", document, examples=30)  # type: ignore[arg-type]

    # THEN each such answer is reported as a server error
    assert any("-> 500: server error" in failure for failure in report.failures)
