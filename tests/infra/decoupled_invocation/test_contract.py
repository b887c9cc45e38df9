"""The API Gateway request models come from the handler code: a field added to the
pydantic request model reaches the template, through the generated OpenAPI document."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from blocks import openapi_docs
from blocks.stage_settings import StageSettings
from patterns.decoupled_invocation import construct as decoupled
from tests.infra.templates import api_methods, request_schema


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
