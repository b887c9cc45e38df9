"""Build the account app: the API Gateway account stack and, for a repository, CI access."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk

from account.api_gateway import ApiGatewayAccountStack
from account.ci_access import BOOTSTRAP_QUALIFIER_CONTEXT, CiAccessSettings, CiAccessStack
from blocks.compliance import add_compliance_checks

#: The CDK context keys the account app reads (cdk.json plus ``-c``).
CONTEXT_KEYS = (
    "app_name",
    "github_repo",
    "github_oidc_provider_arn",
    # The key the stage stacks' synthesizer reads, so both apps name the same roles.
    BOOTSTRAP_QUALIFIER_CONTEXT,
    "environments",
)


@dataclass(frozen=True)
class AccountStacks:
    """The stacks of the account app.

    Attributes
    ----------
    api_gateway:
        ``<app_name>-ApiGatewayAccount``, always.
    ci_access:
        ``<app_name>-CiAccess``, when ``-c github_repo`` names a repository.
    """

    api_gateway: ApiGatewayAccountStack
    ci_access: CiAccessStack | None

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [s for s in (self.api_gateway, self.ci_access) if s is not None]


def build_account(
    app: cdk.App, *, stack_names: Sequence[str], compliance_checks: bool = True
) -> AccountStacks:
    """Add the account app's stacks to ``app``.

    Without ``-c github_repo`` only the API Gateway account stack is built (enough to
    deploy stages from a workstation). With ``compliance_checks`` (the default, and what
    the CLI uses) cdk-nag's AwsSolutions and Serverless packs run on synth and any
    finding fails it; tests turn them off and run the packs themselves.

    Raises
    ------
    InvalidCiAccessSettingsError
        When ``-c github_repo`` is malformed or ``-c environments`` names an unknown one.
    """
    context = {key: app.node.try_get_context(key) for key in CONTEXT_KEYS}
    stacks = AccountStacks(
        api_gateway=ApiGatewayAccountStack(app, app_name=str(context["app_name"])),
        ci_access=(
            CiAccessStack(
                app, settings=CiAccessSettings.from_context(context, stack_names=stack_names)
            )
            if context.get("github_repo")
            else None
        ),
    )
    if compliance_checks:
        for stack in stacks.stacks:
            add_compliance_checks(stack)
    return stacks
