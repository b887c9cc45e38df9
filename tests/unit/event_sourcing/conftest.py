"""Fixtures for event sourcing: the moto event table (with its stream), the bus with a
consumer queue, fresh handler modules, fake time, and drivers for the API and the
stream publisher that use real AWS event shapes."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tests.support import events as events_support
from tests.support import handlers as handler_modules
from tests.support.clients import CallLog
from tests.support.drivers import HandlerDriver, fresh_roles
from tests.support.events import HttpResponse, dynamodb_stream_event
from tests.support.fakes import ACCOUNT_ID, REGION, FakeClock, FakeSleep
from tests.support.moto_resources import StreamReader, create_queue, create_table, queue_arn
from tests.unit.conftest import STREAMS_CONFIG, StreamClients

TABLE_NAME = "event-sourcing-events-test"
BUS_NAME = "event-sourcing-bus-test"
CONSUMER_QUEUE = "event-sourcing-consumer-test"
FAILURE_QUEUE = "event-sourcing-publisher-failures-test"
EVENT_SOURCE = "serverless-patterns.accounts"
STAGE = "api"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
BOB_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/bob"
SNAPSHOT_INTERVAL = 5
#: The API's body limit, as the pattern's README gives it (account_models.MAX_BODY_BYTES).
MAX_BODY_BYTES = 1024
MAX_APPEND_ATTEMPTS = 4
HANDLER_MODULES = (
    "account_models",
    "account_parsing",
    "account_store",
    "account_service",
    "account_bus",
    "account_api",
    "account_publisher",
)


# --------------------------------------------------------------------------- events


def api_event(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """A REST proxy event on this pattern's stage (see ``tests.support.events``)."""
    return events_support.api_event(method, path, stage=STAGE, **kwargs)


def account_event(method: str, account_id: str, suffix: str = "", **kwargs: Any) -> dict[str, Any]:
    """``METHOD /accounts/{id}`` (plus ``suffix``, e.g. ``/events``) on this stage."""
    return api_event(
        method,
        f"/accounts/{account_id}{suffix}",
        resource=f"/accounts/{{account_id}}{suffix}",
        path_parameters={"account_id": account_id},
        **kwargs,
    )


def command_event(
    account_id: str,
    command: str,
    body: str | dict[str, Any] | None,
    *,
    headers: dict[str, str | None] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
    base64_body: bool = False,
    user_arn: str | None = ALICE_ARN,
) -> dict[str, Any]:
    """``POST /accounts/{id}/credit|withdraw``; a dict body is JSON-encoded."""
    return account_event(
        "POST",
        account_id,
        f"/{command}",
        body=body,
        base64_body=base64_body,
        headers=headers,
        multi_value_headers=multi_value_headers,
        user_arn=user_arn,
    )


# --------------------------------------------------------------------------- moto infra


