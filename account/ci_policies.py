"""What each CI deploy role may do beyond deploying: the e2e tests' calls on its stages.

Every resource a statement names is limited to the role's stages (``pr-*`` for pull
requests, ``staging`` for staging): where the service authorizes on tags (Lambda
functions and event source mappings, SQS queues) by the ``app`` and ``stage`` tags every
stage resource carries, elsewhere by name: stacks ``<stage>-<Pattern>``, tables, buckets
and the event bus, whose names start with the stack's.

CloudFormation names an unnamed resource ``<stack>-<LogicalId>-<RANDOM>`` and, where the
service limits the length (S3 buckets 63 lowercase characters, Lambda functions 64, SQS
queues 80), shortens the stack name and the logical id to fit; AWS does not document
how much of each it keeps, only that the name starts with the stack name's start. So
bucket patterns rely on the stage prefix alone (``pr-*``, ``staging-*``), table patterns
name the pattern too (DynamoDB allows 255 characters: nothing is shortened), and
functions and queues are scoped by tag, not name. tests/infra/ci_access/test_ci_access.py builds
the generated names of every unnamed bucket and table for the longest stage name and
checks each pattern matches them however the name is shortened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

#: Queues and rules the e2e tests create to observe an event bus (``subscribe_to_bus``)
#: are named ``bus-observer-<stage>-<UTC time %Y%m%dT%H%M%S>-<8 hex digits>``.
OBSERVER_PREFIX = "bus-observer-"
#: What follows the stage in an observer's name, as an IAM pattern: with it ``pr-*``
#: does not reach the observers of a stage named ``pr`` (``bus-observer-pr-<time>-...``).
OBSERVER_SUFFIX = "-????????T??????-????????"
#: The API Gateway stage every pattern's REST API deploys (``ServiceApi``).
API_STAGE = "api"


@dataclass(frozen=True)
class Arn:
    """An ARN template with ``{partition}``, ``{region}`` and ``{account}`` placeholders."""

    template: str

    @property
    def value(self) -> str:
        """The ARN with CloudFormation pseudo parameters."""
        return self.template.format(
            partition=cdk.Aws.PARTITION, region=cdk.Aws.REGION, account=cdk.Aws.ACCOUNT_ID
        )

    @property
    def nag_form(self) -> str:
        """How cdk-nag prints the ARN in a finding id."""
        return self.template.format(
            partition="<AWS::Partition>", region="<AWS::Region>", account="<AWS::AccountId>"
        )


def arn(service: str, resource: str) -> Arn:
    """The ARN of ``resource`` of ``service`` in this stack's account and region."""
    return Arn(f"arn:{{partition}}:{service}:{{region}}:{{account}}:{resource}")


@dataclass(frozen=True)
class Statement:
    """One policy statement, with why its wildcard resources are acceptable."""

    sid: str
    actions: list[str]
    resources: list[Arn]
    reason: str
    conditions: Mapping[str, Any] | None = None

    @property
    def statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=self.sid,
            actions=self.actions,
            resources=[resource.value for resource in self.resources],
            conditions=dict(self.conditions) if self.conditions else None,
        )

    @property
    def wildcard_resources(self) -> list[str]:
        return [resource.nag_form for resource in self.resources if "*" in resource.template]


