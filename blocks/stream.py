"""A DynamoDB table's stream feeding a function: least-privilege reads and a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from blocks.function import ServiceFunction

#: What a mapping reads a stream with, each on the stream's ARN. Not ``dynamodb:ListStreams``:
#: the Service Authorization Reference lists it with no resource type, so only ``"*"``
#: grants it
#: (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
#: It used to be granted here on the stream ARN, where it never matched: the mappings
#: never had it. A mapping names its stream, and no consumer lists streams.
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)


def grant_stream_read(table: dynamodb.ITable, role: iam.IRole) -> None:
    """Let ``role`` read ``table``'s stream, and nothing else.

    Instead of ``grantStreamRead``, which adds ``dynamodb:ListStreams`` on ``*`` (every
    stream of the account and region) for a call nothing here makes.
    """
    table.grant_stream(role, *STREAM_READ_ACTIONS)


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
        on_failure=event_sources.SqsDlq(failure_queue),
    )
    # Lambda checks the consumer's stream permissions when it creates the mapping.
    mapping.node.add_dependency(consumer.role)
    return mapping