@dataclass
class Infra:
    """The moto table, stream, bus and queues, and ways to look at them."""

    dynamodb: Any
    sqs: Any
    events: Any
    stream: StreamReader
    consumer_queue_url: str
    failure_queue_url: str

    def raw_items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"])

    def event_items(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Event items (attribute values), by account and version."""
        items = [i for i in self.raw_items() if i.get("kind", {}).get("S") == "event"]
        if account_id is not None:
            items = [i for i in items if i["account_id"]["S"] == account_id]
        return sorted(items, key=lambda i: (i["account_id"]["S"], int(i["version"]["N"])))

    def versions(self, account_id: str) -> list[int]:
        return [int(i["version"]["N"]) for i in self.event_items(account_id)]

    def snapshot(self, account_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=TABLE_NAME,
            Key={"account_id": {"S": account_id}, "version": {"N": "0"}},
            ConsistentRead=True,
        ).get("Item")
        return dict(item) if item else None

    def delete_snapshot(self, account_id: str) -> None:
        self.dynamodb.delete_item(
            TableName=TABLE_NAME, Key={"account_id": {"S": account_id}, "version": {"N": "0"}}
        )

    def new_stream_records(self) -> list[dict[str, Any]]:
        """Records added to the stream since the last call, in the Lambda shape."""
        return self.stream.new_records()

    def consumed(self) -> list[dict[str, Any]]:
        """Every domain event the bus delivered to the consumer queue (bodies parsed)."""
        bodies: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.consumer_queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.consumer_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def failure_messages(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.failure_queue_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


@pytest.fixture
def infra(
    aws_client: Callable[..., Any], stream_clients: StreamClients, monkeypatch: pytest.MonkeyPatch
) -> Infra:
    """Table (stream NEW_IMAGE, as the stack configures it), bus, queues and env."""
    dynamodb, sqs = stream_clients.dynamodb, stream_clients.sqs
    bus = aws_client("events")
    create_table(dynamodb, TABLE_NAME, ("account_id", "S"), ("version", "N"), stream=True)
    stream_arn = dynamodb.describe_table(TableName=TABLE_NAME)["Table"]["LatestStreamArn"]
    consumer_queue_url = create_queue(sqs, CONSUMER_QUEUE)
    failure_queue_url = create_queue(sqs, FAILURE_QUEUE)
    consumer_arn = queue_arn(sqs, consumer_queue_url)
    # A downstream consumer: a rule on the bus delivering every account event to a queue.
    bus.create_event_bus(Name=BUS_NAME)
    bus.put_rule(
        Name="all-account-events",
        EventBusName=BUS_NAME,
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
    )
    bus.put_targets(
        Rule="all-account-events",
        EventBusName=BUS_NAME,
        Targets=[{"Id": "consumer", "Arn": consumer_arn}],
    )
    handler_modules.set_function_environment(
        monkeypatch,
        "event-sourcing",
        {
            "EVENT_TABLE_NAME": TABLE_NAME,
            "SNAPSHOT_INTERVAL": str(SNAPSHOT_INTERVAL),
            "MAX_APPEND_ATTEMPTS": str(MAX_APPEND_ATTEMPTS),
            "IDEMPOTENCY_TTL_SECONDS": "86400",
            "EVENT_BUS_NAME": BUS_NAME,
            "EVENT_SOURCE": EVENT_SOURCE,
            "FAILURE_QUEUE_URL": failure_queue_url,
        },
    )
    return Infra(
        dynamodb=dynamodb,
        sqs=sqs,
        events=bus,
        stream=StreamReader(stream_clients.streams, stream_arn),
        consumer_queue_url=consumer_queue_url,
        failure_queue_url=failure_queue_url,
    )


#: Import a handler module anew, so its module-level clients bind to this test's moto.
import_fresh = functools.partial(handler_modules.import_fresh, modules=HANDLER_MODULES)


# --------------------------------------------------------------------------- handler drivers


@dataclass
class Bank(HandlerDriver):
    """The freshly imported ``account_*`` modules by role, the fakes installed in them,
    and call helpers."""

    sleep: FakeSleep
    infra: Infra
    calls: CallLog

    API_FUNCTION = "AccountApi"

    def open(self, **kwargs: Any) -> HttpResponse:
        return self.call_api(api_event("POST", "/accounts", resource="/accounts", **kwargs))

    def open_id(self) -> str:
        response = self.open()
        assert response.status == 201, response.body
        account_id: str = response.body["account_id"]
        return account_id

    def command(self, command: str, account_id: str, body: Any, **kwargs: Any) -> HttpResponse:
        """``POST`` a command; a plain int body is the amount (``{"amount": n}``)."""
        body = {"amount": body} if isinstance(body, int) and not isinstance(body, bool) else body
        return self.call_api(command_event(account_id, command, body, **kwargs))

    def credit(self, account_id: str, body: Any, **kwargs: Any) -> HttpResponse:
        return self.command("credit", account_id, body, **kwargs)

    def withdraw(self, account_id: str, body: Any, **kwargs: Any) -> HttpResponse:
        return self.command("withdraw", account_id, body, **kwargs)

    def get(self, account_id: str) -> HttpResponse:
        return self.call_api(account_event("GET", account_id))

    def history(self, account_id: str, **query: str) -> HttpResponse:
        return self.call_api(account_event("GET", account_id, "/events", query=query or None))

    def publish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the publisher with one batch, as the stream event source mapping does."""
        return self.invoke("publisher", dynamodb_stream_event(*records), "AccountPublisher")

    def competitor(self) -> Any:
        """Another API instance's view of the table: an EventStore on its own client."""
        client = boto3.client("dynamodb", region_name=REGION, config=STREAMS_CONFIG)
        return self.store.EventStore(client, TABLE_NAME)

    def dynamodb_clients(self) -> list[Any]:
        """Every DynamoDB client of the API module (its event stores' clients)."""
        stores = [v for v in vars(self.api).values() if isinstance(v, self.store.EventStore)]
        return list({id(store._client): store._client for store in stores}.values())

    def before_write(self, action: Callable[[int], None]) -> None:
        """Run ``action(n)`` before the handler's n-th write request (0-based) is sent.

        Each AWS request is atomic, so doing a competing write here is exactly what
        happens when another command commits between our read and our write.
        """
        counter = {"n": 0}

        def hook(**_: Any) -> None:
            n = counter["n"]
            counter["n"] += 1
            action(n)

        events = self.api.store._client.meta.events
        events.register("before-call.dynamodb.PutItem", hook)
        events.register("before-call.dynamodb.TransactWriteItems", hook)


@pytest.fixture
def bank(infra: Infra, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    """Fresh ``account_*`` modules, ``account_api`` and ``account_publisher`` wired to moto
    and fakes."""
    with fresh_roles(HANDLER_MODULES, prefix="account_") as roles:
        api = roles["api"]
        sleep = FakeSleep(clock)
        monkeypatch.setattr(api, "clock", clock)
        monkeypatch.setattr(api, "sleep", sleep)
        monkeypatch.setattr(api, "rng", random.Random(7))
        calls = CallLog()
        bank = Bank(roles=roles, clock=clock, sleep=sleep, infra=infra, calls=calls)
        # All of them: the snapshot is written on a client of its own.
        for client in bank.dynamodb_clients():
            client.meta.events.register("after-call.dynamodb", calls.hook)
        yield bank
