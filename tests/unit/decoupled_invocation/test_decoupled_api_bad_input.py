"""job_api.handler against moto: POST /jobs refuses bad bodies, sizes and keys with 400."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.events import assert_json_error
from tests.unit.decoupled_invocation.conftest import VALID, assert_nothing_written, post_jobs_event

# --------------------------------------------------------------------------- POST bad input


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param('{"task": "resize",', "JSON", id="malformed-json"),
        pytest.param("not json at all", "JSON", id="not-json"),
        pytest.param('["resize"]', "object", id="json-array"),
        pytest.param('"resize"', "object", id="json-string"),
        pytest.param(None, "body", id="no-body"),
        pytest.param("   ", "body", id="blank-body"),
        pytest.param({"input": "x"}, "task", id="missing-task"),
        pytest.param({"task": 5}, "task", id="task-not-string"),
        pytest.param({"task": ""}, "task", id="task-empty"),
        pytest.param({"task": "re size"}, "task", id="task-bad-characters"),
        pytest.param({"task": "t" * 65}, "task", id="task-too-long"),
        pytest.param({"task": "a", "input": 42}, "input", id="input-not-string"),
        pytest.param({"task": "a", "input": "x" * 4097}, "input", id="input-too-long"),
        pytest.param({"task": "a", "duration_ms": "100"}, "duration_ms", id="duration-string"),
        pytest.param({"task": "a", "duration_ms": True}, "duration_ms", id="duration-bool"),
        pytest.param({"task": "a", "duration_ms": 1.5}, "duration_ms", id="duration-float"),
        pytest.param({"task": "a", "duration_ms": -1}, "duration_ms", id="duration-negative"),
        pytest.param({"task": "a", "duration_ms": 10_001}, "duration_ms", id="duration-too-big"),
        pytest.param({"task": "a", "outcome": "explode"}, "outcome", id="outcome-unknown"),
        pytest.param({"task": "a", "outcome": None}, "outcome", id="outcome-null"),
        pytest.param({"task": "a", "priority": 1}, "priority", id="extra-field"),
    ],
)
def test_post_rejects_bad_body_with_400_and_writes_nothing(handlers, infra, body, named):
    # GIVEN a body that breaks the contract
    # WHEN it is submitted
    response = handlers.post(body)

    # THEN it is a JSON 400 whose message names the problem
    assert_json_error(response, 400, "invalid_request")
    assert named in response.body["message"]
    # AND nothing was stored or queued
    assert_nothing_written(infra)


def test_post_rejects_body_over_16_kib_with_400(handlers, infra):
    # GIVEN valid JSON padded to one byte over 16 KiB
    body = '{"task": "a"}'
    body += " " * (16 * 1024 + 1 - len(body))

    # WHEN it is submitted
    response = handlers.post(body)

    # THEN it is refused as too large before parsing
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


def test_post_accepts_body_of_exactly_16_kib(handlers, infra):
    # GIVEN valid JSON padded to exactly 16 KiB
    body = '{"task": "a"}'
    body += " " * (16 * 1024 - len(body))

    # WHEN it is submitted
    response = handlers.post(body)

    # THEN it is accepted
    assert response.status == 202


def test_post_measures_bytes_not_characters(handlers, infra):
    # GIVEN raw UTF-8 JSON of ~4,100 characters, 4,096 of them 4 bytes long (over 16 KiB)
    body = json.dumps({"task": "a", "input": "\U0001f600" * 4096}, ensure_ascii=False)
    assert len(body) < 16 * 1024 < len(body.encode("utf-8"))

    # WHEN it is submitted
    response = handlers.post(body)

    # THEN the body is over 16 KiB and refused even though the field is within its limit
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


def test_post_rejects_oversize_base64_body_with_400(handlers, infra):
    # GIVEN a base64 body that decodes to more than 16 KiB
    body = '{"task": "a"}' + " " * (16 * 1024)

    # WHEN it is submitted
    response = handlers.post(body, base64_body=True)

    # THEN it is too large
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


@pytest.mark.parametrize(
    "raw_body",
    [
        pytest.param("not base64!!", id="not-base64"),
        pytest.param(base64.b64encode(b"\xff\xfe\x00task").decode(), id="not-utf8"),
    ],
)
def test_post_rejects_undecodable_base64_body_with_400(handlers, infra, raw_body):
    # GIVEN a body flagged base64 that is not base64 of UTF-8 JSON
    event = post_jobs_event(raw_body)
    event["isBase64Encoded"] = True

    # WHEN it is submitted
    response = handlers.call_api(event)

    # THEN it is a 400, never a 500
    assert_json_error(response, 400, "invalid_request")
    assert_nothing_written(infra)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 129, id="too-long"),
        pytest.param("clé-1", id="non-ascii"),
        pytest.param("tab\there", id="control-character"),
    ],
)
def test_post_rejects_bad_idempotency_key_with_400(handlers, infra, key):
    # GIVEN a valid body with an invalid Idempotency-Key
    # WHEN it is submitted
    response = handlers.post(VALID, headers={"Idempotency-Key": key})

    # THEN it is a 400 naming the header, and nothing is written
    assert_json_error(response, 400, "invalid_request")
    assert "Idempotency-Key" in response.body["message"]
    assert_nothing_written(infra)


def test_post_rejects_conflicting_repeated_idempotency_keys(handlers, infra):
    # GIVEN the header sent twice with different values
    event = post_jobs_event(VALID, headers={"Idempotency-Key": "k-2"})
    event["multiValueHeaders"]["Idempotency-Key"] = ["k-1", "k-2"]

    # WHEN it is submitted
    response = handlers.call_api(event)

    # THEN the request is ambiguous: 400
    assert_json_error(response, 400, "ambiguous_idempotency_key")
    assert_nothing_written(infra)
