"""The API Gateway account setting: one owner per account and region, never a stage.

API Gateway needs the account's CloudWatch role before any stage can log ("CloudWatch
Logs role ARN must be set in account settings to enable logging"; API Gateway developer
guide, https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html).
``AWS::ApiGateway::Account`` sets it; AWS's template reference asks for one such resource
per account and region and says deleting its stack leaves the setting in place
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from syrupy.assertion import SnapshotAssertion

from account.api_gateway import LOG_GROUP_ACTIONS, LOG_STREAM_ACTIONS, ApiGatewayAccountStack
from stacks.stage import cdk_json_context
from tests.infra.conftest import SynthesizedAccount, SynthesizedStage, normalized
from tests.support.cfn_lint import cfn_lint_findings

#: AWS's managed policy AmazonAPIGatewayPushToCloudWatchLogs, version 1 (on `*`).
MANAGED_POLICY_ACTIONS = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
}


@pytest.fixture(scope="module")
def stack(account: SynthesizedAccount) -> ApiGatewayAccountStack:
    return account.stacks.api_gateway


@pytest.fixture(scope="module")
def resources(account: SynthesizedAccount, stack: ApiGatewayAccountStack) -> dict[str, Any]:
    found: dict[str, Any] = account.template_json(stack)["Resources"]
    return found


def _one(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in resources.items() if r["Type"] == kind]
    return found


def test_the_account_setting_points_to_a_role_api_gateway_may_assume(
    resources: dict[str, Any],
) -> None:
    # GIVEN the API Gateway account stack
    role_id, role = _one(resources, "AWS::IAM::Role")
    _, setting = _one(resources, "AWS::ApiGateway::Account")

    # THEN the account setting names its role, which only API Gateway may assume
    assert setting["Properties"] == {"CloudWatchRoleArn": {"Fn::GetAtt": [role_id, "Arn"]}}
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
        }
    ]


def test_the_role_may_write_this_accounts_logs_only(resources: dict[str, Any]) -> None:
    # GIVEN the role's permissions
    _, role = _one(resources, "AWS::IAM::Role")
    (policy,) = role["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]

    # THEN it has the managed policy's actions, no more, on this account's and region's
    # log groups and streams instead of `*`, and no managed policy
    assert "ManagedPolicyArns" not in role["Properties"]
    actions = [a for s in statements for a in s["Action"]]
    assert set(actions) == MANAGED_POLICY_ACTIONS == {*LOG_GROUP_ACTIONS, *LOG_STREAM_ACTIONS}
    prefix = ["arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":"]
    assert [s["Resource"]["Fn::Join"][1] for s in statements] == [
        [*prefix, {"Ref": "AWS::AccountId"}, ":log-group:*"],
        [*prefix, {"Ref": "AWS::AccountId"}, ":log-group:*:log-stream:*"],
    ]


def test_the_role_survives_the_stack_and_a_second_deployment(resources: dict[str, Any]) -> None:
    # GIVEN the role the account setting points to
    _, role = _one(resources, "AWS::IAM::Role")

    # THEN deleting or replacing it never leaves the setting pointing at a deleted role,
    # and it has no physical name, so deploying again after a deletion cannot collide
    assert role["DeletionPolicy"] == "Retain"
    assert role["UpdateReplacePolicy"] == "Retain"
    assert "RoleName" not in role["Properties"]
    _, setting = _one(resources, "AWS::ApiGateway::Account")
    assert "DeletionPolicy" not in setting


def test_no_stage_touches_the_account_setting(
    ephemeral: SynthesizedStage, resources: dict[str, Any]
) -> None:
    # GIVEN every template of a stage
    kinds = {
        resource["Type"]
        for stack_id in ephemeral.templates
        for resource in ephemeral.template_json(stack_id)["Resources"].values()
    }

    # THEN the stage logs its APIs but never sets the singleton: only the account app does
    assert "AWS::ApiGateway::Stage" in kinds
    assert "AWS::ApiGateway::Account" not in kinds
    _one(resources, "AWS::ApiGateway::Account")


def test_the_account_app_holds_both_stacks_outside_any_stage(
    account: SynthesizedAccount,
) -> None:
    manifest = json.loads((account.outdir / "manifest.json").read_text())
    stacks = sorted(
        a["properties"]["stackName"]
        for a in manifest["artifacts"].values()
        if a["type"] == "aws:cloudformation:stack"
    )
    app_name = cdk_json_context()["app_name"]
    assert stacks == [f"{app_name}-ApiGatewayAccount", f"{app_name}-CiAccess"]


@pytest.mark.parametrize("pack", [AwsSolutionsChecks, ServerlessChecks], ids=lambda p: p.__name__)
def test_nag_packs_report_no_finding(stack: ApiGatewayAccountStack, pack: type) -> None:
    report = pack().validate_scope(stack)
    assert [v.rule_name for v in report.violations] == []


def test_cfn_lint_reports_nothing(
    account: SynthesizedAccount, stack: ApiGatewayAccountStack
) -> None:
    template = account.outdir / stack.template_file
    assert cfn_lint_findings(template) == []


def test_template_matches_its_snapshot(
    account: SynthesizedAccount, stack: ApiGatewayAccountStack, snapshot: SnapshotAssertion
) -> None:
    assert normalized(account.template_json(stack)) == snapshot
