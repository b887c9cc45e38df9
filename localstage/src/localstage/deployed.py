"""A deployed stage as a :class:`~localstage.target.Target`: the e2e suite against AWS.

``pytest tests/e2e --target aws --stage pr-42`` runs the same tests as on localstage,
against the stacks ``pr-42-<Pattern>`` that ``make deploy STAGE=pr-42`` created:

- stack outputs come from CloudFormation ``DescribeStacks`` (once per stack), physical
  ids from ``ListStackResources``;
- API calls are SigV4-signed for ``execute-api`` in the session's region with the
  caller's credentials (every method of every pattern API needs IAM authorization);
- uploads, messages and reads go to the stage's real buckets, queues and tables;
- waits are bounded in real time. The e2e timeouts are written for the local stage,
  whose clock runs 90 times faster than AWS's, so each timeout is multiplied by
  ``wait_scale``; a wait still returns as soon as its condition holds.

Nothing here reaches AWS before a target is built, and building one fails at once,
with one line, when there are no credentials or no region.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

import boto3
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from localstage.target import AwsTarget, only_one

#: The app's stage name rule (its ``patterns/stage_settings.py``), checked here without
#: importing the app: lowercase (S3, dashboards), at most 24 characters so that
#: ``<stage>-<Pattern>`` stack names and the names derived from them stay readable.
MAX_STAGE_NAME_LENGTH = 24
_STAGE_NAME = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
STAGE_NAME_RULE = (
    f"1-{MAX_STAGE_NAME_LENGTH} characters: lowercase letters, digits and hyphens, "
    "starting with a letter and not ending with a hyphen (e.g. dev, pr-42, prod)"
)

#: How much longer than on the local stage (clock x90) a wait may last on AWS: visibility
#: timeouts, Lambda's async retries and schedules take real minutes there.
DEFAULT_WAIT_SCALE = 10.0
#: The shortest pause between two checks of a condition on AWS (API calls cost money).
DEFAULT_MIN_INTERVAL = 1.0
#: Bounded network calls: no request may hang a test run.
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=65,
    retries={"total_max_attempts": 6, "mode": "standard"},
)
#: Stack states whose outputs and resources are there to test.
USABLE_STACK_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)


class TargetConfigurationError(RuntimeError):
    """The deployed target cannot be built (no credentials, no region, a bad stage name)."""


class StackNotFoundError(LookupError):
    """A stack of the stage does not exist (the stage is not deployed, or elsewhere)."""


class DeployedTarget(AwsTarget):
    """The stage ``stage_name`` deployed to the account and region of a boto3 session.

    Parameters
    ----------
    stage_name:
        The deployed stage, e.g. ``"pr-42"``; its stacks are ``<stage_name>-<Pattern>``.
    session:
        Where credentials and the region come from.
    endpoint_url:
        Send every AWS API request there instead (a stand-in for AWS in tests).
    wait_scale:
        Multiplies every ``wait_for`` timeout (see the module's docstring).
    min_interval:
        The shortest pause between two checks of a waited-for condition.

    Raises
    ------
    TargetConfigurationError
        When the stage name is unusable, or the session has no credentials or region.

    Usage (needs a running stage or AWS, so not a doctest)::

        target = DeployedTarget.from_environment("pr-42")
        target.output("DecoupledInvocation", "ApiUrl")
        # -> 'https://abc123.execute-api.eu-west-1.amazonaws.com/api/'
    """

    name = "aws"

    def __init__(
        self,
        stage_name: str,
        *,
        session: boto3.Session,
        endpoint_url: str | None = None,
        wait_scale: float = DEFAULT_WAIT_SCALE,
        min_interval: float = DEFAULT_MIN_INTERVAL,
    ) -> None:
        super().__init__()
        try:
            credentials = session.get_credentials()
        except BotoCoreError as error:
            raise TargetConfigurationError(f"AWS credentials for --target aws: {error}") from None
        if credentials is None:
            raise TargetConfigurationError(
                "no AWS credentials for --target aws: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY (in CI: aws-actions/configure-aws-credentials)"
            )
        if not session.region_name:
            raise TargetConfigurationError(
                "no AWS region for --target aws: set AWS_REGION (or AWS_DEFAULT_REGION) "
                "to the stage's region"
            )
        if len(stage_name) > MAX_STAGE_NAME_LENGTH or not _STAGE_NAME.match(stage_name):
            raise TargetConfigurationError(
                f"invalid stage name {stage_name!r}: use {STAGE_NAME_RULE}"
            )
        self.stage_name = stage_name
        if wait_scale <= 0:
            raise TargetConfigurationError(f"the wait scale must be positive, got {wait_scale:g}")
        self.stage_label = self.stage_name
        self.session = session
        self.region: str = session.region_name
        self.endpoint_url = endpoint_url
        self.wait_scale = wait_scale
        self.min_interval = min_interval
        self._credentials = credentials
        self._clients: dict[str, Any] = {}
        self._stacks: dict[str, Mapping[str, Any]] = {}
        # Tests call the target from several threads; boto3 clients are thread-safe
        # once created, creating them is not.
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls,
        stage_name: str,
        *,
        wait_scale: float = DEFAULT_WAIT_SCALE,
        min_interval: float = DEFAULT_MIN_INTERVAL,
    ) -> DeployedTarget:
        """The stage in the account and region of the standard AWS environment variables
        and config files (``AWS_PROFILE``, ``AWS_REGION``, ...).

        Raises
        ------
        TargetConfigurationError
            As the constructor, or when ``AWS_PROFILE`` names no profile.
        """
        try:
            # AWS_REGION as the AWS CLI and SDKs read it (this botocore reads only
            # AWS_DEFAULT_REGION and the profile's region by itself).
            session = boto3.Session(region_name=os.environ.get("AWS_REGION") or None)
        except BotoCoreError as error:  # e.g. AWS_PROFILE names no profile
            raise TargetConfigurationError(f"AWS configuration for --target aws: {error}") from None
        return cls(stage_name, session=session, wait_scale=wait_scale, min_interval=min_interval)

    # AwsTarget -------------------------------------------------------------------
    def client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=CLIENT_CONFIG,
                )
                self._clients[service] = client
            return client

    def caller_credentials(self) -> botocore.credentials.Credentials:
        return self._credentials

    @property
    def signing_region(self) -> str:
        return self.region

    def stack_name(self, stack: str) -> str:
        """The deployed name of one of the stage's stacks: ``<stage>-<stack>``."""
        return f"{self.stage_name}-{stack}"

    def output(self, stack: str, name: str) -> str:
        outputs = {
            str(output["OutputKey"]): str(output["OutputValue"])
            for output in self._describe(stack).get("Outputs", [])
        }
        if name not in outputs:
            raise LookupError(
                f"stack {self.stack_name(stack)} has no output {name!r} "
                f"(it has {', '.join(sorted(outputs)) or 'none'}): is the stage up to date?"
            )
        return outputs[name]

    def physical_id(self, stack: str, logical_id_prefix: str) -> str:
        full_name = self.stack_name(stack)
        self._describe(stack)  # a clear error when the stack does not exist
        paginator = self.client("cloudformation").get_paginator("list_stack_resources")
        found = [
            str(summary["PhysicalResourceId"])
            for page in paginator.paginate(StackName=full_name)
            for summary in page.get("StackResourceSummaries", [])
            if str(summary["LogicalResourceId"]).startswith(logical_id_prefix)
        ]
        return only_one(found, f"{full_name}/{logical_id_prefix}*")

    def wait_budget(self, timeout: float, interval: float) -> tuple[float, float]:
        return timeout * self.wait_scale, max(interval, self.min_interval)

    # helpers -----------------------------------------------------------------------
    def _describe(self, stack: str) -> Mapping[str, Any]:
        full_name = self.stack_name(stack)
        with self._lock:
            cached = self._stacks.get(full_name)
        if cached is not None:
            return cached
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=full_name)["Stacks"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ValidationError":
                raise StackNotFoundError(
                    f"stack {full_name} does not exist in {self.region}: is stage "
                    f"{self.stage_name} deployed there (make deploy STAGE={self.stage_name})?"
                ) from None
            raise
        description: Mapping[str, Any] = stacks[0]
        if description.get("StackStatus") not in USABLE_STACK_STATUSES:
            raise StackNotFoundError(
                f"stack {full_name} is {description.get('StackStatus')}, not deployed: "
                "wait for its deployment to finish, or redeploy it"
            )
        with self._lock:
            self._stacks[full_name] = description
        return description


#: Older than any e2e run (the pull request job's timeout is 90 minutes): what the sweep
#: at the start of a run removes was left by a run that was killed.
STALE_OBSERVER_SECONDS = 2 * 60 * 60


def main(argv: list[str] | None = None) -> int:
    """``python -m localstage.deployed sweep-observers --stage NAME [--older-than S]``
    and ``python -m localstage.deployed destroy-stage --stage NAME --app APP``.

    ``sweep-observers`` deletes the bus observers (rules and queues) e2e runs against the
    stage left behind; run it before destroying a stage the e2e suite ran against.
    ``destroy-stage`` deletes the stage's stacks by name and tags, without synthesizing
    the app (:mod:`localstage.teardown`); it exits 1 if any stack is left.
    """
    import argparse

    from localstage.teardown import DEFAULT_QUALIFIER, destroy_stage

    parser = argparse.ArgumentParser(prog="python -m localstage.deployed")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep-observers", help="delete a stage's e2e bus observers")
    sweep.add_argument("--stage", required=True)
    sweep.add_argument("--older-than", type=float, default=0.0, metavar="SECONDS")
    destroy = commands.add_parser("destroy-stage", help="delete a stage's stacks by tag")
    destroy.add_argument("--stage", required=True)
    destroy.add_argument("--app", required=True, help="the app tag (cdk.json app_name)")
    destroy.add_argument("--qualifier", default=DEFAULT_QUALIFIER)
    destroy.add_argument(
        "--names",
        default="",
        help="comma-separated stack names without the stage: untagged stacks of these "
        "names (deployed before the app tagged its stacks) go too",
    )
    arguments = parser.parse_args(argv)
    try:
        target = DeployedTarget.from_environment(arguments.stage)
    except TargetConfigurationError as error:
        parser.exit(2, f"error: {error}\n")
    if arguments.command == "destroy-stage":
        teardown = destroy_stage(
            target.session,
            stage=arguments.stage,
            app=arguments.app,
            names=[name for name in arguments.names.split(",") if name],
            qualifier=arguments.qualifier,
        )
        for name in teardown.deleted:
            print(f"deleted {name}")
        for name in teardown.protected:
            print(f"left {name}: termination protection is on (a persistent stage?)")
        for name, why in teardown.failed.items():
            print(f"FAILED {name}: {why}")
        return 0 if teardown.complete else 1
    deleted = target.sweep_observers(older_than=arguments.older_than)
    print(f"deleted {len(deleted)} observer resource(s) of stage {arguments.stage}")
    for name in deleted:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
