"""Fixtures for one-off schedules: moto table, schedule group and DLQ, fresh handler
modules, a fake clock, and drivers that play EventBridge Scheduler and Lambda.

moto stores schedules but never fires them, so ``Handlers.fire`` does what the Scheduler
does when a schedule comes due: it takes the schedule's real ``Target.Input``,
substitutes the context attributes and invokes the executor with it. ``deliver`` then
plays Lambda's asynchronous invocation: retries on error, and the destination record
(``Success`` or ``RetriesExhausted``) handed to the cleanup.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.support import events as events_support
from tests.support import handlers as handler_modules
from tests.support.drivers import HandlerDriver, fresh_roles
from tests.support.events import HttpResponse
from tests.support.fakes import ACCOUNT_ID, REGION, START, FakeClock
from tests.support.moto_resources import create_queue, create_table, queue_arn

TABLE_NAME = "one-off-schedules-test"
GROUP_NAME = "one-off-schedules-test-group"
DLQ_NAME = "one-off-schedules-dlq-test"
EXECUTOR_NAME = "ScheduleExecutor"
EXECUTOR_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{EXECUTOR_NAME}"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/test-scheduler-role"
STAGE = "api"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
BOB_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/bob"
HORIZON_SECONDS = 30 * 86_400
RETENTION_DAYS = 7
UNDELIVERED_AFTER_SECONDS = 2 * 3600 + 900
SCHEDULE_RETRY_ATTEMPTS = 3
SCHEDULE_MAX_EVENT_AGE_SECONDS = 3600
#: Lambda's asynchronous retries of the executor (the construct's default).
EXECUTOR_RETRY_ATTEMPTS = 2
HANDLER_MODULES = (
    "schedule_models",
    "schedule_parsing",
    "schedule_store",
    "schedule_views",
    "schedule_service",
    "schedule_cancel",
    "schedule_runs",
    "schedule_api",
    "schedule_executor",
    "schedule_cleanup",
)


def in_minutes(minutes: float, *, start: datetime = START) -> str:
    """An ``at`` value ``minutes`` after the fake clock's start, in UTC with ``Z``."""
    return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_attempt_fails(
    handlers: Any, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any]
) -> None:
    """Lambda's first attempt of the executor on ``event`` fails (a transient failure of
    the task) and gives the record back, PENDING with ``fired_at``; later ones run it."""
    runs = handlers.executor.schedule_runs
    task = runs.simulate_task
    attempts: list[Any] = []

    def fails_once(invocation: Any) -> Any:
        attempts.append(invocation)
        if len(attempts) == 1:
            raise runs.TaskFailedError("a transient failure")
        return task(invocation)

    monkeypatch.setattr(runs, "simulate_task", fails_once)
    with pytest.raises(runs.TaskFailedError):
        handlers.run_executor(event, request_id="event-1")


# --------------------------------------------------------------------------- events


