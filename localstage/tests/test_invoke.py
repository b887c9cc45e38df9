"""Lambda Invoke from handler code: sync, async with retries and destinations, recursion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from stage_queues import collect, queue_url

from localstage.invoke import RECURSION_LIMIT, lambda_service
from localstage.stage import LocalStage


def test_a_synchronous_invoke_from_handler_code_runs_the_function(async_stage: LocalStage) -> None:
    # GIVEN a function allowed to invoke Echo
    caller = async_stage.function("Caller")
    echo = async_stage.function("Echo")

    # WHEN its code invokes Echo with RequestResponse
    result = caller.invoke({"target": echo.spec.name, "payload": {"n": 1}})

    # THEN Echo ran (not moto's echo) and its payload came back
    assert result.error is None, result.error
    assert result.payload["status"] == 200
    assert result.payload["function_error"] is None
    assert result.payload["payload"]["echo"] == {"n": 1}


def test_a_function_error_comes_back_as_function_error_unhandled(async_stage: LocalStage) -> None:
    # WHEN the caller invokes a function that raises
    result = async_stage.function("Caller").invoke(
        {"target": async_stage.function("Failing").spec.arn, "payload": {}}
    )

    # THEN the invoke succeeds with FunctionError and the error payload, as on AWS
    assert result.payload["status"] == 200
    assert result.payload["function_error"] == "Unhandled"
    assert result.payload["payload"]["errorType"] == "ValueError"


def test_dry_run_and_event_answer_204_and_202(async_stage: LocalStage) -> None:
    caller = async_stage.function("Caller")
    echo = async_stage.function("Echo").spec.name

    # WHEN the caller asks for a dry run, then an asynchronous invocation
    dry = caller.invoke({"target": echo, "type": "DryRun"})
    queued = caller.invoke({"target": echo, "type": "Event"})

    # THEN the status codes are AWS's
    assert dry.payload["status"] == 204
    assert queued.payload["status"] == 202


def test_an_invoke_the_role_does_not_allow_is_denied(async_stage: LocalStage) -> None:
    # GIVEN a function whose role has no lambda:InvokeFunction, and one limited to others
    unauthorized = async_stage.function("Unauthorized")
    caller = async_stage.function("Caller")

    # WHEN they invoke functions they are not granted
    denied = unauthorized.invoke({"target": async_stage.function("Echo").spec.name})
    other = caller.invoke({"target": async_stage.function("Recorder").spec.name})

    # THEN IAM refuses both with AccessDeniedException naming the action
    assert denied.payload["error"] == "AccessDeniedException"
    assert "lambda:InvokeFunction" in denied.payload["message"]
    assert other.payload["error"] == "AccessDeniedException"


def test_an_unknown_function_is_resource_not_found(async_stage: LocalStage) -> None:
    result = async_stage.function("Caller").invoke({"target": "no-such-function"})

    assert result.payload["error"] == "ResourceNotFoundException"


def test_async_failures_are_retried_twice_then_reach_the_failure_destination_and_dlq(
    async_stage: LocalStage,
) -> None:
    # GIVEN a function that always fails, with 2 retries, an on-failure queue and a DLQ
    failing = async_stage.function("Failing")
    service = lambda_service(async_stage)

    # WHEN it is invoked asynchronously
    request_id = service.invoke_async(failing, {"order": 7})

    # THEN after 3 attempts (1 and 2 minutes of stage time apart) the destination gets
    # AWS's record and the DLQ the event, with the same request id throughout
    [message] = collect(async_stage, queue_url(async_stage, "Failures"), 1)
    record = json.loads(message["Body"])
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{failing.spec.arn}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "always fails"
    [dead] = collect(async_stage, queue_url(async_stage, "DeadLetters"), 1)
    assert json.loads(dead["Body"]) == {"order": 7}
    assert dead["MessageAttributes"]["RequestID"]["StringValue"] == request_id
    assert dead["MessageAttributes"]["ErrorMessage"]["StringValue"] == "always fails"
    assert service.events[request_id].attempts == 3


def test_an_async_success_reaches_the_success_destination(async_stage: LocalStage) -> None:
    # GIVEN a function with an on-success queue
    succeeding = async_stage.function("Succeeding")

    # WHEN it is invoked asynchronously
    request_id = lambda_service(async_stage).invoke_async(succeeding, {"ok": True})

    # THEN the record says Success and carries the function's answer
    [message] = collect(async_stage, queue_url(async_stage, "Successes"), 1)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"echo": {"ok": True}, "request_id": request_id}


def test_an_event_older_than_its_maximum_age_is_given_up_on(async_stage: LocalStage) -> None:
    # GIVEN a failing function whose events may be at most 170 s old (retries 1 min apart)
    aging = async_stage.function("Aging")

    # WHEN it is invoked asynchronously, each attempt failing after 120 s (2 s real)
    request_id = lambda_service(async_stage).invoke_async(aging, {"late": True, "seconds": 2})

    # THEN the retry finds the event too old: it goes to the destination after 1 attempt
    [message] = collect(async_stage, queue_url(async_stage, "Expired"), 1)
    record = json.loads(message["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"]["errorType"] == "ValueError"


@pytest.mark.parametrize(
    ("function", "stop", "expected_hops"),
    [("Chain", 100, RECURSION_LIMIT), ("AllowedChain", RECURSION_LIMIT + 4, RECURSION_LIMIT + 4)],
)
def test_a_self_invoking_chain_stops_after_16_invocations_unless_allowed(
    async_stage: LocalStage, function: str, stop: int, expected_hops: int
) -> None:
    # GIVEN a function that records each hop and invokes itself asynchronously
    runtime = async_stage.function(function)
    records = queue_url(async_stage, "Records")

    # WHEN a chain starts
    lambda_service(async_stage).invoke_async(runtime, {"hop": 1, "stop": stop})

    # THEN Terminate stops the 17th invocation; Allow lets the chain run to its own end
    hops = [json.loads(m["Body"])["hop"] for m in collect(async_stage, records, expected_hops)]
    assert sorted(hops) == list(range(1, expected_hops + 1))
    if function == "Chain":
        [dead] = collect(async_stage, queue_url(async_stage, "ChainDeadLetters"), 1)
        assert json.loads(dead["Body"])["hop"] == RECURSION_LIMIT + 1
    assert not _drain(async_stage, records)


def _drain(stage: LocalStage, queue_url: str) -> list[Any]:
    """Messages that arrive within a short while (nothing should)."""
    import time

    time.sleep(1.0)
    sqs = stage.cloud.client("sqs")
    return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
