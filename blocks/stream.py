"""A DynamoDB table's stream feeding a function: least-privilege reads and a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.function import ServiceFunction
from blocks.queue import FailedBatchesQueue

#: What a mapping reads its stream with, each on the stream's ARN.
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)
#: Listed by Lambda among a stream consumer's permissions: ``AWSLambdaDynamoDBExecutionRole``
#: grants it with the three read actions, as DynamoDB's own stream-consumer example does.
#: The Service Authorization Reference gives it no resource type, so only ``"*"`` grants
#: it (that example scopes it to ``table/NAME/stream/*``: ``"*"`` is right under either
#: reading). It lists stream ARNs, no data.
STREAM_LIST_ACTION = "dynamodb:ListStreams"
#: The construct id, under the consumer's role, of the policy that grants it.
STREAM_LISTING_POLICY_ID = "StreamListing"


def grant_stream_read(table: dynamodb.ITable, consumer: ServiceFunction) -> None:
    """Let ``consumer`` read ``table``'s stream, and nothing else.

    The reads are granted on the stream; ``dynamodb:ListStreams`` on ``"*"`` in a policy
    of its own, so that its one acknowledgment covers it alone (as ``grantStreamRead``
    grants it, but without the finding landing on the function's whole policy). A
    consumer of several streams gets that policy once, with its first stream.
    """
    table.grant_stream(consumer.role, *STREAM_READ_ACTIONS)
    if consumer.role.node.try_find_child(STREAM_LISTING_POLICY_ID) is not None:
        return
    listing = iam.Policy(
        consumer.role,
        STREAM_LISTING_POLICY_ID,
        statements=[iam.PolicyStatement(actions=[STREAM_LIST_ACTION], resources=["*"])],
        roles=[consumer.role],
    )
    assert listing.node.default_child is not None
    acknowledge(
        listing.node.default_child,
        "AwsSolutions-IAM5[Resource::*]",
        "dynamodb:ListStreams has no resource type (Service Authorization Reference): "
        "only * grants it; Lambda lists it among a stream mapping's permissions.",
    )


def stream_mapping(
    scope: Construct,
    construct_id: str,
    *,
    table: dynamodb.ITable,
    consumer: ServiceFunction,
    event_filter: Mapping[str, Any],
    failure_queue: sqs.IQueue,
    batch_size: int,
    retry_attempts: int,
    max_record_age: cdk.Duration,
    parallelization_factor: int | None = None,
) -> lambda_.EventSourceMapping:
    """Feed the records of ``table``'s stream that pass ``event_filter`` to ``consumer``.

    From the oldest record, with partial batch responses and bisection of failing
    batches; a batch still failing after ``retry_attempts`` (or older than
    ``max_record_age``) goes to ``failure_queue``. The consumer needs the stream read
    grant (:func:`grant_stream_read`) before the mapping is created.

    Raises
    ------
    ValueError
        If the table has no stream.
    """
    stream_arn = table.table_stream_arn
    if stream_arn is None:
        raise ValueError(f"{table.node.path} has no stream to map")
    mapping = lambda_.EventSourceMapping(
        scope,
        construct_id,
        target=consumer.function,
        event_source_arn=stream_arn,
        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
        batch_size=batch_size,
        bisect_batch_on_error=True,
        retry_attempts=retry_attempts,
        max_record_age=max_record_age,
        report_batch_item_failures=True,
        parallelization_factor=parallelization_factor,
        filters=[lambda_.FilterCriteria.filter(event_filter)],
        on_failure=FailedBatchesQueue(failure_queue),
    )
    # Lambda checks the consumer's stream permissions when it creates the mapping: the
    # role's subtree holds both of grant_stream_read's policies.
    mapping.node.add_dependency(consumer.role)
    return mapping
