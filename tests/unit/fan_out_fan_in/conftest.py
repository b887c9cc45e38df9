"""Fixtures for fan-out/fan-in: moto tables (with the job stream), subtask queue with
its DLQ, fresh handler modules, fake time, and drivers that play the event source
mappings (SQS poller and the filtered DynamoDB stream) against moto."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.support import events as events_support
from tests.support import handlers as handler_modules
from tests.support.clients import SerializedClient
from tests.support.drivers import HandlerDriver, fresh_roles
from tests.support.events import HttpResponse, sqs_event
from tests.support.fakes import ACCOUNT_ID, FakeClock, FakeSleep
from tests.support.moto_resources import StreamReader, create_queue, create_table, queue_arn
from tests.unit.conftest import StreamClients

JOB_TABLE = "fan-out-jobs-test"
RESULT_TABLE = "fan-out-results-test"
QUEUE_NAME = "fan-out-subtasks-test"
DLQ_NAME = "fan-out-subtasks-dlq-test"
STAGE = "api"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
JOB_TIMEOUT_SECONDS = 900
RETRY_AFTER_SECONDS = 2
JOB_RETENTION_DAYS = 7
MAX_RECEIVE_COUNT = 3
HANDLER_MODULES = (
    "fan_out_models",
    "fan_out_messages",
    "fan_out_store",
    "fan_out_views",
    "fan_out_service",
    "fan_out_gather",
    "fan_out_api",
    "fan_out_worker",
    "fan_out_reducer",
)

# The reducer mapping's filter, as patterns/fan_out_fan_in/construct.py deploys it (the infra
# test asserts the template carries exactly this pattern).
REDUCER_FILTER = {
    "dynamodb": {"NewImage": {"remaining": {"N": ["0"]}, "status": {"S": ["RUNNING"]}}},
}


def matches_filter(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Lambda event filtering for the exact-match subset the reducer filter uses."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        if isinstance(expected, dict):
            if not isinstance(event[key], dict) or not matches_filter(expected, event[key]):
                return False
        elif event[key] not in expected:
            return False
    return True


# --------------------------------------------------------------------------- events


def api_event(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    return events_support.api_event(method, path, stage=STAGE, **kwargs)


post_jobs_event = functools.partial(events_support.post_jobs_event, stage=STAGE)


get_job_event = functools.partial(events_support.get_job_event, stage=STAGE)


def sqs_record(body: str, **kwargs: Any) -> dict[str, Any]:
    return events_support.sqs_record(body, queue_name=QUEUE_NAME, **kwargs)


# --------------------------------------------------------------------------- moto infra


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    values = {k: deserializer.deserialize(v) for k, v in item.items()}
    return json.loads(json.dumps(values, default=lambda d: int(d) if d % 1 == 0 else float(d)))


@dataclass
class Infra:
    """The moto tables, queues and job stream, and ways to look at them."""

    dynamodb: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    stream: StreamReader

    def job(self, job_id: str) -> dict[str, Any] | None:
        raw = self.dynamodb.get_item(
            TableName=JOB_TABLE, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        return None if raw is None else _plain(raw)

    def jobs(self) -> list[dict[str, Any]]:
        return [_plain(i) for i in self.dynamodb.scan(TableName=JOB_TABLE)["Items"]]

    def results(self, job_id: str | None = None) -> list[dict[str, Any]]:
        items = [_plain(i) for i in self.dynamodb.scan(TableName=RESULT_TABLE)["Items"]]
        items = [i for i in items if job_id is None or i["job_id"] == job_id]
        return sorted(items, key=lambda i: (i["job_id"], i["subtask"]))

    def depth(self, queue_url: str) -> int:
        return handler_modules.queue_depth(self.sqs, queue_url)

    def queue_depth(self) -> int:
        return self.depth(self.queue_url)

    def dlq_bodies(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def receive_records(self, limit: int = 10) -> list[dict[str, Any]]:
        """Receive up to ``limit`` visible messages as Lambda SQS event records."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(limit, 10),
            AttributeNames=["All"],
        ).get("Messages", [])
        records = []
        for message in messages:
            record = sqs_record(
                message["Body"],
                message_id=message["MessageId"],
                receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
            )
            record["receiptHandle"] = message["ReceiptHandle"]
            records.append(record)
        return records

    def stream_records(self) -> list[dict[str, Any]]:
        """New job-table stream records since the last call, as Lambda delivers them."""
        return self.stream.new_records()


