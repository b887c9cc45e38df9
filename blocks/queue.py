"""SQS queues with this app's defaults: encrypted, TLS only, always backed by a DLQ."""

from __future__ import annotations

from typing import Protocol

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct, Node

from blocks.compliance import acknowledge
from blocks.stage_settings import StageSettings


class QueueConsumer(Protocol):
    """What a queue needs of the function that consumes it (a ``ServiceFunction``).

    A protocol, not an import of ``blocks.function``, which imports this module.
    """

    @property
    def function(self) -> lambda_.Function: ...

    @property
    def role(self) -> iam.IRole: ...

    @property
    def node(self) -> Node: ...


# SQS returns a message to the queue when its visibility timeout ends. Lambda's guidance
# is at least six times the consumer's timeout, so retries of a throttled or slow batch
# do not make the message visible while a consumer still holds it.
VISIBILITY_TO_CONSUMER_TIMEOUT = 6
DEAD_LETTER_RETENTION = cdk.Duration.days(14)
# Receives before a message moves to its DLQ. Throttled invocations, a batch failed by a
# timeout and lost receives all count, so Lambda's guidance is at least 5 for a queue an
# event source mapping reads ("Configuring a queue to use with Lambda",
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
DEFAULT_MAX_RECEIVE_COUNT = 5
#: What Lambda's poller needs of a queue an event source mapping reads, and all of it
#: (AWS's AWSLambdaSQSQueueExecutionRole; "Creating and configuring an Amazon SQS event
#: source mapping", URL above). Not ``grant_consume_messages``, which adds
#: ``ChangeMessageVisibility`` and ``GetQueueUrl``: neither the poller nor a consumer
#: calls them.
CONSUMER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
#: What a producer needs: ``SendMessage`` also authorizes ``SendMessageBatch``. Not
#: ``grant_send_messages``, which adds ``GetQueueAttributes`` and ``GetQueueUrl``: the
#: producers get the queue URL from their environment.
PRODUCER_ACTIONS = ("sqs:SendMessage",)


def _send_only(fn: lambda_.IFunction, queue: sqs.IQueue) -> None:
    fn.add_to_role_policy(
        iam.PolicyStatement(actions=list(PRODUCER_ACTIONS), resources=[queue.queue_arn])
    )


@jsii.implements(lambda_.IDestination)
class FailureRecordsDestination:
    """A queue as a function's asynchronous on-failure destination, with only
    ``sqs:SendMessage`` granted to the function's role.

    Lambda sends the record to the queue with the function's execution role. CDK's
    ``aws_lambda_destinations.SqsDestination`` grants ``grant_send_messages``, which
    adds ``GetQueueAttributes`` and ``GetQueueUrl``; Lambda needs ``SendMessage`` (AWS SAM
    adds only "sqs:SendMessage ... for SQS queues" to a function for its dead-letter
    queue, https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-deadletterqueue.html).
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self,
        scope: Construct,
        fn: lambda_.IFunction,
        *,
        type: lambda_.DestinationType | None = None,
    ) -> lambda_.DestinationConfig:
        _send_only(fn, self._queue)
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


@jsii.implements(lambda_.IEventSourceDlq)
class FailedBatchesQueue:
    """A queue as a stream event source mapping's on-failure destination, with only
    ``sqs:SendMessage`` granted to the consumer's role (``event_sources.SqsDlq`` grants
    ``grant_send_messages``: see :class:`FailureRecordsDestination`)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        _send_only(target_handler, self._queue)
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


class DeadLetterQueue(Construct):
    """A queue that holds what could not be processed, kept as long as SQS allows.

    It keeps SQS's default ``RedriveAllowPolicy`` (``allowAll``: any queue of this
    account and Region may name it as its DLQ). ``byQueue`` would list the source queue's
    ARN while the source queue's ``RedrivePolicy`` lists this one's: a dependency cycle
    CloudFormation can only break with physical queue names, which stages may not use.

    Attributes
    ----------
    queue:
        The ``aws_sqs.Queue``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StageSettings, source: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
            removal_policy=settings.removal_policy,
        )
        resource = self.queue.node.default_child
        assert resource is not None
        reason = f"This queue is the dead-letter queue of {source}; it has none of its own."
        acknowledge(resource, "AwsSolutions-SQS3", reason)
        acknowledge(resource, "Serverless-SQSRedrivePolicy", reason)


class WorkQueue(Construct):
    """A queue that feeds one consumer, with a DLQ and a visibility timeout sized for it.

    Attributes
    ----------
    queue:
        The work queue.
    dead_letter_queue:
        Where a message goes after ``max_receive_count`` failed receives.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        consumer_timeout: cdk.Duration,
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        retention_period: cdk.Duration = cdk.Duration.days(4),
    ) -> None:
        super().__init__(scope, construct_id)
        self.visibility_timeout = cdk.Duration.seconds(
            consumer_timeout.to_seconds() * VISIBILITY_TO_CONSUMER_TIMEOUT
        )
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        self.dead_letter_queue = DeadLetterQueue(
            self, "DeadLetter", settings=settings, source=f"{construct_id}"
        ).queue
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=self.visibility_timeout,
            retention_period=retention_period,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
            removal_policy=settings.removal_policy,
        )

    def grant_send(self, producer: iam.IGrantable) -> None:
        """Let ``producer`` send to the queue (``SendMessage``/``SendMessageBatch``) only."""
        self.queue.grant(producer, *PRODUCER_ACTIONS)

    def add_consumer(
        self,
        consumer: QueueConsumer,
        *,
        batch_size: int = 10,
        max_concurrency: int = 5,
        max_batching_window: cdk.Duration | None = None,
    ) -> lambda_.EventSourceMapping:
        """Feed the queue to ``consumer`` with partial batch responses.

        The consumer reports failed records (``batchItemFailures``) so only those return
        to the queue; ``max_concurrency`` caps the pollers so a backlog cannot overrun
        what the consumer writes to.

        Raises
        ------
        ValueError
            If the queue's visibility timeout is under six times the consumer's timeout.
        """
        timeout = consumer.function.timeout
        assert timeout is not None
        needed = timeout.to_seconds() * VISIBILITY_TO_CONSUMER_TIMEOUT
        if self.visibility_timeout.to_seconds() < needed:
            raise ValueError(
                f"{self.node.id}: visibility timeout must be at least {needed} s for a "
                f"consumer with a {timeout.to_seconds()} s timeout"
            )
        self.queue.grant(consumer.role, *CONSUMER_ACTIONS)
        mapping = lambda_.EventSourceMapping(
            self,
            f"{consumer.node.id}Mapping",
            target=consumer.function,
            event_source_arn=self.queue.queue_arn,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            max_batching_window=max_batching_window,
            report_batch_item_failures=True,
        )
        # Lambda checks the consumer's permissions when it creates the mapping.
        mapping.node.add_dependency(consumer.role)
        resource = mapping.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS mappings take no on-failure destination: failed messages return to the "
            "queue and move to its redrive DLQ after maxReceiveCount receives.",
        )
        return mapping
