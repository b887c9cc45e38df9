"""The CI-access stack: GitHub's OIDC provider and a role only one repository can assume.

GitHub Actions exchanges its OIDC token (``permissions: id-token: write``) for this
role's credentials, so no long-lived AWS key is stored in GitHub. The role may:

- assume the CDK bootstrap roles of its account and region (deploy, file publishing,
  image publishing, lookup), which is all ``cdk deploy|destroy`` needs: CloudFormation
  and the asset buckets are reached through them, never directly;
- read the outputs and resources of this app's stage stacks (``<stage>-<Pattern>``),
  which is how ``pytest tests/e2e --target aws`` finds a stage;
- do what the e2e tests do to a deployed stage (call its APIs with SigV4, send to and
  read its queues, read its tables, put, read and delete objects, invoke its functions, pause
  their queue mappings, observe its event bus with a temporary rule and queue, list
  schedules).

No statement has a wildcard action. Where AWS names a resource with a random id (REST
APIs, stack ids) or CloudFormation generates (and may truncate) a name, a statement's
resource is scoped by service, account and region, and by the ``app`` tag where the
service authorizes on tags (Lambda functions, SQS queues): deploy into an account that
holds this app only, as AWS recommends, and the role reaches nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from patterns.compliance import acknowledge, add_compliance_checks

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
#: ``cdk bootstrap``'s default qualifier (``--qualifier`` changes it; so must cdk.json).
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"
#: The roles ``cdk bootstrap`` creates, by the name part between qualifier and account.
BOOTSTRAP_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")
#: Queues and rules the e2e tests create to observe an event bus (``subscribe_to_bus``).
OBSERVER_PREFIX = "bus-observer-"
#: The API Gateway stage every pattern's REST API deploys (``ServiceApi``).
API_STAGE = "api"

_GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class InvalidCiAccessSettingsError(ValueError):
    """Raised when the CI-access app is missing a setting or has an unusable one."""


@dataclass(frozen=True, kw_only=True)
class CiAccessSettings:
    """What the CI-access stack is built from.

    Attributes
    ----------
    app_name:
        cdk.json ``app_name``: names the stack and is the tag value the role may touch.
    github_repo:
        ``owner/name`` of the only repository whose workflows may assume the role.
    stack_names:
        Stack names without the stage prefix (``Alerts``, each pattern's name): the
        role may read stacks named ``<any stage>-<one of these>``.
    existing_provider_arn:
        The account's GitHub OIDC provider when it already has one (an account has at
        most one per URL); None creates it.
    bootstrap_qualifier:
        The qualifier the account was bootstrapped with.

    Examples
    --------
    >>> CiAccessSettings(app_name="serverless-patterns", github_repo="octo/shop",
    ...                  stack_names=("Alerts", "DecoupledInvocation")).github_repo
    'octo/shop'
    """

    app_name: str
    github_repo: str
    stack_names: tuple[str, ...]
    existing_provider_arn: str | None = None
    bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER

    def __post_init__(self) -> None:
        if not _GITHUB_REPO.match(self.github_repo):
            raise InvalidCiAccessSettingsError(
                f"invalid GitHub repository {self.github_repo!r}: use owner/name "
                "(e.g. -c github_repo=octo-org/shop, or make ci-access GITHUB_REPO=octo-org/shop)"
            )
        if not self.stack_names:
            raise InvalidCiAccessSettingsError("no stack names: the app has no pattern stacks")

    @classmethod
    def from_context(
        cls, context: Mapping[str, Any], *, stack_names: Sequence[str]
    ) -> CiAccessSettings:
        """Build the settings from CDK context (cdk.json plus ``-c`` values).

        Raises
        ------
        InvalidCiAccessSettingsError
            When ``github_repo`` is missing or malformed.
        """
        repo = context.get("github_repo")
        if not repo:
            raise InvalidCiAccessSettingsError(
                "missing GitHub repository: pass -c github_repo=owner/name "
                "(make ci-access GITHUB_REPO=owner/name)"
            )
        return cls(
            app_name=str(context["app_name"]),
            github_repo=str(repo),
            stack_names=tuple(stack_names),
            existing_provider_arn=context.get("github_oidc_provider_arn") or None,
            bootstrap_qualifier=str(
                context.get("bootstrap_qualifier") or DEFAULT_BOOTSTRAP_QUALIFIER
            ),
        )


class CiAccessStack(cdk.Stack):
    """``<app_name>-CiAccess``: the GitHub OIDC provider and the CI deploy role.

    Attributes
    ----------
    provider_arn:
        The GitHub OIDC provider's ARN (created here, or the existing one).
    role:
        The role GitHub Actions assumes (output ``DeployRoleArn``).
    deploy_policy:
        Assume the CDK bootstrap roles: what ``cdk deploy|destroy`` needs.
    e2e_policy:
        Find a stage's stacks and do what the e2e tests do to it.
    """

    def __init__(self, scope: Construct, *, settings: CiAccessSettings) -> None:
        super().__init__(
            scope,
            "CiAccess",
            stack_name=f"{settings.app_name}-CiAccess",
            description=(
                f"GitHub OIDC access for {settings.github_repo}: deploy and test "
                f"{settings.app_name} stages"
            ),
        )
        cdk.Tags.of(self).add("app", settings.app_name)
        self.settings = settings

        if settings.existing_provider_arn:
            self.provider_arn = settings.existing_provider_arn
        else:
            provider = iam.OidcProviderNative(
                self,
                "GitHubOidcProvider",
                url=GITHUB_OIDC_URL,
                client_ids=[STS_AUDIENCE],
                # IAM verifies GitHub's certificate against its trusted CAs; a
                # thumbprint would only need updating when GitHub rotates it.
            )
            self.provider_arn = provider.oidc_provider_arn

        self.role = iam.Role(
            self,
            "DeployRole",
            description=f"Assumed by GitHub Actions of {settings.github_repo} only",
            max_session_duration=cdk.Duration.hours(1),
            assumed_by=iam.WebIdentityPrincipal(
                self.provider_arn,
                conditions={
                    "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE},
                    # Any branch, pull request or environment of this repository only.
                    "StringLike": {f"{GITHUB_OIDC_HOST}:sub": f"repo:{settings.github_repo}:*"},
                },
            ),
        )
        self.deploy_policy = iam.Policy(
            self,
            "DeployPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="AssumeCdkBootstrapRoles",
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=[self._bootstrap_role_arn(role) for role in BOOTSTRAP_ROLES],
                )
            ],
        )
        self.e2e_policy = iam.Policy(self, "EndToEndTestPolicy", roles=[self.role])
        policy_resource = self.e2e_policy.node.default_child
        assert policy_resource is not None
        for statement, reason in self._e2e_statements():
            self.e2e_policy.add_statements(statement.statement)
            for nag_form in statement.wildcard_resources:
                acknowledge(policy_resource, f"AwsSolutions-IAM5[Resource::{nag_form}]", reason)
        for name, value, description in (
            ("DeployRoleArn", self.role.role_arn, "Role for aws-actions/configure-aws-credentials"),
            ("OidcProviderArn", self.provider_arn, "GitHub's OIDC provider in this account"),
        ):
            output = cdk.CfnOutput(self, name, value=value, description=description)
            output.override_logical_id(name)

    def _bootstrap_role_arn(self, role: str) -> str:
        qualifier = self.settings.bootstrap_qualifier
        return (
            f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/"
            f"cdk-{qualifier}-{role}-{cdk.Aws.ACCOUNT_ID}-{cdk.Aws.REGION}"
        )

    def _e2e_statements(self) -> list[tuple[_Statement, str]]:
        """Each statement the e2e tests need, with why its resources hold a wildcard."""
        app_tag = {"StringEquals": {"aws:ResourceTag/app": self.settings.app_name}}
        s3_account = {"StringEquals": {"s3:ResourceAccount": cdk.Aws.ACCOUNT_ID}}
        return [
            (
                _Statement(
                    "FindStageStacks",
                    [
                        "cloudformation:DescribeStacks",
                        "cloudformation:DescribeStackResources",
                        "cloudformation:ListStackResources",
                    ],
                    [
                        _arn("cloudformation", f"stack/*-{name}/*")
                        for name in self.settings.stack_names
                    ],
                ),
                "Stacks of this app only, in any stage (<stage>-<Pattern>); a stack ARN ends "
                "with a random id.",
            ),
            (
                _Statement(
                    "CallStageApis",
                    ["execute-api:Invoke"],
                    [_arn("execute-api", f"*/{API_STAGE}/*")],
                ),
                "REST API ids are random; limited to this account, region and the API "
                "Gateway stage every pattern API deploys.",
            ),
            (
                _Statement(
                    "UseStageQueues",
                    [
                        "sqs:ChangeMessageVisibility",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ReceiveMessage",
                        "sqs:SendMessage",
                    ],
                    [_arn("sqs", "*")],
                    app_tag,
                ),
                "Queue names are generated and may be truncated; limited to this account, "
                "region and queues tagged with this app.",
            ),
            (
                _Statement(
                    "ObserveEventBuses",
                    [
                        "events:DeleteRule",
                        "events:PutRule",
                        "events:PutTargets",
                        "events:RemoveTargets",
                        "sqs:CreateQueue",
                        "sqs:DeleteMessage",
                        "sqs:DeleteQueue",
                        "sqs:GetQueueAttributes",
                        "sqs:ReceiveMessage",
                        "sqs:SetQueueAttributes",
                    ],
                    [
                        _arn("sqs", f"{OBSERVER_PREFIX}*"),
                        _arn("events", f"rule/*/{OBSERVER_PREFIX}*"),
                    ],
                ),
                "Only the temporary queues and rules the e2e tests create to observe a "
                "stage's event bus, named with a random suffix.",
            ),
            (
                _Statement(
                    "ReadStageTables",
                    ["dynamodb:GetItem", "dynamodb:Scan"],
                    [_arn("dynamodb", f"table/*-{name}-*") for name in self.settings.stack_names],
                ),
                "Tables of this app only: CloudFormation names them <stack>-<LogicalId>-<random> "
                "and the stack is <stage>-<Pattern>; read-only.",
            ),
            (
                _Statement(
                    "UseStageBuckets",
                    ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                    [
                        _Arn(f"arn:{{partition}}:s3:::*-{name.lower()}-*{objects}")
                        for name in self.settings.stack_names
                        for objects in ("", "/*")
                    ],
                    s3_account,
                ),
                "Buckets of this app only: CloudFormation names them <stack>-<logicalid>-<random> "
                "in lower case (the stack name, at most 44 characters, is never truncated), "
                "owned by this account (s3:ResourceAccount).",
            ),
            (
                _Statement(
                    "UseStageFunctions",
                    ["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"],
                    [_arn("lambda", "function:*")],
                    app_tag,
                ),
                "Function names are generated and may be truncated; limited to this "
                "account, region and functions tagged with this app.",
            ),
            (
                _Statement(
                    "PauseQueueConsumers",
                    ["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                    [_arn("lambda", "event-source-mapping:*")],
                ),
                "Event source mappings are named by a random UUID; limited to this account "
                "and region.",
            ),
            (
                _Statement(
                    "ListWithoutResources",
                    ["lambda:ListEventSourceMappings", "scheduler:ListSchedules"],
                    [_Arn("*")],
                ),
                "ListEventSourceMappings and ListSchedules support no resource-level permissions.",
            ),
        ]


@dataclass(frozen=True)
class _Arn:
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


def _arn(service: str, resource: str) -> _Arn:
    return _Arn(f"arn:{{partition}}:{service}:{{region}}:{{account}}:{resource}")


@dataclass(frozen=True)
class _Statement:
    sid: str
    actions: list[str]
    resources: list[_Arn]
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


def build_ci_access(
    app: cdk.App, *, stack_names: Sequence[str], compliance_checks: bool = True
) -> CiAccessStack:
    """Add the CI-access stack to ``app``.

    With ``compliance_checks`` (the default, and what the CLI uses) cdk-nag's
    AwsSolutions and Serverless packs run on synth and any finding fails it; tests
    turn them off and run the packs themselves.

    Raises
    ------
    InvalidCiAccessSettingsError
        When ``-c github_repo`` is missing or malformed.
    """
    keys = ("app_name", "github_repo", "github_oidc_provider_arn", "bootstrap_qualifier")
    context = {key: app.node.try_get_context(key) for key in keys}
    stack = CiAccessStack(
        app, settings=CiAccessSettings.from_context(context, stack_names=stack_names)
    )
    if compliance_checks:
        add_compliance_checks(stack)
    return stack
