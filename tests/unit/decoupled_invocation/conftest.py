"""Fixtures for decoupled invocation: moto table and queue, fresh handler modules,
a fake clock, and builders for realistic API Gateway (REST v1) and SQS events."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from tests.support import events as events_support
from tests.support import handlers as handler_modules
from tests.support.drivers import HandlerDriver, fresh_roles
from tests.support.events import HttpResponse, sqs_event
from tests.support.fakes import ACCOUNT_ID, FakeClock, FakeSleep
from tests.support.moto_resources import create_queue, create_table

TABLE_NAME = "decoupled-invocation-jobs-test"
QUEUE_NAME = "decoupled-invocation-tasks-test"
STAGE = "api"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
BOB_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/bob"
JOB_TIMEOUT_SECONDS = 300
RETRY_AFTER_SECONDS = 2
JOB_RETENTION_DAYS = 7
HANDLER_MODULES = ("job_models", "job_store", "job_service", "job_runner", "job_api", "job_worker")


# --------------------------------------------------------------------------- events


def api_event(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """A REST proxy event on this pattern's stage (see ``tests.support.events``)."""
    return events_support.api_event(method, path, stage=STAGE, **kwargs)


def sqs_record(body: str, **kwargs: Any) -> dict[str, Any]:
    """An SQS record from the task queue."""
    return events_support.sqs_record(body, queue_name=QUEUE_NAME, **kwargs)


post_jobs_event = functools.partial(events_support.post_jobs_event, stage=STAGE)


get_job_event = functools.partial(events_support.get_job_event, stage=STAGE)


def task_record(job_id: str, **kwargs: Any) -> dict[str, Any]:
    """A record carrying the task message for ``job_id``."""
    return sqs_record(json.dumps({"job_id": job_id}), **kwargs)


# --------------------------------------------------------------------------- moto infra


@dataclass
class Infra:
    """The moto table and queue, and ways to look at them."""

    dynamodb: Any
    sqs: Any
    table_name: str
    queue_url: str

    def items(self) -> list[dict[str, Any]]:
        return handler_modules.table_items(self.dynamodb, self.table_name)

    def item(self, job_id: str) -> dict[str, Any] | None:
        return handler_modules.table_item(self.dynamodb, self.table_name, {"job_id": {"S": job_id}})

    def queue_depth(self) -> int:
        return handler_modules.queue_depth(self.sqs, self.queue_url)

    def receive_records(self) -> list[dict[str, Any]]:
        """Receive every visible message and turn it into Lambda SQS event records."""
        records: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return records
            for message in messages:
                record = sqs_record(
                    message["Body"],
                    message_id=message["MessageId"],
                    receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
                    message_attributes={
                        name: {
                            "stringValue": value.get("StringValue"),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value["DataType"],
                        }
                        for name, value in message.get("MessageAttributes", {}).items()
                    },
                )
                record["receiptHandle"] = message["ReceiptHandle"]
                records.append(record)


@pytest.fixture
def infra(aws_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Infra:
    """Table and queue on moto, and the environment the infra gives the functions."""
    dynamodb = aws_client("dynamodb")
    sqs = aws_client("sqs")
    create_table(dynamodb, TABLE_NAME, ("job_id", "S"))
    queue_url = create_queue(sqs, QUEUE_NAME)
    handler_modules.set_function_environment(
        monkeypatch,
        "decoupled-invocation",
        {
            "JOB_TABLE_NAME": TABLE_NAME,
            "TASK_QUEUE_URL": queue_url,
            "JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT_SECONDS),
            "RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
            "JOB_RETENTION_DAYS": str(JOB_RETENTION_DAYS),
        },
    )
    return Infra(dynamodb=dynamodb, sqs=sqs, table_name=TABLE_NAME, queue_url=queue_url)


#: Import a handler module anew, so its module-level clients bind to this test's moto.
import_fresh = functools.partial(handler_modules.import_fresh, modules=HANDLER_MODULES)


# --------------------------------------------------------------------------- handler drivers


@dataclass
class Handlers(HandlerDriver):
    """The freshly imported ``job_*`` modules by role, the fakes installed in them, and
    call helpers."""

    sleep: FakeSleep
    infra: Infra

    API_FUNCTION = "JobApi"

    def post(self, body: str | dict[str, Any] | None, **kwargs: Any) -> HttpResponse:
        return self.call_api(post_jobs_event(body, **kwargs))

    def get(self, job_id: str) -> HttpResponse:
        return self.call_api(get_job_event(job_id))

    def run_worker(self, event: dict[str, Any], *, remaining_ms: int = 30_000) -> dict[str, Any]:
        return self.invoke("worker", event, "JobWorker", remaining_ms=remaining_ms)

    def drain_queue(self) -> dict[str, Any]:
        """One poll of the event source mapping: deliver every visible message in one batch.

        Like the mapping, it deletes the messages that succeeded; failed ones become
        visible again at once (as if their visibility timeout had passed).
        """
        records = self.infra.receive_records()
        response = self.run_worker(sqs_event(*records))
        handler_modules.settle_batch(self.infra.sqs, self.infra.queue_url, records, response)
        return response


@pytest.fixture
def handlers(infra: Infra, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Handlers]:
    """Fresh role modules, ``job_api`` and ``job_worker`` wired to moto and fake time."""
    with fresh_roles(HANDLER_MODULES, prefix="job_") as roles:
        sleep = FakeSleep(clock)
        monkeypatch.setattr(roles["api"], "clock", clock)
        monkeypatch.setattr(roles["worker"], "clock", clock)
        monkeypatch.setattr(roles["worker"], "sleep", sleep)
        yield Handlers(roles=roles, clock=clock, sleep=sleep, infra=infra)


@pytest.fixture
def job_service_module(infra: Infra) -> Iterator[ModuleType]:
    """Only the ``job_service`` module (and the modules it imports), for tests of the
    logic without the handlers."""
    yield import_fresh("job_service")
    handler_modules.forget_modules(HANDLER_MODULES)


# --------------------------------------------------------------------------- job API helpers

VALID = {"task": "thumbnail.resize-v2", "input": "hello world", "duration_ms": 250}


def assert_nothing_written(infra: Any) -> None:
    assert infra.items() == []
    assert infra.queue_depth() == 0
