"""Decoupled invocation: API Gateway's request model (from ``openapi.json``) refuses no body
the handler's pydantic model accepts."""

from __future__ import annotations

import json

import job_models

from tests.support.contracts import document_of, gateway_acceptance_test

DOCUMENT = document_of("decoupled_invocation")


test_the_gateway_model_refuses_no_body_the_handler_accepts = gateway_acceptance_test(
    "decoupled_invocation", {"/jobs": job_models.JobRequest}
)


def test_post_jobs_declares_the_idempotency_key_header() -> None:
    document = json.loads(DOCUMENT.path.read_text(encoding="utf-8"))
    (header,) = document["paths"]["/jobs"]["post"]["parameters"]
    assert header["name"] == "Idempotency-Key"
    assert header["in"] == "header"
    assert header["required"] is False
    assert header["schema"]["maxLength"] == 128
