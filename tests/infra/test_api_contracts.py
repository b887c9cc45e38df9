"""Each pattern's API is what its OpenAPI document declares: the template routes exactly
the document's operations and models exactly its required bodies (that a field added to
a pydantic model reaches the template: tests/infra/decoupled_invocation/test_contract.py)."""

from __future__ import annotations

from typing import Any

import pytest

from blocks import openapi_docs
from blocks.openapi import ApiDocument
from patterns import pattern_name_of
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import of_type, request_schema

#: Stack id of each pattern with an API (a fork that removes or adds one follows).
STACKS = {p.name: pattern_name_of(p.name) for p in openapi_docs.pattern_dirs()}


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
            # One model for any Content-Type: API Gateway validates no body whose type
            # has no model, so a model keyed by application/json alone is bypassable.
            assert list(properties["RequestModels"]) == ["$default"], (method, path)
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


@pytest.mark.parametrize("pattern", sorted(STACKS))
def test_api_gateway_may_invoke_a_function_only_through_the_deployed_stage(
    pattern: str, ephemeral: SynthesizedStage
) -> None:
    # GIVEN the stack's template
    resources = ephemeral.template_json(STACKS[pattern])["Resources"]
    stages = set(of_type(resources, "AWS::ApiGateway::Stage"))
    methods = of_type(resources, "AWS::ApiGateway::Method")

    # THEN API Gateway holds one invoke permission per method, each for one method of
    # the deployed stage: none for the console's test-invoke stage or any stage
    grants = [
        permission["Properties"]
        for permission in of_type(resources, "AWS::Lambda::Permission").values()
        if permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(grants) == len(methods)
    for grant in grants:
        parts = grant["SourceArn"]["Fn::Join"][1]
        stage_refs = {part["Ref"] for part in parts if isinstance(part, dict) and "Ref" in part}
        assert stage_refs & stages, grant["SourceArn"]
        assert not any(isinstance(part, str) and "test-invoke-stage" in part for part in parts)
