"""The CI-access stack: who may assume the deploy role, and what it may do.

Synthesized once per session (a small app of one stack, no assets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint_file
from syrupy.assertion import SnapshotAssertion

from ci_access.stack import (
    BOOTSTRAP_ROLES,
    CiAccessSettings,
    CiAccessStack,
    InvalidCiAccessSettingsError,
    build_ci_access,
)
from ci_access_app import stack_names
from stacks.stage import cdk_json_context, new_app
from tests.infra.conftest import normalized

REPO = "octo-org/shop"


@pytest.fixture(scope="session")
def ci_access(tmp_path_factory: pytest.TempPathFactory) -> tuple[CiAccessStack, Path]:
    outdir = tmp_path_factory.mktemp("cdk-ci-access")
    app = new_app(outdir=outdir, github_repo=REPO)
    stack = build_ci_access(app, stack_names=stack_names(), compliance_checks=False)
    app.synth()
    return stack, outdir


@pytest.fixture(scope="session")
def template(ci_access: tuple[CiAccessStack, Path]) -> dict[str, Any]:
    return dict(Template.from_stack(ci_access[0]).to_json())


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def _policy(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    (policy,) = [
        r
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and logical_id.startswith(name)
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _joined(value: Any) -> str:
    """A Fn::Join of literals and pseudo parameters as one readable string."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return str(separator).join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)


def test_only_workflows_of_the_repository_may_assume_the_role(template: dict[str, Any]) -> None:
    # GIVEN the CI-access stack for one repository
    (provider,) = _resources(template, "AWS::IAM::OIDCProvider")
    (role,) = _resources(template, "AWS::IAM::Role")

    # WHEN its trust policy is read
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    # THEN GitHub's OIDC provider may assume it, for tokens meant for STS from that
    # repository only
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": {"Ref": _logical_id(template, provider)}}
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": f"repo:{REPO}:*"},
    }
    assert role["Properties"]["MaxSessionDuration"] == 3600
    assert "ManagedPolicyArns" not in role["Properties"]


def _logical_id(template: dict[str, Any], resource: dict[str, Any]) -> str:
    return next(k for k, v in template["Resources"].items() if v is resource)


def test_deploying_means_assuming_the_cdk_bootstrap_roles_only(template: dict[str, Any]) -> None:
    # WHEN the deploy policy is read
    (statement,) = _policy(template, "DeployPolicy")

    # THEN it allows assuming the four bootstrap roles of its own account and region
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert sorted(_joined(r) for r in statement["Resource"]) == sorted(
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
        f"cdk-hnb659fds-{role}-${{AWS::AccountId}}-${{AWS::Region}}"
        for role in BOOTSTRAP_ROLES
    )


