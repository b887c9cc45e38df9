"""Pattern 3, event sourcing: a bank account as immutable events, snapshots, a stream."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from blocks.function import Invocation
from blocks.pattern_construct import ApiThrottling, PatternConstruct
from blocks.queue import DeadLetterQueue
from blocks.stage_settings import StageSettings
from blocks.stream import grant_stream_read, stream_mapping
from blocks.table import DataTable, number_key, string_key

#: The Lambda code root beside this module: one asset for all of the pattern's functions.
RUNTIME_DIR = Path(__file__).resolve().with_name("runtime")

#: The API's contract, generated from the handler (``make api-docs``): its request models.
OPENAPI_DOCUMENT = Path(__file__).resolve().with_name("openapi.json")

# Only events reach the publisher: snapshots (version 0) and idempotency records are
# filtered out. AWS documents DynamoDB filters on the "dynamodb" key only, so the filter
# does not test eventName: REMOVE records carry no NewImage, and event items are never
# modified (conditional PutItem, no UpdateItem permission); the publisher re-checks it.
NEW_EVENTS_FILTER = {
    "dynamodb": {"NewImage": {"kind": {"S": lambda_.FilterRule.is_equal("event")}}},
}


class EventSourcing(PatternConstruct):
    """Bank accounts stored as events, with snapshots and optimistic locking.

    A REST API appends events (AccountCreated, AccountCredited, AccountWithdrawn) to
    ``event_table`` keyed by account id + version; each command appends version n+1
    with ``attribute_not_exists`` and retries a bounded number of times on a conflict.
    Every ``snapshot_interval``-th event refreshes the account's snapshot (inline, best
    effort), so a balance read is a GetItem and one Query of fewer than K events. The
    table's stream feeds ``publisher_function``, which puts each new event on
    ``event_bus`` as a domain event.

    Attributes
    ----------
    event_table:
        Events, snapshots (version 0) and idempotency records (TTL ``expires_at``);
        stream ``NEW_IMAGE``.
    event_bus:
        The bus the domain events go to (owned here: consumers add rules to it).
    api_function, publisher_function:
        The two functions; each has its own role.
    publisher_failure_queue:
        Where stream records go that could not be published (mapping on-failure
        destination) and poison records the publisher set aside.
    publisher_mapping:
        The stream event source mapping.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        snapshot_interval: int = 10,
        max_append_attempts: int = 8,
        idempotency_ttl: cdk.Duration = cdk.Duration.hours(24),
        event_source: str = "serverless-patterns.accounts",
        publisher_batch_size: int = 10,
        publisher_retry_attempts: int = 5,
        publisher_max_record_age: cdk.Duration = cdk.Duration.hours(6),
        api_throttling: ApiThrottling = ApiThrottling(write_rate_limit=20, write_burst_limit=40),
    ) -> None:
        super().__init__(scope, construct_id, settings=settings, code=RUNTIME_DIR)
        if snapshot_interval < 1 or max_append_attempts < 1:
            raise ValueError("snapshot_interval and max_append_attempts must be at least 1")

        self.event_table = DataTable(
            self,
            "EventTable",
            settings=settings,
            partition_key=string_key("account_id"),
            sort_key=number_key("version"),
            # TTL on expires_at (the default): only idempotency records carry it; events
            # and snapshots never expire.
            # The publisher needs only the inserted event.
            stream=dynamodb.StreamViewType.NEW_IMAGE,
        ).table
        self.event_bus = events.EventBus(
            self,
            "EventBus",
            # CloudFormation requires a bus name (unique per account and region): the
            # stack name starts with the stage, so stages never share a bus.
            event_bus_name=f"{cdk.Stack.of(self).stack_name}-{construct_id}",
            description=f"Account domain events ({settings.stage_name})",
        )
        # Kept with a persistent stage, except when the stack operation that created it
        # rolls back: a bus kept then would hold its fixed name, and the next deploy of
        # the stack would fail on it (the generated names of the other kept resources
        # never clash).
        self.event_bus.apply_removal_policy(
            cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
            if settings.persistent
            else settings.removal_policy
        )

        # TransactWriteItems is authorized by the PutItem of each item it writes.
        self.api_function = self.make_function.api_function(
            "AccountApi",
            handler="account_api.handler",
            description="Bank account commands and queries over an event store",
            table=self.event_table,
            table_actions=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
            environment={
                "EVENT_TABLE_NAME": self.event_table.table_name,
                "SNAPSHOT_INTERVAL": str(snapshot_interval),
                "MAX_APPEND_ATTEMPTS": str(max_append_attempts),
                "IDEMPOTENCY_TTL_SECONDS": str(int(idempotency_ttl.to_seconds())),
            },
        )
        self.publisher_failure_queue = DeadLetterQueue(
            self,
            "PublisherFailureQueue",
            settings=settings,
            source="the account event publisher (unpublishable stream records)",
        ).queue
        self.publisher_function = self.make_function(
            "AccountPublisher",
            handler="account_publisher.handler",
            description="Publishes new account events from the stream to EventBridge",
            timeout=cdk.Duration.seconds(30),
            invocation=Invocation.SYNCHRONOUS,
            environment={
                "EVENT_BUS_NAME": self.event_bus.event_bus_name,
                "EVENT_SOURCE": event_source,
                "FAILURE_QUEUE_URL": self.publisher_failure_queue.queue_url,
            },
        )

        grant_stream_read(self.event_table, self.publisher_function)
        # Its own source only: a publisher free to put any source could pass its events
        # off as another domain's on a bus they share (events:source, "Using IAM policy
        # conditions in Amazon EventBridge"). The key is multivalued (ArrayOfString in the
        # Service Authorization Reference), so a set operator, and Null false: ForAllValues
        # alone would hold for a request without the key.
        self.publisher_function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[self.event_bus.event_bus_arn],
                conditions={
                    "ForAllValues:StringEquals": {"events:source": [event_source]},
                    "Null": {"events:source": "false"},
                },
            )
        )
        # sqs:SendMessage on the failure queue comes with the mapping's on-failure queue.
        self.publisher_mapping = stream_mapping(
            self,
            "PublisherMapping",
            table=self.event_table,
            consumer=self.publisher_function,
            event_filter=NEW_EVENTS_FILTER,
            failure_queue=self.publisher_failure_queue,
            batch_size=publisher_batch_size,
            retry_attempts=publisher_retry_attempts,
            max_record_age=publisher_max_record_age,
            # One batch per shard at a time: the events of an account, which normally
            # share a shard, are published in order (a best effort: see the README).
            parallelization_factor=1,
        )

        self.add_api(
            "Event-sourced bank accounts",
            api_throttling,
            # Commands write; reads are cheaper: commands get a lower limit.
            write_methods=[
                "/accounts/POST",
                "/accounts/{account_id}/credit/POST",
                "/accounts/{account_id}/withdraw/POST",
            ],
            openapi=OPENAPI_DOCUMENT,
        )
        handler = self.api_function.function
        account = ("account_id",)
        # POST /accounts takes no body or {} (an optional body in the document: no
        # request model, which would also refuse the empty body); the handler checks it.
        self.api.add_route("POST", "/accounts", handler)
        for command in ("credit", "withdraw"):
            self.api.add_route(
                "POST",
                f"/accounts/{{account_id}}/{command}",
                handler,
                required_path_parameters=account,
            )
        self.api.add_route(
            "GET", "/accounts/{account_id}", handler, required_path_parameters=account
        )
        self.api.add_route(
            "GET", "/accounts/{account_id}/events", handler, required_path_parameters=account
        )
