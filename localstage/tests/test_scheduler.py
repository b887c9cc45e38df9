"""EventBridge Scheduler: one-time schedules fire once, when due, with their attributes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from stage_queues import collect, queue_url

from localstage.sources.scheduler import due_time, substitute
from localstage.stage import LocalStage
from localstage.target import LocalTarget


def test_at_expressions_are_read_in_their_time_zone() -> None:
    assert due_time("at(2026-07-01T12:00:00)", "Europe/Paris") == datetime(
        2026, 7, 1, 10, 0, tzinfo=UTC
    )
    assert due_time("at(2026-07-01T12:00:00)", None) == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert due_time("rate(5 minutes)", None) is None


def test_context_attributes_are_substituted() -> None:
    text = substitute(
        '{"a": "<aws.scheduler.schedule-arn>", "t": "<aws.scheduler.scheduled-time>", '
        '"e": "<aws.scheduler.execution-id>", "n": <aws.scheduler.attempt-number>}',
        arn="arn:s",
        scheduled=datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        execution_id="x-1",
        attempt=1,
    )
    assert json.loads(text) == {"a": "arn:s", "t": "2026-07-01T10:00:00Z", "e": "x-1", "n": 1}


def _create(stage: LocalStage, name: str, *, at: datetime, function: str, delete: bool) -> str:
    target = LocalTarget(stage)
    scheduler = stage.cloud.client("scheduler")
    resources = stage.deployment.stacks["test-Tiny"].resources
    local = at.astimezone(ZONE)
    response = scheduler.create_schedule(
        Name=name,
        GroupName=target.output("test-Tiny", "GroupName"),
        ScheduleExpression=f"at({local.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="America/New_York",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": stage.function(function).spec.arn,
            "RoleArn": resources["SchedulerRole"].attributes["Arn"],
            "Input": json.dumps(
                {
                    "schedule": "<aws.scheduler.schedule-arn>",
                    "time": "<aws.scheduler.scheduled-time>",
                    "execution": "<aws.scheduler.execution-id>",
                    "attempt": "<aws.scheduler.attempt-number>",
                }
            ),
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": resources["ScheduleDeadLetters"].attributes["Arn"]},
        },
        ActionAfterCompletion="DELETE" if delete else "NONE",
    )
    return str(response["ScheduleArn"])


from zoneinfo import ZoneInfo  # noqa: E402

ZONE = ZoneInfo("America/New_York")


def _messages(stage: LocalStage, logical_id: str, count: int) -> list[dict[str, Any]]:
    return collect(stage, queue_url(stage, logical_id), count)


def test_a_due_schedule_fires_once_with_substituted_attributes_and_is_deleted(
    async_stage: LocalStage,
) -> None:
    # GIVEN a one-time schedule 2 minutes ahead (2 s at the test clock's 60x)
    scheduler = async_stage.cloud.client("scheduler")
    group = LocalTarget(async_stage).output("test-Tiny", "GroupName")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    arn = _create(async_stage, "fires", at=due, function="Recorder", delete=True)

    # WHEN it comes due
    [message] = _messages(async_stage, "Records", 1)

    # THEN the target got the input with the context attributes filled in
    event = json.loads(message["Body"])
    assert event["schedule"] == arn
    assert event["time"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["attempt"] == "1"
    assert len(event["execution"]) == 36
    # AND ActionAfterCompletion DELETE removed the schedule
    LocalTarget(async_stage).wait_for(
        "the schedule to be deleted",
        lambda: not scheduler.list_schedules(GroupName=group)["Schedules"],
        timeout=5,
    )


def test_a_schedule_whose_role_may_not_invoke_the_target_goes_to_its_dlq(
    async_stage: LocalStage,
) -> None:
    # GIVEN a schedule targeting a function its role may not invoke
    due = datetime.now(UTC) + timedelta(seconds=30)
    arn = _create(async_stage, "denied", at=due, function="Echo", delete=False)

    # WHEN it comes due
    [message] = _messages(async_stage, "ScheduleDeadLetters", 1)

    # THEN the event is in the schedule's DLQ with the reason; the schedule stays (NONE)
    attributes = message["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "AccessDeniedException"
    assert attributes["SCHEDULE_ARN"]["StringValue"] == arn
    assert json.loads(message["Body"])["schedule"] == arn
    scheduler = async_stage.cloud.client("scheduler")
    group = LocalTarget(async_stage).output("test-Tiny", "GroupName")
    assert scheduler.get_schedule(Name="denied", GroupName=group)["Arn"] == arn
    scheduler.delete_schedule(Name="denied", GroupName=group)


def test_a_schedule_deleted_before_it_is_due_never_fires(async_stage: LocalStage) -> None:
    def recorder_schedule(name: str, minutes: int) -> None:
        due = datetime.now(UTC) + timedelta(minutes=minutes)
        _create(async_stage, name, at=due, function="Recorder", delete=True)

    # GIVEN a schedule due in 2 minutes of handler time (2 s here)
    scheduler = async_stage.cloud.client("scheduler")
    group = LocalTarget(async_stage).output("test-Tiny", "GroupName")
    recorder_schedule("cancelled", minutes=2)

    # WHEN it is deleted at once, and a later schedule fires after its due time
    scheduler.delete_schedule(Name="cancelled", GroupName=group)
    recorder_schedule("later", minutes=3)
    [message] = _messages(async_stage, "Records", 1)

    # THEN only the later one ran
    assert json.loads(message["Body"])["schedule"].endswith("/later")


def test_a_schedule_already_past_when_created_fires_at_once_and_says_so(
    async_stage: LocalStage,
) -> None:
    # GIVEN a one-time schedule whose time was ten minutes ago (CreateSchedule accepts it)
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    arn = _create(async_stage, "overdue", at=due, function="Recorder", delete=True)

    # WHEN the Scheduler source sees it THEN it fires (AWS does not document whether it
    # would) with its scheduled time as asked
    [message] = _messages(async_stage, "Records", 1)
    event = json.loads(message["Body"])
    assert (event["schedule"], event["time"]) == (arn, due.strftime("%Y-%m-%dT%H:%M:%SZ"))
    # AND the Scheduler log says it was already past
    log = async_stage.logs.path("Scheduler").read_text()
    assert f"schedule {arn}: at(" in log and "was already past" in log
