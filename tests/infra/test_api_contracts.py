"""The API Gateway request models come from the handler code, through each pattern's
OpenAPI document: a field added to a pydantic request model reaches the template, and
the template's routes are exactly the document's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from blocks import openapi_docs
from blocks.openapi import ApiDocument
from blocks.stage_settings import StageSettings
from patterns.decoupled_invocation import construct as decoupled
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import api_methods, of_type, request_schema

#: Stack id of each pattern with an API (the stage names stacks by pattern).
STACKS = {
    "decoupled_invocation": "DecoupledInvocation",
    "event_sourcing": "EventSourcing",
    "fan_out_fan_in": "FanOutFanIn",
    "one_off_schedules": "OneOffSchedules",
    "recursive_processor": "RecursiveProcessor",
}


def _post_jobs_schema(document: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ``POST /jobs`` request model of a decoupled invocation built from ``document``."""
    monkeypatch.setattr(decoupled, "OPENAPI_DOCUMENT", document)
    stack = cdk.Stack(cdk.App(), "Scratch")
    settings = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)
    decoupled.DecoupledInvocation(stack, "Jobs", settings=settings)
    resources = Template.from_stack(stack).to_json()["Resources"]
    (post,) = [m for m in api_methods(resources) if m["HttpMethod"] == "POST"]
    return request_schema(resources, post)


def test_a_field_added_to_the_request_model_reaches_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a copy of the decoupled invocation whose JobRequest model gains a field
    checked_in = decoupled.OPENAPI_DOCUMENT
    pattern_dir = tmp_path / "decoupled_invocation"
    shutil.copytree(
        openapi_docs.PATTERNS_DIR / "decoupled_invocation",
        pattern_dir,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    models = pattern_dir / "runtime" / "job_models.py"
    anchor = '    outcome: Literal["succeed", "fail", "crash"] = "succeed"\n'
    assert anchor in models.read_text()
    models.write_text(
        models.read_text().replace(
            anchor, anchor + "    priority: Annotated[int, Field(ge=0, le=9)] = 0\n", 1
        )
    )

    # WHEN its document is generated from the code and the pattern is built from it
    document = pattern_dir / openapi_docs.DOCUMENT_NAME
    document.write_text(openapi_docs.generate(pattern_dir))
    schema = _post_jobs_schema(document, monkeypatch)

    # THEN API Gateway's request model has the field, with the model's bounds
    assert schema["properties"]["priority"] == {"type": "integer", "minimum": 0, "maximum": 9}
    assert schema["additionalProperties"] is False
    # AND the checked-in document (the unchanged model) does not have it
    original = _post_jobs_schema(checked_in, monkeypatch)
    assert "priority" not in original["properties"]


@pytest.mark.parametrize("pattern", sorted(STACKS))
def test_the_api_routes_exactly_what_its_document_declares(
    pattern: str, ephemeral: SynthesizedStage
) -> None:
    # GIVEN the stack's template and the pattern's document
    resources = ephemeral.template_json(STACKS[pattern])["Resources"]
    document = ApiDocument(openapi_docs.PATTERNS_DIR / pattern / openapi_docs.DOCUMENT_NAME)

    # THEN the methods are the document's operations, and a body is modelled exactly
    # where the document requires one
    paths = _resource_paths(resources)
    routed = {}
    for method in of_type(resources, "AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        resource = properties["ResourceId"]
        path = paths[resource["Ref"]] if "Ref" in resource else "/"
        routed[(properties["HttpMethod"], path)] = properties
    assert set(routed) == document.operations()
    for (method, path), properties in routed.items():
        expected = document.request_schema(method, path)
        if expected is None:
            assert "RequestModels" not in properties, (method, path)
        else:
            schema = request_schema(resources, properties)
            assert {k: v for k, v in schema.items() if k != "$schema"} == expected


def _resource_paths(resources: dict[str, Any]) -> dict[str, str]:
    """The path of each ``AWS::ApiGateway::Resource``, by logical id."""
    parts = {
        logical_id: resource["Properties"]
        for logical_id, resource in of_type(resources, "AWS::ApiGateway::Resource").items()
    }

    def path_of(logical_id: str) -> str:
        properties = parts[logical_id]
        parent = properties["ParentId"]
        prefix = path_of(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{properties['PathPart']}"

    return {logical_id: path_of(logical_id) for logical_id in parts}
