"""The stage's alarm topic: every pattern's alarms notify it."""

from __future__ import annotations

import string

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.outputs import stable_output
from blocks.stage_settings import StageSettings


class AlertsStack(cdk.Stack):
    """``<stage>-Alerts``: one SNS topic per stage for every alarm of the stage.

    Only the stage's alarms (named ``<stage>-<Pattern>-...``) may publish.

    The stage's ``alarm_subscribers`` (cdk.json ``alarm_subscriptions.<stage>``) are
    subscribed to ``alarm_topic``: email addresses (each confirms by the link SNS mails)
    and HTTPS endpoints. A persistent stage without any gets a synth warning: its alarms
    would notify a topic nobody reads.
    """

    def __init__(self, scope: Construct, *, settings: StageSettings) -> None:
        super().__init__(
            scope,
            "Alerts",
            stack_name=f"{settings.stage_name}-Alerts",
            description=f"Alarm topic of stage {settings.stage_name}",
            termination_protection=settings.persistent,
            tags=settings.stack_tags("shared"),
        )
        cdk.Tags.of(self).add("pattern", "shared")
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{settings.stage_name} alarms", enforce_ssl=True
        )
        # A topic policy replaces SNS's default one, and enforce_ssl's holds only a Deny:
        # without an Allow, CloudWatch (a service principal, no identity policy) may not
        # publish, and every alarm's notification fails, seen only in its history.
        # Confused-deputy conditions: alarms of this account and this stage only. Alarms
        # are named "<stage>-<Pattern>-..." (ServiceMonitoring): a stage name has no
        # capital letter and a pattern name starts with one, so "pr-4-A*" to "pr-4-Z*"
        # match no alarm of stage pr-42 or pr-4-hotfix, where "pr-4-*" matched both. One
        # prefix per capital letter, not per pattern: the stage's Alerts stack does not
        # change when a fork adds or removes a pattern.
        # (Within the account, who may aim an alarm at this topic is IAM's to decide:
        # cloudwatch:PutMetricAlarm with the cloudwatch:AlarmActions condition key.)
        alarm_arns = [
            self.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=f"{settings.stage_name}-{capital}*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for capital in string.ascii_uppercase
        ]
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowStageAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": alarm_arns},
                },
            )
        )
        resource = self.alarm_topic.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "AwsSolutions-SNS2",
            "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed "
            "key, and alarm notifications carry no sensitive data; a customer managed key "
            "would cost every stage a monthly fee.",
        )
        self._subscribe(settings)
        stable_output(
            self,
            "AlarmTopicArn",
            self.alarm_topic.topic_arn,
            "SNS topic every alarm of the stage notifies",
        )

    def _subscribe(self, settings: StageSettings) -> None:
        for subscriber in settings.alarm_subscribers:
            if subscriber.startswith("https://"):
                self.alarm_topic.add_subscription(subscriptions.UrlSubscription(subscriber))
            else:
                self.alarm_topic.add_subscription(subscriptions.EmailSubscription(subscriber))
        if settings.persistent and not settings.alarm_subscribers:
            cdk.Annotations.of(self).add_warning_v2(
                "serverless-patterns:no-alarm-subscribers",
                f"stage {settings.stage_name} is persistent and nobody gets its alarms: "
                f"name who does in cdk.json alarm_subscriptions.{settings.stage_name}",
            )
