"""``<app_name>-CiAccess``: GitHub's OIDC provider and one deploy role per environment.

GitHub Actions exchanges its OIDC token (``permissions: id-token: write``) for a role's
credentials, so no long-lived AWS key is stored in GitHub. Which role a job may assume
depends on the token's ``sub`` claim, which GitHub sets from the job
(GitHub docs, "OpenID Connect reference", https://docs.github.com/en/actions/reference/security/oidc;
an organization that customizes its subject template changes these). ``O/R`` is the
repository as its tokens name it: ``owner/name``, or ``owner@<owner id>/name@<repository
id>`` for a repository with immutable subject claims (every repository created,
renamed or transferred after 15 July 2026, and any that opted in; GitHub changelog,
"Immutable subject claims for GitHub Actions OIDC tokens"):

- ``repo:O/R:pull_request`` for a job of a ``pull_request`` workflow that declares no
  environment: the pull request role (stages ``pr-*``), which also trusts
  ``repo:O/R:environment:pr-teardown``: the job that deletes a closed pull request's
  stage runs on ``pull_request_target``, whose subject GitHub does not document, so it
  declares that environment, and a job's environment always sets its subject;
- ``repo:O/R:environment:staging`` for a job that declares ``environment: staging``:
  the staging role (stage ``staging``);
- ``repo:O/R:environment:production`` for ``environment: production``: the production
  role (stage ``prod``), behind that environment's required reviewers.

Each trust policy compares ``sub`` with StringEquals (no wildcard), so a branch that
edits a workflow still gets the pull request role unless its job runs in an environment,
and the environments' deployment branch rules (``main`` only) and required reviewers
decide that. Every role may assume the CDK bootstrap roles (all ``cdk deploy|destroy``
needs). In ONE account those bootstrap roles can deploy and change any stack, so the
pull request role could still reach staging and prod through them: only separate
accounts per environment separate them (README, docs/forking.md). One deployment may
therefore create only some roles (``-c environments=pull_request,staging`` in a
development account, ``-c environments=production`` in the production account).

The pull request and staging roles may also do what the e2e tests do to their own
stages (:mod:`account.ci_policies`); the production role only deploys. No statement has
a wildcard action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from account.ci_policies import e2e_statements
from blocks.compliance import acknowledge
from blocks.outputs import stable_output

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
#: The longest session a CI job may ask for: a deploy-and-test job may run 90 minutes,
#: and credentials that expire mid-job fail it with ExpiredToken.
MAX_SESSION_DURATION = cdk.Duration.hours(2)

#: The CDK context key of the bootstrap qualifier: the stage stacks' synthesizer names
#: its roles after it, so the CI roles may assume the same ones (``cdk bootstrap
#: --qualifier X`` goes with ``-c @aws-cdk/core:bootstrapQualifier=X`` or cdk.json).
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"

#: ``cdk bootstrap``'s default qualifier (``--qualifier`` changes it; so must cdk.json).
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"
#: The roles ``cdk bootstrap`` creates, by the name part between qualifier and account.
BOOTSTRAP_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")

#: ``owner/name``, or with immutable subject claims ``owner@<id>/name@<id>`` (both ids).
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+(?:@[0-9]+/[A-Za-z0-9_.-]+@[0-9]+|/[A-Za-z0-9_.-]+)$")


class InvalidCiAccessSettingsError(ValueError):
    """Raised when the CI-access stack is missing a setting or has an unusable one."""


@dataclass(frozen=True)
class DeployEnvironment:
    """Who deploys which stages: one GitHub OIDC subject, one role, one stage pattern.

    Attributes
    ----------
    key:
        The name in ``-c environments=...``; for staging and production also the GitHub
        environment a job declares.
    role_prefix:
        Prefix of the role's construct ids and output (``PullRequest`` gives
        ``PullRequestDeployRole`` and ``PullRequestDeployRoleArn``).
    stage_pattern:
        The stages the role deploys and tests, as an IAM pattern (``pr-*``).
    repository_variable:
        The GitHub repository variable the workflows read the role's ARN from.
    runs_e2e:
        Whether the role may run the e2e suite against its stages.
    also_environment:
        A GitHub environment whose jobs get the role too (the pull request teardown's).
    """

    key: str
    role_prefix: str
    stage_pattern: str
    repository_variable: str
    runs_e2e: bool
    also_environment: str | None = None

    def subjects(self, github_repo: str) -> list[str]:
        """The OIDC ``sub`` of this environment's jobs in ``github_repo``.

        >>> PULL_REQUEST.subjects("octo/shop")
        ['repo:octo/shop:pull_request', 'repo:octo/shop:environment:pr-teardown']
        """
        if self.key == "pull_request":
            found = [f"repo:{github_repo}:pull_request"]
        else:
            found = [f"repo:{github_repo}:environment:{self.key}"]
        if self.also_environment:
            found.append(f"repo:{github_repo}:environment:{self.also_environment}")
        return found


#: The GitHub environment of the job that deletes a closed pull request's stage.
PR_TEARDOWN_ENVIRONMENT = "pr-teardown"
PULL_REQUEST = DeployEnvironment(
    "pull_request", "PullRequest", "pr-*", "AWS_PR_ROLE_ARN", True, PR_TEARDOWN_ENVIRONMENT
)
STAGING = DeployEnvironment("staging", "Staging", "staging", "AWS_STAGING_ROLE_ARN", True)
# Deploys only: nothing runs the e2e suite against prod (it would write test data).
PRODUCTION = DeployEnvironment("production", "Production", "prod", "AWS_PRODUCTION_ROLE_ARN", False)
ENVIRONMENTS = {env.key: env for env in (PULL_REQUEST, STAGING, PRODUCTION)}


@dataclass(frozen=True, kw_only=True)
class CiAccessSettings:
    """What the CI-access stack is built from.

    Attributes
    ----------
    app_name:
        cdk.json ``app_name``: names the stack and is the tag value the roles may touch.
    github_repo:
        The only repository whose workflows may assume the roles, as its OIDC tokens
        name it: ``owner/name``, or ``owner@<owner id>/name@<repository id>`` when the
        repository has immutable subject claims (created after 15 July 2026).
    stack_names:
        Stack names without the stage prefix (``Alerts``, each pattern's name).
    environments:
        The environments whose roles this deployment creates (all three by default).
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
    environments: tuple[DeployEnvironment, ...] = (PULL_REQUEST, STAGING, PRODUCTION)
    existing_provider_arn: str | None = None
    bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER

    def __post_init__(self) -> None:
        if not _GITHUB_REPO.match(self.github_repo):
            raise InvalidCiAccessSettingsError(
                f"invalid GitHub repository {self.github_repo!r}: use owner/name, or "
                "owner@<owner id>/name@<repository id> for a repository with immutable OIDC "
                "subject claims (e.g. make account GITHUB_REPO=octo-org@123/shop@456)"
            )
        if not self.stack_names:
            raise InvalidCiAccessSettingsError("no stack names: the app has no pattern stacks")
        if not self.environments:
            raise InvalidCiAccessSettingsError("no environments: name at least one role")

    @classmethod
    def from_context(
        cls, context: Mapping[str, Any], *, stack_names: Sequence[str]
    ) -> CiAccessSettings:
        """Build the settings from CDK context (cdk.json plus ``-c`` values).

        Raises
        ------
        InvalidCiAccessSettingsError
            When ``github_repo`` is missing or malformed, or ``environments`` names an
            unknown environment.
        """
        repo = context.get("github_repo")
        if not repo:
            raise InvalidCiAccessSettingsError(
                "missing GitHub repository: pass -c github_repo=owner/name "
                "(make account GITHUB_REPO=owner/name)"
            )
        return cls(
            app_name=str(context["app_name"]),
            github_repo=str(repo),
            stack_names=tuple(stack_names),
            environments=parse_environments(context.get("environments")),
            existing_provider_arn=context.get("github_oidc_provider_arn") or None,
            bootstrap_qualifier=str(
                context.get(BOOTSTRAP_QUALIFIER_CONTEXT) or DEFAULT_BOOTSTRAP_QUALIFIER
            ),
        )


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def parse_environments(value: str | Sequence[str] | None) -> tuple[DeployEnvironment, ...]:
    """``pull_request,staging`` (or a list) as environments; None or empty means all.

    Raises
    ------
    InvalidCiAccessSettingsError
        When a name is not one of ``pull_request``, ``staging``, ``production``.

    Examples
    --------
    >>> [env.key for env in parse_environments("production")]
    ['production']
    """
    names = value.split(",") if isinstance(value, str) else list(value or [])
    names = [name.strip() for name in names if name.strip()]
    unknown = [name for name in names if name not in ENVIRONMENTS]
    if unknown:
        raise InvalidCiAccessSettingsError(
            f"unknown environment {unknown[0]!r} in -c environments: use a comma-separated "
            f"subset of {','.join(ENVIRONMENTS)}"
        )
    # In the fixed order, once each: the template does not depend on how they were listed.
    chosen = [env for key, env in ENVIRONMENTS.items() if key in names]
    return tuple(chosen) if chosen else tuple(ENVIRONMENTS.values())


class CiAccessStack(cdk.Stack):
    """``<app_name>-CiAccess``: the GitHub OIDC provider and a deploy role per environment.

    Attributes
    ----------
    provider_arn:
        The GitHub OIDC provider's ARN (created here, or the existing one).
    roles:
        The deploy roles by environment key (output ``<Prefix>DeployRoleArn`` each).
    """

    def __init__(self, scope: Construct, *, settings: CiAccessSettings) -> None:
        super().__init__(
            scope,
            "CiAccess",
            stack_name=f"{settings.app_name}-CiAccess",
            description=(
                f"GitHub OIDC access for {settings.github_repo}: one role per environment "
                f"({', '.join(env.key for env in settings.environments)}) to deploy "
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
        stable_output(
            self, "OidcProviderArn", self.provider_arn, "GitHub's OIDC provider in this account"
        )

        self.roles = {env.key: self._deploy_role(env) for env in settings.environments}

    def _deploy_role(self, env: DeployEnvironment) -> iam.Role:
        repo = self.settings.github_repo
        role = iam.Role(
            self,
            f"{env.role_prefix}DeployRole",
            description=f"GitHub Actions of {repo} deploy stages {env.stage_pattern}",
            max_session_duration=MAX_SESSION_DURATION,
            assumed_by=iam.WebIdentityPrincipal(
                self.provider_arn,
                conditions={
                    # Exactly these subjects: no wildcard, so no other event, branch or
                    # environment of the repository (and nothing outside it) matches.
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": _one_or_list(env.subjects(repo)),
                    },
                },
            ),
        )
        iam.Policy(
            self,
            f"{env.role_prefix}DeployPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="AssumeCdkBootstrapRoles",
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=[self._bootstrap_role_arn(name) for name in BOOTSTRAP_ROLES],
                )
            ],
        )
        if env.runs_e2e:
            self._e2e_policy(env, role)
        stable_output(
            self,
            f"{env.role_prefix}DeployRoleArn",
            role.role_arn,
            f"GitHub repository variable {env.repository_variable}",
        )
        return role

    def _e2e_policy(self, env: DeployEnvironment, role: iam.Role) -> None:
        policy = iam.Policy(self, f"{env.role_prefix}EndToEndTestPolicy", roles=[role])
        policy_resource = policy.node.default_child
        assert policy_resource is not None
        statements = e2e_statements(
            app_name=self.settings.app_name,
            stage_pattern=env.stage_pattern,
            stack_names=self.settings.stack_names,
        )
        for statement in statements:
            policy.add_statements(statement.statement)
            for nag_form in statement.wildcard_resources:
                acknowledge(
                    policy_resource, f"AwsSolutions-IAM5[Resource::{nag_form}]", statement.reason
                )

    def _bootstrap_role_arn(self, role: str) -> str:
        qualifier = self.settings.bootstrap_qualifier
        return (
            f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/"
            f"cdk-{qualifier}-{role}-{cdk.Aws.ACCOUNT_ID}-{cdk.Aws.REGION}"
        )