def e2e_statements(
    *, app_name: str, stage_pattern: str, stack_names: Sequence[str]
) -> list[Statement]:
    """Each statement the e2e tests need against the stages ``stage_pattern`` matches.

    Parameters
    ----------
    app_name:
        The ``app`` tag of every stage resource.
    stage_pattern:
        The role's stages as an IAM pattern: ``pr-*`` or ``staging``.
    stack_names:
        Stack names without the stage prefix (``Alerts``, each pattern's name).
    """
    stage = stage_pattern
    tags = {
        "StringEquals": {"aws:ResourceTag/app": app_name},
        "StringLike": {"aws:ResourceTag/stage": stage},
    }
    # Named bus-observer-<stage>-<time>-<random> (localstage.target): a role reaches the
    # observers of its own stages only, not those of a stage whose name starts alike.
    observer = f"{OBSERVER_PREFIX}{stage}{OBSERVER_SUFFIX}"
    observer_queues = arn("sqs", observer)
    observer_rules = arn("events", f"rule/{stage}-*/{observer}")
    return [
        Statement(
            "FindStageStacks",
            [
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackResources",
                "cloudformation:ListStackResources",
            ],
            [arn("cloudformation", f"stack/{stage}-{name}/*") for name in stack_names],
            f"Stacks of this app in stages {stage} only (<stage>-<Pattern>); a stack ARN "
            "ends with a random id.",
        ),
        Statement(
            "CallStageApis",
            ["execute-api:Invoke"],
            [arn("execute-api", f"*/{API_STAGE}/*")],
            "REST API ids are random and execute-api cannot be scoped by tag; limited to "
            "this account, region and the API Gateway stage every pattern API deploys.",
        ),
        Statement(
            "UseStageQueues",
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            [arn("sqs", "*")],
            "Queue names are generated and CloudFormation may shorten them (80 characters) "
            "past the stage name; limited to this account, region and queues tagged with "
            f"this app and stage {stage}.",
            tags,
        ),
        Statement(
            "ObserveEventBuses",
            [
                "events:DeleteRule",
                "events:PutRule",
                "events:RemoveTargets",
                "sqs:CreateQueue",
                "sqs:DeleteMessage",
                "sqs:DeleteQueue",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
                "sqs:SetQueueAttributes",
            ],
            [observer_queues, observer_rules],
            "Only the temporary queues and rules the e2e tests create for stages "
            f"{stage} (bus-observer-<stage>-<time>-<random>), and rules only on those "
            "stages' buses (<stage>-...).",
        ),
        Statement(
            "TargetObserverQueues",
            ["events:PutTargets"],
            [observer_rules],
            f"Observer rules on the buses of stages {stage} only, and their targets only "
            "the observer queues of those stages (events:TargetArn).",
            {
                # Every target of the request must be such a queue, and there must be one:
                # ForAllValues alone also holds for a request that names none.
                "ForAllValues:ArnLike": {"events:TargetArn": observer_queues.value},
                "Null": {"events:TargetArn": "false"},
            },
        ),
        Statement(
            "ReadStageTables",
            ["dynamodb:GetItem", "dynamodb:Scan"],
            [arn("dynamodb", f"table/{stage}-{name}-*") for name in stack_names],
            "Tables of this app in its stages only: CloudFormation names them "
            "<stack>-<LogicalId>-<random> (never shortened: up to 255 characters) and the "
            "stack is <stage>-<Pattern>; read-only.",
        ),
        Statement(
            "UseStageBuckets",
            # DeleteObject: the e2e suite deletes an input mid-run to see the run fail.
            ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"],
            [Arn(f"arn:{{partition}}:s3:::{stage}-*{objects}") for objects in ("", "/*")],
            "Bucket names are generated in lower case and shortened to 63 characters, which "
            f"may cut the pattern's name: limited to names starting with stage {stage}, "
            "owned by this account (s3:ResourceAccount).",
            {"StringEquals": {"s3:ResourceAccount": cdk.Aws.ACCOUNT_ID}},
        ),
        Statement(
            "UseStageFunctions",
            ["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"],
            [arn("lambda", "function:*")],
            "Function names are generated and CloudFormation may shorten them (64 characters) "
            "past the stage name; limited to this account, region and functions tagged with "
            f"this app and stage {stage}.",
            tags,
        ),
        Statement(
            "ReadQueueConsumers",
            ["lambda:GetEventSourceMapping"],
            [arn("lambda", "event-source-mapping:*")],
            "Event source mappings are named by a random UUID; read-only, limited to this "
            f"account, region and mappings tagged with this app and stage {stage} (the "
            "action authorizes on aws:ResourceTag, as UpdateEventSourceMapping does).",
            tags,
        ),
        Statement(
            "PauseQueueConsumers",
            ["lambda:UpdateEventSourceMapping"],
            [arn("lambda", "event-source-mapping:*")],
            "Event source mappings are named by a random UUID; limited to this account, "
            f"region and mappings tagged with this app and stage {stage}.",
            tags,
        ),
        Statement(
            "ListWithoutResources",
            [
                "events:ListEventBuses",
                "events:ListRules",
                "lambda:ListEventSourceMappings",
                "scheduler:ListSchedules",
                "sqs:ListQueues",
            ],
            [Arn("*")],
            "List actions that reveal names only: the e2e tests list a stage's schedules and "
            "queue consumers, and sweep the bus observers a killed run left "
            "(localstage.deployed sweep-observers); listing is not scoped to resources.",
        ),
    ]
