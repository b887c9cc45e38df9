"""CI access: role outputs, partial deployments and the environments setting."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from account.ci_access import (
    CiAccessSettings,
    CiAccessStack,
    InvalidCiAccessSettingsError,
    parse_environments,
)
from tests.infra.ci_access.conftest import (
    REPO,
    _as_list,
)


def test_each_role_arn_is_an_output_named_for_its_repository_variable(
    template: dict[str, Any],
) -> None:
    outputs = template["Outputs"]
    assert sorted(outputs) == [
        "OidcProviderArn",
        "ProductionDeployRoleArn",
        "PullRequestDeployRoleArn",
        "StagingDeployRoleArn",
    ]
    assert outputs["PullRequestDeployRoleArn"]["Description"].endswith("AWS_PR_ROLE_ARN")
    assert outputs["StagingDeployRoleArn"]["Description"].endswith("AWS_STAGING_ROLE_ARN")
    assert outputs["ProductionDeployRoleArn"]["Description"].endswith("AWS_PRODUCTION_ROLE_ARN")


def test_one_deployment_may_create_only_some_roles() -> None:
    # GIVEN a production account: only the production role, on the existing provider
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    settings = CiAccessSettings.from_context(
        {
            "app_name": "app",
            "github_repo": REPO,
            "environments": "production",
            "github_oidc_provider_arn": arn,
        },
        stack_names=["Alerts"],
    )

    # WHEN the stack is built
    stack = CiAccessStack(cdk.App(), settings=settings)
    template = Template.from_stack(stack).to_json()

    # THEN it has that role only, trusts the existing provider and creates none
    assert sorted(stack.roles) == ["production"]
    assert stack.provider_arn == arn
    assert stack.node.try_find_child("GitHubOidcProvider") is None
    assert sorted(template["Outputs"]) == ["OidcProviderArn", "ProductionDeployRoleArn"]


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        (None, ["pull_request", "staging", "production"]),
        ("", ["pull_request", "staging", "production"]),
        ("staging, pull_request", ["pull_request", "staging"]),
        (["production"], ["production"]),
    ],
)
def test_environments_are_read_from_a_comma_separated_list(
    value: str | list[str] | None, keys: list[str]
) -> None:
    assert [env.key for env in parse_environments(value)] == keys


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"app_name": "app"}, "missing GitHub repository"),
        ({"app_name": "app", "github_repo": "shop"}, "invalid GitHub repository 'shop'"),
        ({"app_name": "app", "github_repo": "a/b/c"}, "invalid GitHub repository"),
        # Immutable subject claims carry both ids or neither; a name is not an id.
        ({"app_name": "app", "github_repo": "octo@123/shop"}, "invalid GitHub repository"),
        ({"app_name": "app", "github_repo": "octo/shop@456"}, "invalid GitHub repository"),
        ({"app_name": "app", "github_repo": "octo@x/shop@456"}, "invalid GitHub repository"),
        (
            {"app_name": "app", "github_repo": REPO, "environments": "prod"},
            "unknown environment 'prod'",
        ),
    ],
)
def test_a_missing_or_malformed_setting_stops_with_one_line(
    context: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidCiAccessSettingsError, match=message) as raised:
        CiAccessSettings.from_context(context, stack_names=["Alerts"])
    assert "\n" not in str(raised.value)


def test_the_ci_roles_may_assume_the_bootstrap_roles_the_stage_stacks_name() -> None:
    # GIVEN an account bootstrapped with its own qualifier, given to CDK the usual way
    context = {
        "app_name": "app",
        "github_repo": REPO,
        "@aws-cdk/core:bootstrapQualifier": "abc123xyz",
    }
    # WHEN the CI roles are built from that context, and a stack is synthesized with it
    settings = CiAccessSettings.from_context(context, stack_names=["Alerts"])
    ci_stack = CiAccessStack(cdk.App(context=context), settings=settings)
    ci_access = json.dumps(Template.from_stack(ci_stack).to_json())
    app = cdk.App(context=context)
    cdk.Stack(app, "StageStack")
    stage_stack = app.synth().get_stack_by_name("StageStack")

    # THEN the stack deploys through that qualifier's deploy role, which the CI roles
    # may assume (and no role of the default qualifier)
    assert "cdk-abc123xyz-deploy-role" in str(stage_stack.assume_role_arn)
    assert "cdk-abc123xyz-deploy-role" in ci_access
    assert "cdk-hnb659fds" not in ci_access


def test_a_repository_with_immutable_subject_claims_is_trusted_by_its_ids() -> None:
    # GIVEN a repository created after 15 July 2026: its tokens' subject names the owner
    # and the repository with their ids (repo:octo@123/shop@456:pull_request)
    context = {"app_name": "app", "github_repo": "octo@123/shop@456"}
    # WHEN the CI roles are built for it
    settings = CiAccessSettings.from_context(context, stack_names=["Alerts"])
    template = Template.from_stack(CiAccessStack(cdk.App(), settings=settings)).to_json()
    # THEN each role trusts exactly that subject of its environment
    subjects = sorted(
        subject
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for subject in _as_list(
            statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        )
    )
    assert subjects == [
        "repo:octo@123/shop@456:environment:pr-teardown",
        "repo:octo@123/shop@456:environment:production",
        "repo:octo@123/shop@456:environment:staging",
        "repo:octo@123/shop@456:pull_request",
    ]
