"""Delete a deployed ephemeral stage by its stacks' names and tags, without the app.

``cdk destroy`` synthesizes the app before it can select a stack. A pull request whose
last commit does not build cannot destroy its stage that way, and a stack an earlier
commit deployed and a later one removed is never selected. This deletes every stack
named ``<stage>-*`` that carries the tags ``app=<app>`` and ``stage=<stage>`` (what
every stack of a stage carries), as ``cdk destroy`` does it: through the CDK bootstrap
deploy role, with CloudFormation acting as the bootstrap execution role. Untagged stacks
(deployed before the app tagged its stacks) go too when their names are
``<stage>-<name>`` for one of the app's stack names the caller gives. A stack with
termination protection (a persistent stage's) is never deleted, only reported.

Each stack is deleted and waited for; one that fails is tried once more after the
others are gone (a stack whose export another one imports cannot go first), and every
failure is reported, instead of stopping at the first as ``cdk destroy`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

#: ``cdk bootstrap``'s default qualifier (``--qualifier`` changes it).
DEFAULT_QUALIFIER = "hnb659fds"
#: How long the whole teardown may wait for deletions (under the CI job's 60 minutes and
#: the deploy role's one-hour session) before the stacks left count as failed.
TIMEOUT_SECONDS = 45 * 60


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


def stage_stacks(
    cloudformation: Any, *, stage: str, app: str, names: Sequence[str] = ()
) -> list[Mapping[str, Any]]:
    """Every live stack of the stage: named ``<stage>-*`` and tagged with app and stage,
    or, untagged (deployed before the app tagged its stacks), named ``<stage>-<name>``
    for one of ``names``."""
    legacy = {f"{stage}-{name}" for name in names}
    found: list[Mapping[str, Any]] = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            tags = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
            name = stack["StackName"]
            tagged = tags.get("stage") == stage and tags.get("app") == app
            untagged = "app" not in tags and "stage" not in tags and name in legacy
            if (
                name.startswith(f"{stage}-")
                and (tagged or untagged)
                and stack["StackStatus"] != "DELETE_COMPLETE"
            ):
                found.append(stack)
    return found


def destroy_stage(
    session: boto3.Session,
    *,
    stage: str,
    app: str,
    names: Sequence[str] = (),
    qualifier: str = DEFAULT_QUALIFIER,
    endpoint_url: str | None = None,
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Teardown:
    """Delete every stack of ``stage`` of ``app`` in the session's account and region
    (see :func:`stage_stacks` for ``names``)."""
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
    for stack in stage_stacks(cloudformation, stage=stage, app=app, names=names):
        if stack.get("EnableTerminationProtection"):
            teardown.protected.append(stack["StackName"])
        else:
            pending.append(stack["StackName"])
    deadline = time.monotonic() + TIMEOUT_SECONDS
    for _ in range(2):
        if not pending:
            break
        refused: dict[str, str] = {}
        for name in pending:
            try:
                cloudformation.delete_stack(StackName=name, RoleARN=execution_role)
            except ClientError as error:  # one stack's refusal stops none of the others
                refused[name] = str(error)
        started = [name for name in pending if name not in refused]
        failed = _wait_for_deletion(cloudformation, started, poll_seconds, sleep, deadline)
        teardown.failed = {**refused, **failed}
        teardown.deleted += [name for name in started if name not in failed]
        pending = list(teardown.failed)
    return teardown


def _wait_for_deletion(
    cloudformation: Any,
    names: list[str],
    poll_seconds: float,
    sleep: Callable[[float], None],
    deadline: float,
) -> dict[str, str]:
    """Wait until each stack is deleted or failed, or the deadline (``time.monotonic``);
    the failed ones, with why."""
    waiting, failed = set(names), {}
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
