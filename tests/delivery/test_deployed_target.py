"""DeployedTarget against a stand-in stage: outputs, signed and throttled calls, waits."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from localstage.deployed import DeployedTarget, StackNotFoundError
from localstage.target import WaitTimeoutError

from tests.delivery.conftest import REGION, STACK, STAGE, SigV4Checker


# discovery --------------------------------------------------------------------------
def test_outputs_are_found_by_stage_name(target: DeployedTarget, deployed: dict[str, str]) -> None:
    # WHEN the e2e tests ask for outputs by pattern name
    found = {name: target.output(STACK, name) for name in deployed}

    # THEN they are the outputs of `pr-42-DecoupledInvocation`, not another stage's
    assert found == deployed
    assert "/other/" not in found["ApiUrl"]
    assert found["TaskQueueUrl"].rsplit("/", 1)[-1].startswith(f"{STAGE}-{STACK}-")


def test_a_stage_that_is_not_deployed_is_a_clear_error(
    moto_endpoint: str, aws_session: boto3.Session, deployed: dict[str, str]
) -> None:
    # GIVEN a target for a stage that has no stacks
    target = DeployedTarget("pr-404", session=aws_session, endpoint_url=moto_endpoint)

    # WHEN an output is asked for THEN the error names the stack, region and the fix
    with pytest.raises(StackNotFoundError) as raised:
        target.output(STACK, "ApiUrl")
    assert str(raised.value) == (
        f"stack pr-404-{STACK} does not exist in {REGION}: is stage pr-404 deployed there "
        "(make deploy STAGE=pr-404)?"
    )


def test_a_missing_output_lists_the_outputs_there_are(target: DeployedTarget) -> None:
    with pytest.raises(LookupError, match="has no output 'Nope' \\(it has ApiUrl, InputBucket"):
        target.output(STACK, "Nope")


def test_physical_ids_come_from_the_stack_resources(
    target: DeployedTarget, deployed: dict[str, str]
) -> None:
    # WHEN a resource is looked up by its logical id prefix
    bucket = target.physical_id(STACK, "InputBucket")

    # THEN it is the stack's resource (the bucket its output names), and an ambiguous or
    # unknown prefix is an error
    assert bucket == deployed["InputBucketName"]
    with pytest.raises(LookupError, match="found 0"):
        target.physical_id(STACK, "Missing")


# signing ----------------------------------------------------------------------------
def test_api_calls_are_sigv4_signed_for_execute_api_in_the_stage_region(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    # GIVEN the stage's API (a server that recomputes SigV4 signatures)
    api = target.output(STACK, "ApiUrl")
    sigv4_checker.exchanges.clear()

    # WHEN the target POSTs a JSON body with a header and GETs a path with a query
    posted = target.call_api(
        api, "POST", "jobs", json_body={"task": "t"}, headers={"Idempotency-Key": "k-1"}
    )
    got = target.call_api(api, "GET", "jobs/abc?limit=3&cursor=x")

    # THEN both carry a valid signature by the session's credentials, for execute-api in
    # the session's region, and the body went as JSON
    assert (posted.status, posted.body) == (200, {"valid": True, "message": "ok"})
    assert (got.status, got.body["valid"]) == (200, True)
    post, get = sigv4_checker.exchanges
    assert (post.method, post.path, get.path) == (
        "POST",
        "/api/jobs",
        "/api/jobs/abc?limit=3&cursor=x",
    )
    assert json.loads(post.body) == {"task": "t"}
    assert post.headers["content-type"] == "application/json"
    assert f"/{REGION}/execute-api/aws4_request" in post.headers["authorization"]


def test_an_unsigned_call_carries_no_signature(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    sigv4_checker.exchanges.clear()
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", "jobs/x", signed=False)
    assert response.status == 403
    assert response.body["message"] == "Missing Authentication Token"
    assert not sigv4_checker.exchanges[0].signed


def test_a_signature_by_other_credentials_is_refused(
    moto_endpoint: str, deployed: dict[str, str], sigv4_checker: SigV4Checker
) -> None:
    # GIVEN a target whose credentials are not the ones the API expects
    session = boto3.Session(
        aws_access_key_id="AKIDDELIVERYTESTS", aws_secret_access_key="wrong", region_name=REGION
    )
    target = DeployedTarget(STAGE, session=session, endpoint_url=moto_endpoint)

    # WHEN it calls the API THEN the recomputed signature does not match
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", "jobs/x")
    assert response.status == 403
    assert "does not match" in response.body["message"]


def test_a_throttled_call_is_retried_until_it_goes_through(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    # GIVEN an API that throttles the next three requests (as API Gateway answers a burst
    # past a stage's or method's limit: 429, before the integration runs)
    sigv4_checker.exchanges.clear()
    sigv4_checker.throttle_next = 3

    # WHEN the target POSTs once
    response = target.call_api(target.output(STACK, "ApiUrl"), "POST", "jobs", json_body={})

    # THEN it waited and sent the same request again until it went through, each attempt
    # signed anew
    assert (response.status, response.body["valid"]) == (200, True)
    assert [exchange.method for exchange in sigv4_checker.exchanges] == ["POST"] * 4
    assert all(exchange.valid for exchange in sigv4_checker.exchanges)


def test_throttling_that_does_not_end_is_answered_after_bounded_retries(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    # GIVEN an API that throttles every request, and a target allowed two retries
    sigv4_checker.exchanges.clear()
    sigv4_checker.throttle_next = 100
    target.throttle_retries = 2

    # WHEN the target calls it THEN it gives up after three attempts and shows the 429
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", "jobs/x")
    sigv4_checker.throttle_next = 0
    assert response.status == 429
    assert len(sigv4_checker.exchanges) == 3


# waiting ----------------------------------------------------------------------------
def test_a_wait_returns_as_soon_as_its_condition_holds(target: DeployedTarget) -> None:
    calls: list[int] = []

    def third_time() -> str | None:
        calls.append(1)
        return "done" if len(calls) == 3 else None

    assert target.wait_for("the third call", third_time, timeout=5, interval=0.01) == "done"
    assert len(calls) == 3


def test_a_wait_is_bounded_by_its_scaled_timeout(
    moto_endpoint: str, aws_session: boto3.Session
) -> None:
    # GIVEN a target that allows three times the local timeouts, checking every 0.05 s
    target = DeployedTarget(
        STAGE, session=aws_session, endpoint_url=moto_endpoint, wait_scale=3, min_interval=0.05
    )
    calls: list[float] = []

    # WHEN a condition never holds
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=r"timed out after 0\.3 s waiting for nothing"):
        target.wait_for("nothing", lambda: calls.append(time.monotonic()), timeout=0.1, interval=0)
    elapsed = time.monotonic() - started

    # THEN it gave up after 3 x 0.1 s, having checked at most every 0.05 s
    assert 0.3 <= elapsed < 2.0
    assert 2 <= len(calls) <= 8
