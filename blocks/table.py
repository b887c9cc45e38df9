"""DynamoDB tables with this app's defaults."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.stage_settings import StageSettings

#: The TTL attribute of every pattern's table: the one ``handler_kit.ttl`` writes and reads.
TTL_ATTRIBUTE = "expires_at"


def string_key(name: str) -> dynamodb.Attribute:
    """A string key attribute (``S``), the type of every id the patterns key by."""
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def number_key(name: str) -> dynamodb.Attribute:
    """A number key attribute (``N``), e.g. a version or an index sort key."""
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.NUMBER)


class DataTable(Construct):
    """An on-demand, encrypted table; persistent stages add PITR and deletion protection.

    Items expire through TTL on ``expires_at`` (:data:`TTL_ATTRIBUTE`) unless
    ``time_to_live_attribute`` says otherwise (``None``: no TTL).

    Attributes
    ----------
    table:
        The ``aws_dynamodb.Table``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        partition_key: dynamodb.Attribute,
        sort_key: dynamodb.Attribute | None = None,
        time_to_live_attribute: str | None = TTL_ATTRIBUTE,
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