def test_stage_discovery_reads_this_apps_stacks_only(template: dict[str, Any]) -> None:
    # WHEN the e2e policy's CloudFormation statement is read
    (statement,) = [
        s for s in _policy(template, "EndToEndTestPolicy") if s["Sid"] == "FindStageStacks"
    ]

    # THEN it reads `<any stage>-<stack>` for Alerts and each pattern, nothing else
    assert statement["Action"] == [
        "cloudformation:DescribeStackResources",
        "cloudformation:DescribeStacks",
        "cloudformation:ListStackResources",
    ]
    assert sorted(_joined(r) for r in statement["Resource"]) == sorted(
        f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stack/*-{name}/*"
        for name in stack_names()
    )
    assert "Alerts" in stack_names() and "DecoupledInvocation" in stack_names()


def test_no_statement_has_a_wildcard_action_or_denies_nothing(template: dict[str, Any]) -> None:
    statements = _policy(template, "DeployPolicy") + _policy(template, "EndToEndTestPolicy")
    actions = [action for s in statements for action in _as_list(s["Action"])]
    assert actions and all("*" not in action for action in actions)
    assert all(s["Effect"] == "Allow" and "NotAction" not in s for s in statements)
    # Resources that are `*` are only the actions AWS gives no resource-level permission.
    unscoped = [s for s in statements if "*" in _as_list(s["Resource"])]
    assert [s["Action"] for s in unscoped] == [
        ["lambda:ListEventSourceMappings", "scheduler:ListSchedules"]
    ]


def test_functions_and_queues_are_limited_to_the_app_tag(template: dict[str, Any]) -> None:
    by_sid = {s["Sid"]: s for s in _policy(template, "EndToEndTestPolicy")}
    app_name = cdk_json_context()["app_name"]
    for sid in ("UseStageQueues", "UseStageFunctions"):
        assert by_sid[sid]["Condition"] == {"StringEquals": {"aws:ResourceTag/app": app_name}}
    assert by_sid["UseStageBuckets"]["Condition"] == {
        "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
    }


@pytest.mark.parametrize("pack", [AwsSolutionsChecks, ServerlessChecks], ids=lambda p: p.__name__)
def test_nag_packs_report_no_finding(ci_access: tuple[CiAccessStack, Path], pack: type) -> None:
    # GIVEN the synthesized stack WHEN a cdk-nag pack validates it THEN nothing is reported
    report = pack().validate_scope(ci_access[0])
    assert [v.rule_name for v in report.violations] == []


def test_cfn_lint_reports_nothing(ci_access: tuple[CiAccessStack, Path]) -> None:
    stack, outdir = ci_access
    template = outdir / stack.template_file
    assert [str(m) for m in lint_file(template, config=ManualArgs(regions=["us-east-1"]))] == []


def test_template_matches_its_snapshot(
    template: dict[str, Any], snapshot: SnapshotAssertion
) -> None:
    assert normalized(template) == snapshot


def test_an_existing_provider_is_used_instead_of_a_second_one() -> None:
    # GIVEN an account that already has GitHub's OIDC provider
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    settings = CiAccessSettings(
        app_name="app", github_repo=REPO, stack_names=("Alerts",), existing_provider_arn=arn
    )

    # WHEN the stack is built (not synthesized)
    stack = CiAccessStack(cdk.App(), settings=settings)

    # THEN it trusts that provider and creates none
    assert stack.provider_arn == arn
    assert stack.node.try_find_child("GitHubOidcProvider") is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"app_name": "app"}, "missing GitHub repository"),
        ({"app_name": "app", "github_repo": "shop"}, "invalid GitHub repository 'shop'"),
        ({"app_name": "app", "github_repo": "a/b/c"}, "invalid GitHub repository"),
    ],
)
def test_a_missing_or_malformed_repository_stops_with_one_line(
    context: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidCiAccessSettingsError, match=message) as raised:
        CiAccessSettings.from_context(context, stack_names=["Alerts"])
    assert "\n" not in str(raised.value)


def test_ci_access_app_runs_outside_the_stage(ci_access: tuple[CiAccessStack, Path]) -> None:
    # The stage never deploys it: its stack is not a pattern stack and has its own name.
    stack, outdir = ci_access
    assert stack.stack_name == f"{cdk_json_context()['app_name']}-CiAccess"
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert [
        name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"
    ] == ["CiAccess"]


def test_tables_and_buckets_are_limited_to_the_stacks_of_this_app(
    template: dict[str, Any],
) -> None:
    # GIVEN the e2e statements on tables and buckets
    by_sid = {s["Sid"]: s for s in _policy(template, "EndToEndTestPolicy")}
    tables = sorted(_joined(r) for r in _as_list(by_sid["ReadStageTables"]["Resource"]))
    buckets = sorted(_joined(r) for r in _as_list(by_sid["UseStageBuckets"]["Resource"]))

    # THEN each names the generated names of `<stage>-<Pattern>` stacks, nothing wider
    prefix = "arn:${AWS::Partition}"
    assert tables == sorted(
        f"{prefix}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/*-{name}-*"
        for name in stack_names()
    )
    assert buckets == sorted(
        f"{prefix}:s3:::*-{name.lower()}-*{objects}"
        for name in stack_names()
        for objects in ("", "/*")
    )
