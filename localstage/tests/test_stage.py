"""The engine runs functions as the template wires them, and fails the way AWS would."""

from __future__ import annotations

import copy
from pathlib import Path

import botocore.credentials
import pytest
from tiny import HANDLER, TEMPLATE, write_assembly

from localstage.deploy import DeployError
from localstage.stage import LocalStage
from localstage.target import LocalTarget, WaitTimeoutError


def test_a_call_the_role_does_not_allow_fails_with_access_denied(tiny_stage: LocalStage) -> None:
    # GIVEN a function whose role may only GetItem on its table
    writer = tiny_stage.function("Writer")

    # WHEN its code calls PutItem
    result = writer.invoke({"pk": "a"})

    # THEN the call is refused by IAM and the invocation fails
    assert result.error is not None
    assert "AccessDenied" in result.error["errorMessage"]
    assert "dynamodb:PutItem" in result.error["errorMessage"]


def test_a_call_the_role_allows_succeeds_with_the_lambda_context(tiny_stage: LocalStage) -> None:
    # GIVEN a function whose role may GetItem
    reader = tiny_stage.function("Reader")

    # WHEN it reads its table
    result = reader.invoke({"pk": "missing"})

    # THEN it ran under its own name with the table from its environment
    assert result.error is None
    assert result.payload == {"found": False, "function": reader.spec.name}


def test_a_missing_event_source_makes_the_wait_time_out_clearly(tiny_stage: LocalStage) -> None:
    # GIVEN a queue the template never connects to a function
    target = LocalTarget(tiny_stage)
    queue = target.output("test-Tiny", "QueueUrl")

    # WHEN a message is sent and a test waits for it to be consumed
    target.send_message(queue, "{}")

    # THEN the wait ends with a message that names what was awaited and the likely cause
    with pytest.raises(WaitTimeoutError, match=r"waiting for the queue to drain.*event source"):
        target.wait_for("the queue to drain", lambda: target.queue_depth(queue) == 0, timeout=1)


def test_a_function_sees_only_its_template_environment_and_the_runtime_variables(
    tiny_stage: LocalStage,
) -> None:
    # WHEN a function lists its environment
    result = tiny_stage.function("Counter").invoke({})

    # THEN it holds the template's variables and what Lambda sets, nothing of this process
    environment = set(result.payload["environment"])
    assert {"TABLE_NAME", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"} <= (
        environment
    )
    assert not {"PYTEST_CURRENT_TEST", "VIRTUAL_ENV", "HOME"} & environment


def test_layers_of_the_assembly_come_after_the_code_root(tiny_stage: LocalStage) -> None:
    # GIVEN a function with an external layer and a layer built from an assembly asset
    layered = tiny_stage.function("Layered")

    # WHEN it imports a module only the layer has
    result = layered.invoke({})

    # THEN the layer's python/ folder is on its path, after its own code (whose app.py
    # wins over the layer's), and the external layer is left to the virtualenv
    assert result.error is None, result.error
    assert result.payload["kit"] == "layer"
    assert result.payload["app"].startswith(str(layered.spec.code_dir))
    assert [path.name for path in layered.spec.layer_dirs] == ["python"]


def test_module_state_survives_while_the_environment_is_warm(tiny_stage: LocalStage) -> None:
    counter = tiny_stage.function("Counter")

    # WHEN the same function is invoked twice in a row
    first = counter.invoke({})
    second = counter.invoke({})

    # THEN the second invocation reused the warm module
    assert second.payload["count"] == first.payload["count"] + 1
    assert not second.cold_start


def test_a_timeout_kills_the_invocation_and_the_next_one_starts_cold(
    tiny_stage: LocalStage,
) -> None:
    sleeper = tiny_stage.function("Sleeper")

    # WHEN an invocation runs past the function's 1 s timeout
    timed_out = sleeper.invoke({})

    # THEN it fails as Lambda reports it, and the environment is replaced
    assert timed_out.error is not None
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out.error["errorMessage"]
    assert sleeper.invoke({}).cold_start


