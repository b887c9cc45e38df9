"""Decoupled invocation: API Gateway's request model (from ``openapi.json``) refuses no body
the handler's pydantic model accepts."""

from __future__ import annotations

import json

import job_models
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.contracts import check_gateway_accepts_what_the_handler_accepts, document_of

DOCUMENT = document_of("decoupled_invocation")


@pytest.mark.parametrize("path", ["/jobs"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_gateway_model_refuses_no_body_the_handler_accepts(
    path: str, data: st.DataObject
) -> None:
    check_gateway_accepts_what_the_handler_accepts(
        DOCUMENT, "POST", path, job_models.JobRequest, data
    )


def test_post_jobs_declares_the_idempotency_key_header() -> None:
    document = json.loads(DOCUMENT.path.read_text(encoding="utf-8"))
    (header,) = document["paths"]["/jobs"]["post"]["parameters"]
    assert header["name"] == "Idempotency-Key"
    assert header["in"] == "header"
    assert header["required"] is False
    assert header["schema"]["maxLength"] == 128