@pytest.fixture
def infra(stream_clients: StreamClients, monkeypatch: pytest.MonkeyPatch) -> Infra:
    """Tables, stream, queue and DLQ on moto, and the functions' environment."""
    dynamodb, sqs = stream_clients.dynamodb, stream_clients.sqs
    created = create_table(dynamodb, JOB_TABLE, ("job_id", "S"), stream=True)
    create_table(dynamodb, RESULT_TABLE, ("job_id", "S"), ("subtask", "N"))
    dlq_url = create_queue(sqs, DLQ_NAME)
    queue_url = create_queue(
        sqs,
        QUEUE_NAME,
        dead_letter_arn=queue_arn(sqs, dlq_url),
        max_receive_count=MAX_RECEIVE_COUNT,
    )
    handler_modules.set_function_environment(
        monkeypatch,
        "fan-out-fan-in",
        {
            "JOB_TABLE_NAME": JOB_TABLE,
            "RESULT_TABLE_NAME": RESULT_TABLE,
            "SUBTASK_QUEUE_URL": queue_url,
            "JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT_SECONDS),
            "RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
            "JOB_RETENTION_DAYS": str(JOB_RETENTION_DAYS),
            "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            "SEND_CONCURRENCY": "4",
        },
    )
    return Infra(
        dynamodb=dynamodb,
        sqs=sqs,
        queue_url=queue_url,
        dlq_url=dlq_url,
        stream=StreamReader(stream_clients.streams, created["TableDescription"]["LatestStreamArn"]),
    )


#: Import a handler module anew, so its module-level clients bind to this test's moto.
import_fresh = functools.partial(handler_modules.import_fresh, modules=HANDLER_MODULES)


# --------------------------------------------------------------------------- drivers


@dataclass
class Handlers(HandlerDriver):
    """The freshly imported ``fan_out_*`` modules by role, the fakes installed in them,
    and call helpers."""

    sleep: FakeSleep
    infra: Infra

    API_FUNCTION = "FanOutApi"
    API_REMAINING_MS = 28_000

    def post(self, body: str | dict[str, Any] | None, **kwargs: Any) -> HttpResponse:
        return self.call_api(post_jobs_event(body, **kwargs))

    def get(self, job_id: str) -> HttpResponse:
        return self.call_api(get_job_event(job_id))

    def run_worker(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.invoke("worker", event, "FanOutWorker")

    def run_reducer(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.invoke("reducer", event, "FanOutReducer")

    def poll_queue(self, *, duplicate: bool = False) -> dict[str, Any] | None:
        """One poll of the SQS mapping: one batch of up to 10, deleted where it succeeded.

        Failed messages become visible again at once (as if their visibility timeout had
        passed). ``duplicate`` delivers the same batch twice (at-least-once delivery).
        """
        records = self.infra.receive_records()
        if not records:
            return None
        response = self.run_worker(sqs_event(*records))
        if duplicate:
            again = self.run_worker(sqs_event(*records))
            assert again == response
        handler_modules.settle_batch(self.infra.sqs, self.infra.queue_url, records, response)
        return response

    def pump_stream(self, *, duplicate: bool = False) -> list[dict[str, Any]]:
        """One poll of the stream mapping: records through the filter to the reducer."""
        records = [r for r in self.infra.stream_records() if matches_filter(REDUCER_FILTER, r)]
        if records:
            response = self.run_reducer(events_support.dynamodb_stream_event(*records))
            assert response == {"batchItemFailures": []}
            if duplicate:
                self.run_reducer(events_support.dynamodb_stream_event(*records))
        return records

    def run_to_completion(self, *, duplicate: bool = False, max_polls: int = 10_000) -> int:
        """Poll the queue and the stream until both are quiet; returns the polls made."""
        polls = 0
        while polls < max_polls:
            response = self.poll_queue(duplicate=duplicate)
            self.pump_stream(duplicate=duplicate)
            if response is None:
                return polls
            polls += 1
        raise AssertionError("queue did not drain")


@pytest.fixture
def handlers(infra: Infra, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Handlers]:
    """Fresh handler modules wired to moto and fake time."""
    with fresh_roles(HANDLER_MODULES, prefix="fan_out_") as roles:
        api, worker, reducer = roles["api"], roles["worker"], roles["reducer"]
        sleep = FakeSleep(clock)
        for module in (api, worker):
            monkeypatch.setattr(module, "clock", clock)
            monkeypatch.setattr(module, "sleep", sleep)
        monkeypatch.setattr(reducer, "clock", clock)
        api.store.sleep = sleep
        monkeypatch.setattr(api.queue, "_client", SerializedClient(api.queue._client))
        reducer.store.sleep = sleep
        yield Handlers(roles=roles, clock=clock, sleep=sleep, infra=infra)