def test_a_result_that_is_not_json_fails_like_lambda(tiny_stage: LocalStage) -> None:
    # WHEN a handler returns something JSON cannot carry (a set)
    result = tiny_stage.function("Unserializable").invoke({})

    # THEN the invocation fails with Lambda's marshalling error
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.MarshalError"


def test_sqs_partial_batch_failures_retry_only_the_failed_message(tiny_stage: LocalStage) -> None:
    # GIVEN a queue consumed with ReportBatchItemFailures and a DLQ after 2 receives
    target = LocalTarget(tiny_stage)
    queue = target.output("test-Tiny", "WorkQueueUrl")
    dead_letters = target.output("test-Tiny", "DeadLetterQueueUrl")
    table = target.output("test-Tiny", "TableName")

    # WHEN one message of three fails every time
    for body in ("ok-1", "fail", "ok-2"):
        target.send_message(queue, body)

    # THEN the others are processed and deleted, and the failed one ends in the DLQ
    target.wait_for(
        "the failed message in the DLQ", lambda: target.queue_depth(dead_letters) == 1, timeout=20
    )
    target.wait_for("the queue to drain", lambda: target.queue_depth(queue) == 0, timeout=10)
    assert target.get_item(table, {"pk": "ok-1"}) == {"pk": "ok-1"}
    assert target.get_item(table, {"pk": "ok-2"}) == {"pk": "ok-2"}
    assert target.get_item(table, {"pk": "fail"}) is None


class WrongSecretTarget(LocalTarget):
    """Signs with a known access key but the wrong secret."""

    def caller_credentials(self) -> botocore.credentials.Credentials:
        right = super().caller_credentials()
        return botocore.credentials.Credentials(right.access_key, "not-the-secret")


def test_the_api_builds_a_proxy_event_for_a_signed_request(tiny_stage: LocalStage) -> None:
    target = LocalTarget(tiny_stage)
    api = target.output("test-Tiny", "ApiUrl")

    # WHEN a signed request reaches GET /items/{id}
    response = target.call_api(api, "GET", "items/42")

    # THEN the function got the path, its parameter and the caller, and answered
    assert response.status == 200
    assert response.headers["x-handled"] == "yes"
    assert response.body["path"] == "/items/42"
    assert response.body["parameters"] == {"id": "42"}
    assert response.body["caller"].endswith(":user/localstage-admin")


@pytest.mark.parametrize(
    ("method", "path", "target_class", "status", "message"),
    [
        ("GET", "items/42", WrongSecretTarget, 403, "The request signature we calculated"),
        ("GET", "nothing/here", LocalTarget, 403, "Missing Authentication Token"),
        # The template gives API Gateway no permission to invoke the function for POST.
        ("POST", "items/42", LocalTarget, 500, "Internal server error"),
    ],
)
def test_the_api_refuses_what_api_gateway_refuses(
    tiny_stage: LocalStage,
    method: str,
    path: str,
    target_class: type[LocalTarget],
    status: int,
    message: str,
) -> None:
    target = target_class(tiny_stage)

    # WHEN the request is made
    response = target.call_api(target.output("test-Tiny", "ApiUrl"), method, path)

    # THEN API Gateway answers it itself
    assert response.status == status
    assert response.body["message"].startswith(message)


def test_a_function_that_depends_on_an_unemulated_resource_stops_the_boot(
    tmp_path: Path,
) -> None:
    # GIVEN a function whose environment names an alarm (not emulated)
    resources = {
        key: value
        for key, value in TEMPLATE["Resources"].items()
        if key in {"Table", "Role", "RolePolicy"}
    }
    reader = copy.deepcopy(TEMPLATE["Resources"]["Reader"])
    reader["Properties"]["Environment"]["Variables"]["ALARM"] = {"Ref": "Alarm"}
    template = {
        "Resources": {
            **resources,
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
            "Reader": reader,
        }
    }
    assembly = write_assembly(tmp_path / "assembly-test", template, HANDLER)

    # WHEN the stage boots
    stage = LocalStage(stage_name="test", assembly_dir=assembly, workdir=tmp_path / "work")

    # THEN it refuses, naming the function and the resource
    with pytest.raises(DeployError, match=r"Reader refers to <unemulated AWS::CloudWatch::Alarm"):
        stage.start()