def api_event(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """A REST proxy event on this pattern's stage (see ``tests.support.events``)."""
    return events_support.api_event(method, path, stage=STAGE, **kwargs)


def post_event(
    body: str | dict[str, Any] | None,
    *,
    headers: dict[str, str | None] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
    user_arn: str | None = ALICE_ARN,
) -> dict[str, Any]:
    """``POST /schedules``; a dict body is JSON-encoded."""
    return api_event(
        "POST",
        "/schedules",
        resource="/schedules",
        body=body,
        headers=headers,
        multi_value_headers=multi_value_headers,
        user_arn=user_arn,
    )


def item_event(method: str, schedule_id: str) -> dict[str, Any]:
    """``GET`` or ``DELETE /schedules/{schedule_id}``."""
    return api_event(
        method,
        f"/schedules/{schedule_id}",
        resource="/schedules/{schedule_id}",
        path_parameters={"schedule_id": schedule_id},
    )


# --------------------------------------------------------------------------- moto infra


@dataclass
class Infra:
    """The moto table, schedule group and DLQ, and ways to look at them."""

    dynamodb: Any
    scheduler: Any
    dead_letter_queue_arn: str

    def items(self) -> list[dict[str, Any]]:
        return handler_modules.table_items(self.dynamodb, TABLE_NAME)

    def item(self, schedule_id: str) -> dict[str, Any] | None:
        return handler_modules.table_item(
            self.dynamodb, TABLE_NAME, {"schedule_id": {"S": schedule_id}}
        )

    def schedule_names(self, group: str = GROUP_NAME) -> list[str]:
        pages = self.scheduler.get_paginator("list_schedules").paginate(GroupName=group)
        return sorted(s["Name"] for page in pages for s in page["Schedules"])

    def schedule(self, name: str, group: str = GROUP_NAME) -> dict[str, Any] | None:
        try:
            response: dict[str, Any] = self.scheduler.get_schedule(Name=name, GroupName=group)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return None
        return response

    def forget_scheduled(self, schedule_id: str) -> None:
        """Remove a record's ``scheduled`` mark, as if the attempt that created its
        schedule had died before writing it (or never got to create one)."""
        self.dynamodb.update_item(
            TableName=TABLE_NAME,
            Key={"schedule_id": {"S": schedule_id}},
            UpdateExpression="REMOVE scheduled",
        )

    def delete_schedule(self, name: str, group: str = GROUP_NAME) -> None:
        """What ``ActionAfterCompletion: DELETE`` does once the Scheduler is done."""
        self.scheduler.delete_schedule(Name=name, GroupName=group)


@pytest.fixture
def infra(aws_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Infra:
    """Table, schedule group and DLQ on moto, and the environment the construct sets."""
    dynamodb = aws_client("dynamodb")
    scheduler = aws_client("scheduler")
    sqs = aws_client("sqs")
    create_table(dynamodb, TABLE_NAME, ("schedule_id", "S"))
    scheduler.create_schedule_group(Name=GROUP_NAME)
    dlq_arn = queue_arn(sqs, create_queue(sqs, DLQ_NAME))
    handler_modules.set_function_environment(
        monkeypatch,
        "one-off-schedules",
        {
            "SCHEDULE_TABLE_NAME": TABLE_NAME,
            "SCHEDULE_GROUP_NAME": GROUP_NAME,
            "EXECUTOR_FUNCTION_ARN": EXECUTOR_ARN,
            "SCHEDULER_ROLE_ARN": SCHEDULER_ROLE_ARN,
            "SCHEDULE_DEAD_LETTER_QUEUE_ARN": dlq_arn,
            "SCHEDULE_HORIZON_SECONDS": str(HORIZON_SECONDS),
            "SCHEDULE_RETRY_ATTEMPTS": str(SCHEDULE_RETRY_ATTEMPTS),
            "SCHEDULE_MAX_EVENT_AGE_SECONDS": str(SCHEDULE_MAX_EVENT_AGE_SECONDS),
            "RECORD_RETENTION_DAYS": str(RETENTION_DAYS),
            "UNDELIVERED_AFTER_SECONDS": str(UNDELIVERED_AFTER_SECONDS),
        },
    )
    return Infra(dynamodb=dynamodb, scheduler=scheduler, dead_letter_queue_arn=dlq_arn)


#: Import a handler module anew, so its module-level clients bind to this test's moto.
import_fresh = functools.partial(handler_modules.import_fresh, modules=HANDLER_MODULES)


# --------------------------------------------------------------------------- drivers


@dataclass
class Delivery:
    """One asynchronous invocation of the executor as Lambda ran it."""

    event: dict[str, Any]
    request_id: str
    attempts: int
    response: dict[str, Any] | None
    error: BaseException | None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Handlers(HandlerDriver):
    """The freshly imported ``schedule_*`` modules by role, the fake clock, and drivers
    for every event source."""

    infra: Infra

    API_FUNCTION = "ScheduleApi"

    # ------------------------------------------------------------------ API Gateway

    def post(self, body: str | dict[str, Any] | None, **kwargs: Any) -> HttpResponse:
        return self.call_api(post_event(body, **kwargs))

    def create(self, body: dict[str, Any], **kwargs: Any) -> str:
        response = self.post(body, **kwargs)
        assert response.status == 201, response.body
        return str(response.body["schedule_id"])

    def get(self, schedule_id: str) -> HttpResponse:
        return self.call_api(item_event("GET", schedule_id))

    def cancel(self, schedule_id: str) -> HttpResponse:
        return self.call_api(item_event("DELETE", schedule_id))

    # ------------------------------------------------------------------ Scheduler

    def fire(
        self, schedule_id: str, *, attempt_number: int = 1, execution_id: str | None = None
    ) -> dict[str, Any]:
        """The executor's event when the schedule comes due: its real input, substituted.

        Moves the fake clock to the schedule's time first.
        """
        schedule = self.infra.schedule(schedule_id)
        assert schedule is not None, f"schedule {schedule_id} does not exist"
        expression = schedule["ScheduleExpression"]
        scheduled_time = datetime.fromisoformat(expression[3:-1] + "+00:00")
        if self.clock.now < scheduled_time:
            self.clock.now = scheduled_time
        event: dict[str, Any] = events_support.scheduler_target_input(
            schedule["Target"]["Input"],
            schedule_arn=schedule["Arn"],
            scheduled_time=scheduled_time,
            execution_id=execution_id,
            attempt_number=attempt_number,
        )
        return event

    # ------------------------------------------------------------------ Lambda

    def run_executor(
        self, event: dict[str, Any], *, request_id: str | None = None, remaining_ms: int = 30_000
    ) -> dict[str, Any]:
        request_id = request_id or str(uuid.uuid4())
        return self.invoke(
            "executor", event, EXECUTOR_NAME, remaining_ms=remaining_ms, aws_request_id=request_id
        )

    def run_cleanup(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.invoke("cleanup", record, "ScheduleCleanup")

    def invoke_async(self, event: dict[str, Any]) -> Delivery:
        """Lambda's asynchronous invocation of the executor: retries on error (one
        minute, then two minutes apart) and the destination record it would send.

        Every attempt gets the same request id, as observed on Lambda; the executor does
        not depend on it (a failed attempt releases its lease before raising).
        """
        request_id = str(uuid.uuid4())
        response: dict[str, Any] | None = None
        error: BaseException | None = None
        attempts = 0
        for delay_seconds in [0, 60, 120][: EXECUTOR_RETRY_ATTEMPTS + 1]:
            self.clock.advance(delay_seconds)
            attempts += 1
            try:
                response = self.run_executor(event, request_id=request_id)
            except Exception as exc:
                error = exc
                continue
            error = None
            break
        if error is None:
            condition, payload = "Success", response
        else:
            condition = "RetriesExhausted"
            payload = events_support.lambda_error_payload(
                type(error).__name__, str(error), request_id=request_id
            )
        record = events_support.lambda_destination_record(
            event,
            function_name=EXECUTOR_NAME,
            condition=condition,
            response_payload=payload,
            approximate_invoke_count=attempts,
            request_id=request_id,
            timestamp=self.clock.now,
        )
        return Delivery(
            event=event,
            request_id=request_id,
            attempts=attempts,
            response=response,
            error=error,
            record=record,
        )

    def deliver(self, event: dict[str, Any]) -> Delivery:
        """The whole run: the executor (with Lambda's retries), then its destination."""
        delivery = self.invoke_async(event)
        self.run_cleanup(delivery.record)
        return delivery


@pytest.fixture
def handlers(infra: Infra, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Handlers]:
    """Fresh modules wired to moto and fake time."""
    with fresh_roles(HANDLER_MODULES, prefix="schedule_") as roles:
        for role in ("api", "executor", "cleanup"):
            monkeypatch.setattr(roles[role], "clock", clock)
        yield Handlers(roles=roles, clock=clock, infra=infra)


# --------------------------------------------------------------------------- schedule API helpers

PAYLOAD = {"order_id": "o-123", "amount": 12.5, "items": [1, 2, 3]}


def assert_nothing_created(infra: Any) -> None:
    assert infra.items() == []
    assert infra.schedule_names() == []
