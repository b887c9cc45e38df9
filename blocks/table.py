"""DynamoDB tables with this app's defaults."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.stage_settings import StageSettings


class DataTable(Construct):
    """An on-demand, encrypted table; persistent stages add PITR and deletion protection.

    Its ``table`` is the ``aws_dynamodb.Table``.

    Examples
    --------
    >>> jobs = DataTable(self, "JobTable", settings=settings,
    ...                  partition_key=dynamodb.Attribute(
    ...                      name="job_id", type=dynamodb.AttributeType.STRING),
    ...                  time_to_live_attribute="expires_at")  # doctest: +SKIP
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        partition_key: dynamodb.Attribute,
        sort_key: dynamodb.Attribute | None = None,
        time_to_live_attribute: str | None = None,
        stream: dynamodb.StreamViewType | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=partition_key,
            sort_key=sort_key,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=settings.persistent
            ),
            deletion_protection=settings.persistent,
            time_to_live_attribute=time_to_live_attribute,
            stream=stream,
            removal_policy=settings.removal_policy,
        )
        if not settings.persistent:
            resource = self.table.node.default_child
            assert resource is not None
            reason = (
                "Ephemeral stage: the table is destroyed with the "
                "stage, so there is nothing to recover; persistent stages enable PITR."
            )
            acknowledge(resource, "AwsSolutions-DDB3", reason)
            acknowledge(resource, "Serverless-DynamoDBPITREnabled", reason)
