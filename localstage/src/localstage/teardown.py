"""Delete a deployed ephemeral stage by its stacks' names and tags, without the app.

``cdk destroy`` synthesizes the app before it can select a stack. A pull request whose
last commit does not build cannot destroy its stage that way, and a stack an earlier
commit deployed and a later one removed is never selected. This deletes every stack
named ``<stage>-*`` that carries the tags ``app=<app>`` and ``stage=<stage>`` (what
every stack of a stage carries), as ``cdk destroy`` does it: through the CDK bootstrap
deploy role, with CloudFormation acting as the bootstrap execution role. A stack with
termination protection (a persistent stage's) is never deleted, only reported.

Each stack is deleted and waited for; one that fails is tried once more after the
others are gone (a stack whose export another one imports cannot go first), and every
failure is reported, instead of stopping at the first as ``cdk destroy`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

#: ``cdk bootstrap``'s default qualifier (``--qualifier`` changes it).
DEFAULT_QUALIFIER = "hnb659fds"
#: How long one round of deletions may take before its stacks count as failed.
ROUND_TIMEOUT_SECONDS = 40 * 60


@dataclass
class Teardown:
    """What deleting a stage did."""

    deleted: list[str] = field(default_factory=list)
    #: Stack name to why it is still there (its status and reason).
    failed: dict[str, str] = field(default_factory=dict)
    #: Stacks with termination protection: left alone.
    protected: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether nothing of the stage is left."""
        return not self.failed and not self.protected


def stage_stacks(cloudformation: Any, *, stage: str, app: str) -> list[Mapping[str, Any]]:
    """Every live stack of the stage: named ``<stage>-*`` and tagged with app and stage."""
    found: list[Mapping[str, Any]] = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            tags = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
            if (
                stack["StackName"].startswith(f"{stage}-")
                and tags.get("stage") == stage
                and tags.get("app") == app
                and stack["StackStatus"] != "DELETE_COMPLETE"
            ):
                found.append(stack)
    return found


def destroy_stage(
    session: boto3.Session,
    *,
    stage: str,
    app: str,
    qualifier: str = DEFAULT_QUALIFIER,
    endpoint_url: str | None = None,
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Teardown:
    """Delete every stack of ``stage`` of ``app`` in the session's account and region."""
    sts = session.client("sts", endpoint_url=endpoint_url)
    identity = sts.get_caller_identity()
    account, partition = identity["Account"], identity["Arn"].split(":")[1]
    region = session.region_name
    role = f"arn:{partition}:iam::{account}:role/cdk-{qualifier}"
    credentials = sts.assume_role(
        RoleArn=f"{role}-deploy-role-{account}-{region}", RoleSessionName=f"{stage}-teardown"
    )["Credentials"]
    cloudformation = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    ).client("cloudformation", endpoint_url=endpoint_url)
    execution_role = f"{role}-cfn-exec-role-{account}-{region}"

    teardown = Teardown()
    pending: list[str] = []
    for stack in stage_stacks(cloudformation, stage=stage, app=app):
        if stack.get("EnableTerminationProtection"):
            teardown.protected.append(stack["StackName"])
        else:
            pending.append(stack["StackName"])
    for _ in range(2):
        if not pending:
            break
        for name in pending:
            cloudformation.delete_stack(StackName=name, RoleARN=execution_role)
        teardown.failed = _wait_for_deletion(cloudformation, pending, poll_seconds, sleep)
        teardown.deleted += [name for name in pending if name not in teardown.failed]
        pending = list(teardown.failed)
    return teardown


def _wait_for_deletion(
    cloudformation: Any, names: list[str], poll_seconds: float, sleep: Callable[[float], None]
) -> dict[str, str]:
    """Wait until each stack is deleted or failed; the failed ones, with why."""
    waiting, failed = set(names), {}
    deadline = time.monotonic() + ROUND_TIMEOUT_SECONDS
    while waiting:
        for name in sorted(waiting):
            status, reason = _status(cloudformation, name)
            if status in (None, "DELETE_COMPLETE"):
                waiting.discard(name)
            elif status == "DELETE_FAILED" or not status.endswith("_IN_PROGRESS"):
                waiting.discard(name)
                failed[name] = f"{status}: {reason}" if reason else status
        if waiting and time.monotonic() >= deadline:
            failed.update({name: "still deleting at the timeout" for name in waiting})
            break
        if waiting:
            sleep(poll_seconds)
    return failed


def _status(cloudformation: Any, name: str) -> tuple[str | None, str]:
    try:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None, ""
        raise
    return stack["StackStatus"], stack.get("StackStatusReason", "")
