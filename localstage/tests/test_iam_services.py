"""Conformance: what an AWS service may do for the stage (trust and resource policies).

When Lambda or Scheduler assume a role, the role's trust policy decides; when S3,
EventBridge or Scheduler invoke a function, or EventBridge sends to a queue, the
target's resource policy decides, with ``aws:SourceArn`` and ``aws:SourceAccount`` in
the request context. Each test checks that the right values are allowed and a wrong
one is denied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cfn_resources import function_resource, role_resource
from tiny import booted

from localstage.cloud import ACCOUNT_ID
from localstage.deploy import DeployError
from localstage.service_access import service_may_invoke, service_may_send
from localstage.sources.scheduler import SchedulerSource
from localstage.stage import LocalStage
from localstage.target import LocalTarget, eventbridge_queue_policy

FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:fn"
BUCKET = "arn:aws:s3:::uploads"
RULE = f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/bus/rule"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:queue"
PERMISSIONS = "https://docs.aws.amazon.com/lambda/latest/dg/permissions-function-services.html"


@dataclass
class _Resource:
    properties: dict[str, Any]
    physical_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Deployment:
    by_type: dict[str, list[_Resource]]

    def resources(self, resource_type: str) -> list[_Resource]:
        return self.by_type.get(resource_type, [])


@dataclass
class _Stage:
    deployment: _Deployment


def _with_permission(**props: Any) -> Any:
    permission = {"Action": "lambda:InvokeFunction", "FunctionName": FUNCTION, **props}
    return _Stage(_Deployment({"AWS::Lambda::Permission": [_Resource(permission)]}))


def test_lambda_permission_names_the_service() -> None:
    (
        """A function's resource policy statement applies only to the principal it names:
    ``s3.amazonaws.com`` may invoke, ``events.amazonaws.com`` may not ("""
        + PERMISSIONS
        + ")."
    )
    stage: Any = _with_permission(Principal="s3.amazonaws.com")
    assert service_may_invoke(stage, FUNCTION, "fn", "s3.amazonaws.com", BUCKET)
    assert not service_may_invoke(stage, FUNCTION, "fn", "events.amazonaws.com", RULE)


def test_lambda_permission_source_arn() -> None:
    (
        """``SourceArn`` of a permission is an ``ArnLike`` condition on ``aws:SourceArn``: only
    that bucket (or rule) may invoke ("""
        + PERMISSIONS
        + ")."
    )
    stage: Any = _with_permission(Principal="s3.amazonaws.com", SourceArn=BUCKET)
    assert service_may_invoke(stage, FUNCTION, "fn", "s3.amazonaws.com", BUCKET)
    assert not service_may_invoke(stage, FUNCTION, "fn", "s3.amazonaws.com", BUCKET + "-other")


def test_lambda_permission_source_account() -> None:
    (
        """``SourceAccount`` is a ``StringEquals`` condition on ``aws:SourceAccount``: a
    bucket of another account may not invoke ("""
        + PERMISSIONS
        + ")."
    )
    stage: Any = _with_permission(Principal="s3.amazonaws.com", SourceAccount="111122223333")
    assert service_may_invoke(stage, FUNCTION, "fn", "s3.amazonaws.com", BUCKET, "111122223333")
    assert not service_may_invoke(stage, FUNCTION, "fn", "s3.amazonaws.com", BUCKET)


def test_queue_policy_for_eventbridge() -> None:
    """EventBridge needs the queue policy to allow ``events.amazonaws.com``
    ``sqs:SendMessage``, here for one rule (``aws:SourceArn``); without a policy it is
    denied (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions)."""
    # GIVEN the queue policy CDK writes (and the target writes for its bus observers)
    stage: Any = _QueueStage(eventbridge_queue_policy(QUEUE, RULE))
    assert service_may_send(stage, "url", QUEUE, "events.amazonaws.com", RULE)
    assert not service_may_send(stage, "url", QUEUE, "events.amazonaws.com", RULE + "-other")
    bare: Any = _QueueStage(None)
    assert not service_may_send(bare, "url", QUEUE, "events.amazonaws.com", RULE)


class _QueueStage:
    """A stage whose moto answers GetQueueAttributes with ``policy``."""

    def __init__(self, policy: dict[str, Any] | None) -> None:
        attributes = {"Policy": json.dumps(policy)} if policy else {}
        client = SimpleNamespace(get_queue_attributes=lambda **_: {"Attributes": attributes})
        self.cloud = SimpleNamespace(client=lambda _service: client)


def _boot(root: Path, role: dict[str, Any]) -> None:
    template = {
        "Resources": {
            "Role": role,
            "Fn": function_resource("app.echo", "Role", timeout=3, environment={}),
        }
    }
    with booted(root, template, "def echo(e, c):\n    return e\n"):
        pass


@pytest.mark.parametrize(
    "role",
    [
        role_resource("scheduler.amazonaws.com"),
        role_resource(condition={"StringEquals": {"aws:SourceAccount": "111122223333"}}),
    ],
    ids=["trusts-another-service", "trusts-another-account"],
)
def test_a_function_whose_role_lambda_may_not_assume_does_not_deploy(
    tmp_path: Path, role: dict[str, Any]
) -> None:
    """Lambda assumes the execution role as ``lambda.amazonaws.com``; a role whose trust
    policy does not allow it (another service, or an ``aws:SourceAccount`` condition on
    another account) fails CreateFunction: "The role defined for the function cannot be
    assumed by Lambda" (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html)."""
    with pytest.raises(DeployError, match="cannot be assumed by Lambda"):
        _boot(tmp_path, role)


def test_a_function_whose_role_trusts_lambda_in_this_account_deploys(tmp_path: Path) -> None:
    """The right service and account: the function deploys and runs."""
    _boot(tmp_path, role_resource(condition={"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}))


def _schedule(stage: LocalStage, name: str, role: str) -> str:
    resources = stage.deployment.stacks["test-Tiny"].resources
    at = datetime.now(UTC) + timedelta(seconds=30)
    response = stage.cloud.client("scheduler").create_schedule(
        Name=name,
        GroupName=LocalTarget(stage).output("test-Tiny", "GroupName"),
        ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            # Echo leaves no trace in the queues other tests of this stage read.
            "Arn": stage.function("Echo").spec.arn,
            "RoleArn": resources[role].attributes["Arn"],
            "Input": json.dumps({"schedule": "<aws.scheduler.schedule-arn>"}),
        },
        ActionAfterCompletion="DELETE",
    )
    return str(response["ScheduleArn"])


def _fired(stage: LocalStage, arn: str) -> dict[str, Any]:
    source = next(s for s in stage.sources if isinstance(s, SchedulerSource))
    fired: list[dict[str, Any]] = []

    def done() -> bool:
        fired[:] = [f for f in source.fired if f["arn"] == arn]
        return bool(fired)

    LocalTarget(stage).wait_for(f"{arn} to fire", done, timeout=20, interval=0.1)
    return fired[0]


def test_scheduler_assumes_a_role_whose_trust_names_its_account_and_group(
    async_stage: LocalStage,
) -> None:
    """Scheduler assumes the schedule's role as ``scheduler.amazonaws.com`` with
    ``aws:SourceAccount`` (the account) and ``aws:SourceArn`` (the schedule group): a
    trust policy conditioned on the right values lets the schedule invoke its target
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role)."""
    arn = _schedule(async_stage, "trusted", "GroupSchedulerRole")
    assert _fired(async_stage, arn)["status"] == "invoked"


def test_scheduler_cannot_assume_a_role_trusting_another_account(async_stage: LocalStage) -> None:
    """A trust policy whose ``aws:SourceAccount`` is another account does not let
    Scheduler assume the role: the invocation fails (AccessDenied)
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role)."""
    arn = _schedule(async_stage, "untrusted", "OtherAccountSchedulerRole")
    outcome = _fired(async_stage, arn)
    assert outcome == {**outcome, "status": "failed", "error": "AccessDeniedException"}
