"""``<app_name>-ApiGatewayAccount``: the API Gateway account setting every stage relies on.

API Gateway writes a REST API stage's access and execution logs to CloudWatch Logs with
one IAM role per account and region, the account setting ``cloudWatchRoleArn``. Until
it is set, deploying a stage that logs fails with "CloudWatch Logs role ARN must be set
in account settings to enable logging" (API Gateway developer guide, "Set up CloudWatch
logging for REST APIs in API Gateway":
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html).

``AWS::ApiGateway::Account`` sets it. AWS's template reference says to have only one such
resource per account and region, or stacks overwrite each other's role, and that
deleting the stack leaves the setting in place: "When you delete a stack containing this
resource, API Gateway can still assume the provided IAM role"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html).
So this stack is the only owner of the singleton (every stage's ``ServiceApi`` keeps
``cloud_watch_role=False``), and its role is retained when the stack is deleted: a
deleted role would leave the setting pointing at nothing and every stage's logging (and
its next deployment) would fail. The role has no physical name, so deploying the stack
again after a deletion creates a new role and repoints the setting instead of failing
on a name that is taken.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.outputs import stable_output

API_GATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
#: What AWS's managed policy AmazonAPIGatewayPushToCloudWatchLogs allows, split by the
#: resource each action applies to (it allows them on ``*``).
LOG_GROUP_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
)
LOG_STREAM_ACTIONS = ("logs:GetLogEvents", "logs:PutLogEvents")


class ApiGatewayAccountStack(cdk.Stack):
    """The account's API Gateway CloudWatch role and the account setting pointing to it.

    Attributes
    ----------
    role:
        The role API Gateway assumes to write every REST API's logs in this account and
        region (retained when the stack is deleted).
    account_setting:
        The ``AWS::ApiGateway::Account`` singleton.

    Examples
    --------
    >>> stack = ApiGatewayAccountStack(cdk.App(), app_name="serverless-patterns")
    >>> stack.stack_name
    'serverless-patterns-ApiGatewayAccount'
    """

    def __init__(self, scope: Construct, *, app_name: str) -> None:
        super().__init__(
            scope,
            "ApiGatewayAccount",
            stack_name=f"{app_name}-ApiGatewayAccount",
            description=(
                "API Gateway's CloudWatch Logs role for this account and region "
                f"(the account setting every {app_name} stage's API logging needs)"
            ),
        )
        cdk.Tags.of(self).add("app", app_name)
        log_groups = self._logs_arn("log-group:*")
        log_streams = self._logs_arn("log-group:*:log-stream:*")
        self.role = iam.Role(
            self,
            "CloudWatchRole",
            description="API Gateway writes REST API access and execution logs with this role",
            assumed_by=iam.ServicePrincipal(API_GATEWAY_PRINCIPAL),
            # Inline, not the managed policy: the same actions, on this account's and
            # region's log groups instead of `*`.
            inline_policies={
                "PushToCloudWatchLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="LogGroups", actions=list(LOG_GROUP_ACTIONS), resources=[log_groups]
                        ),
                        iam.PolicyStatement(
                            sid="LogStreams",
                            actions=list(LOG_STREAM_ACTIONS),
                            resources=[log_streams],
                        ),
                    ]
                )
            },
        )
        # Kept on stack deletion: the account setting outlives the stack (see module doc).
        self.role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        for resource in ("log-group:*", "log-group:*:log-stream:*"):
            acknowledge(
                self.role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                f"<AWS::AccountId>:{resource}]",
                "API Gateway uses this one role for every REST API of the account and region "
                "and names execution log groups after random API ids "
                "(API-Gateway-Execution-Logs_<id>/<stage>): scoped to this account's and "
                "region's log groups, no wider.",
            )
        self.account_setting = apigw.CfnAccount(
            self, "Account", cloud_watch_role_arn=self.role.role_arn
        )
        stable_output(
            self,
            "CloudWatchRoleArn",
            self.role.role_arn,
            "API Gateway's account-level CloudWatch Logs role",
        )

    def _logs_arn(self, resource: str) -> str:
        return f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{resource}"
