"""EventBridge Scheduler: one-time ``at(...)`` schedules fire when due.

moto stores schedules (created by handler code at run time) but never fires them.
This module lists them (every group) at once when one is created or changed
(:mod:`localstage.activity` wakes it), and every few seconds besides, and fires each
enabled one-time schedule once (looking it up again first: it may have been deleted):

- Due time: ``at(yyyy-mm-ddThh:mm:ss)`` in ``ScheduleExpressionTimezone`` (UTC by
  default). Handler code computes it in real time, so the wait from the schedule's
  creation (or last update) to its due time runs on the stage clock's speed: with
  ``--clock-speed 90`` a schedule due in 15 minutes fires 10 s after it was created
  (and up to 0.7 s later: see the window below).
  It fires at a random point of the window the Scheduler documents (:func:`firing_offset`,
  in stage time, seeded by the schedule's ARN and last change, so a run can be
  repeated): ``FlexibleTimeWindow`` ``OFF`` within the 60 s after the due time (its
  precision), ``FLEXIBLE`` within the ``MaximumWindowInMinutes`` after it; so a handler
  that assumes it runs at the second it asked for fails here too.
- The target ``Input`` gets the context attributes substituted:
  ``<aws.scheduler.schedule-arn>``, ``<aws.scheduler.scheduled-time>`` (UTC, ``Z``),
  ``<aws.scheduler.execution-id>`` and ``<aws.scheduler.attempt-number>``.
- Lambda targets are invoked asynchronously (as the Scheduler does), after checking
  that the schedule's ``RoleArn`` trusts ``scheduler.amazonaws.com`` (with
  ``aws:SourceAccount`` and ``aws:SourceArn`` = the schedule group in the context) and
  may ``lambda:InvokeFunction`` on the target. A denied
  or missing target is not retried: the event goes to the ``DeadLetterConfig`` queue
  (if the role may ``sqs:SendMessage`` to it) with the Scheduler's message attributes.
  Other failures are retried per ``RetryPolicy`` (``MaximumRetryAttempts``,
  ``MaximumEventAgeInSeconds``) with back-off in stage time.
- ``ActionAfterCompletion: DELETE`` deletes the schedule after its invocation (or after
  its last failed attempt); otherwise a fired one-time schedule stays, and never fires again.

``rate(...)`` and ``cron(...)`` schedules and non-Lambda targets are not emulated yet
(logged once each).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from localstage.cloud import ACCOUNT_ID
from localstage.invoke import InvokeError, lambda_service
from localstage.sources import EventSource, event_source
from localstage.sources.loop import SourceLoop
from localstage.sources.target_retries import string_attributes

if TYPE_CHECKING:
    from localstage.stage_view import StageView

#: How often due schedules are looked for (in what was listed: no request).
POLL_SECONDS = 0.2
#: How often schedules are listed when no change woke the source.
REFRESH_SECONDS = 2.0
_AT = re.compile(r"^at\((?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
#: Stage seconds between the Scheduler's attempts (it backs off exponentially).
RETRY_BASE_SECONDS = 60.0
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 185
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 86_400
#: How late after its due time a schedule without a flexible window may fire: the
#: Scheduler's 60-second precision.
PRECISION_SECONDS = 60.0


class ScheduleTargetError(Exception):
    """The Scheduler could not deliver to the target; ``retryable`` says if it tries again."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass
class PendingSchedule:
    """A one-time schedule waiting for its time (real epoch seconds ``fire_at``)."""

    arn: str
    name: str
    group: str
    due: datetime
    fire_at: float
    definition: dict[str, Any] = field(default_factory=dict)


def due_time(expression: str, timezone: str | None) -> datetime | None:
    """The UTC due time of ``at(...)`` in ``timezone``; None for other expressions."""
    match = _AT.match(expression.strip())
    if match is None:
        return None
    local = datetime.fromisoformat(match.group("time")).replace(tzinfo=ZoneInfo(timezone or "UTC"))
    return local.astimezone(UTC)


def firing_offset(window: dict[str, Any] | None, seed: str) -> float:
    """Stage seconds after its due time that a schedule with ``window`` fires: a random
    point of the window the Scheduler documents, seeded by ``seed`` (the same schedule
    version always gets the same point).

    ``OFF`` (or no window): within :data:`PRECISION_SECONDS` ("All schedule types on
    EventBridge Scheduler invoke their targets with 60 second precision ... set to run at
    1:00, it will invoke the target API between 1:00:00 and 1:00:59, assuming that a
    flexible time window is not set", User Guide, "Schedule types"), never before the
    due time. ``FLEXIBLE``: within ``MaximumWindowInMinutes`` after it ("it invokes the
    target within 15 minutes after the scheduled time", "Configuring flexible time
    windows").
    """
    if window and window.get("Mode") == "FLEXIBLE":
        width = float(window.get("MaximumWindowInMinutes") or 0) * 60.0
    else:
        width = PRECISION_SECONDS
    return random.Random(seed).uniform(0.0, width)


def substitute(text: str, *, arn: str, scheduled: datetime, execution_id: str, attempt: int) -> str:
    """The target input with the Scheduler's context attributes filled in."""
    values = {
        "<aws.scheduler.schedule-arn>": arn,
        "<aws.scheduler.scheduled-time>": scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


@event_source()
def scheduler(stage: StageView) -> list[EventSource]:
    # A schedule's target needs a role the Scheduler can assume: without one in the
    # stage, nothing could fire and listing schedules would only load moto.
    if not any(
        "scheduler.amazonaws.com" in json.dumps(role.properties.get("AssumeRolePolicyDocument"))
        for role in stage.deployment.resources("AWS::IAM::Role")
    ):
        return []
    return [SchedulerSource(stage)]


class SchedulerSource:
    """Fires the one-time schedules of every group when they are due."""

    description = "EventBridge Scheduler: one-time at() schedules -> Lambda (async)"

    def __init__(self, stage: StageView) -> None:
        self.stage = stage
        self._scheduler = stage.cloud.client("scheduler")
        self._pending: dict[str, PendingSchedule] = {}
        #: (arn, last modification) of schedules already handled: never fire twice.
        self._seen: set[tuple[str, str]] = set()
        self._logged: set[str] = set()
        self._wakeup = stage.activity.wakeup("scheduler")
        self._loop = SourceLoop("scheduler", join_seconds=5, wakeup=self._wakeup)
        self._stop = self._loop.stopping
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="scheduler")
        self.fired: list[dict[str, Any]] = []

    def start(self) -> None:
        self._loop.start(self._run)

    def stop(self) -> None:
        self._loop.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        listed_at = -REFRESH_SECONDS
        changed = True
        while not self._stop.is_set():
            changed = self._wakeup.wait(POLL_SECONDS) or changed
            since = time.monotonic() - listed_at
            # A burst of changes (a hundred schedules firing and deleting themselves)
            # is listed once per POLL_SECONDS, not once per change.
            if changed and since < POLL_SECONDS and self._stop.wait(POLL_SECONDS - since):
                return
            if self._stop.is_set():
                return
            try:
                if changed or time.monotonic() - listed_at >= REFRESH_SECONDS:
                    listed_at = time.monotonic()
                    self._refresh()
                    changed = False
                now = time.time()
                for arn, pending in list(self._pending.items()):
                    if pending.fire_at <= now:
                        del self._pending[arn]
                        self._pool.submit(self._fire, pending)
            except Exception as error:
                self._note(f"listing schedules failed: {error}")

    def _refresh(self) -> None:
        present: set[str] = set()
        paginator = self._scheduler.get_paginator("list_schedules")
        for page in paginator.paginate():
            for summary in page.get("Schedules", []):
                arn = summary["Arn"]
                present.add(arn)
                modified = summary.get("LastModificationDate") or summary.get("CreationDate")
                key = (arn, str(modified))
                if key in self._seen:
                    continue
                self._seen.add(key)
                self._pending.pop(arn, None)
                if summary.get("State") != "ENABLED":
                    continue
                self._track(summary, modified)
        for arn in list(self._pending):
            if arn not in present:  # deleted (cancelled) before it was due
                del self._pending[arn]

    def _track(self, summary: dict[str, Any], modified: Any) -> None:
        try:
            definition = self._scheduler.get_schedule(
                Name=summary["Name"], GroupName=summary["GroupName"]
            )
        except self._scheduler.exceptions.ResourceNotFoundException:
            return
        due = due_time(
            definition["ScheduleExpression"], definition.get("ScheduleExpressionTimezone")
        )
        if due is None:
            self._note(
                f"schedule {summary['Arn']}: {definition['ScheduleExpression']} is not "
                "emulated (only at(...) one-time schedules fire)"
            )
            return
        # Real epoch seconds, like the due time handler code computed.
        anchor = modified.timestamp() if isinstance(modified, datetime) else time.time()
        if due.timestamp() < anchor:
            # CreateSchedule accepts a past at() (LocalStack's AWS-validated test creates
            # at(2022-12-31T23:59:59) with a 200); whether it then fires is undocumented.
            self._note(
                f"schedule {summary['Arn']}: {definition['ScheduleExpression']} was already "
                "past when the schedule was created or updated; the Scheduler accepts that, "
                "and does not document whether it fires: localstage fires it within the window"
            )
        offset = firing_offset(definition.get("FlexibleTimeWindow"), f"{summary['Arn']}|{modified}")
        delay = max(0.0, due.timestamp() + offset - anchor)
        self._pending[summary["Arn"]] = PendingSchedule(
            arn=summary["Arn"],
            name=summary["Name"],
            group=summary["GroupName"],
            due=due,
            fire_at=anchor + self.stage.clock.real_seconds(delay),
            definition=definition,
        )

    # ------------------------------------------------------------------ firing

    def _fire(self, pending: PendingSchedule) -> None:
        try:
            # The schedule may have been deleted or changed since it was listed.
            definition = self._scheduler.get_schedule(Name=pending.name, GroupName=pending.group)
        except self._scheduler.exceptions.ResourceNotFoundException:
            return
        except Exception as error:
            self._note(f"schedule {pending.arn}: {error}")
            return
        target = definition["Target"]
        retry = target.get("RetryPolicy") or {}
        max_retries = int(retry.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS))
        max_age = float(retry.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_SECONDS))
        execution_id = str(uuid.uuid4())
        started = self.stage.clock.time()
        attempt = 0
        while True:
            attempt += 1
            payload = substitute(
                target.get("Input", "{}"),
                arn=pending.arn,
                scheduled=pending.due,
                execution_id=execution_id,
                attempt=attempt,
            )
            try:
                request_id = self._invoke(target, payload, pending)
            except ScheduleTargetError as error:
                out_of_time = self.stage.clock.time() - started > max_age
                if error.retryable and attempt <= max_retries and not out_of_time:
                    delay = RETRY_BASE_SECONDS * 2 ** min(attempt - 1, 6)
                    if self.stage.clock.sleep(delay):
                        continue
                    return
                self._dead_letter(pending, target, payload, execution_id, attempt, error)
                outcome = {"status": "failed", "error": error.code}
                break
            outcome = {"status": "invoked", "requestId": request_id}
            break
        self.fired.append({"arn": pending.arn, "executionId": execution_id, **outcome})
        if definition.get("ActionAfterCompletion") == "DELETE":
            with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                self._scheduler.delete_schedule(Name=pending.name, GroupName=pending.group)

    def _invoke(self, target: dict[str, Any], payload: str, pending: PendingSchedule) -> str:
        arn = str(target["Arn"])
        if arn.split(":")[2] != "lambda":
            raise ScheduleTargetError(
                "NotEmulated", f"targets of {arn.split(':')[2]} are not emulated", retryable=False
            )
        service = lambda_service(self.stage)
        try:
            function = service.function(arn)
        except InvokeError as error:
            raise ScheduleTargetError(error.error_type, error.message, retryable=False) from None
        role = str(target.get("RoleArn", ""))
        # Scheduler assumes the execution role as scheduler.amazonaws.com, naming the
        # account and the schedule group (Scheduler User Guide, "Set up the execution role").
        trust_context = {"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": _group_arn(pending)}
        if not service.may_assume(role, "scheduler.amazonaws.com", trust_context):
            raise ScheduleTargetError(
                "AccessDeniedException",
                f"scheduler.amazonaws.com may not assume {role}: its trust policy does not "
                f"allow sts:AssumeRole for {trust_context}",
                retryable=False,
            )
        if not service.allowed(role, "lambda:InvokeFunction", arn):
            raise ScheduleTargetError(
                "AccessDeniedException",
                f"{role} is not authorized to perform: lambda:InvokeFunction on resource: {arn}",
                retryable=False,
            )
        try:
            event: Any = json.loads(payload)
        except ValueError:
            event = payload
        # The Scheduler invokes its targets at least once: in duplicate mode the target
        # gets a second invocation (same input, same execution id) a while later.
        request_id = service.invoke_async(function, event, duplicates=False)
        for delay in self.stage.delivery.redelivery_delays():
            service.invoke_async(function, event, duplicates=False, delay=delay)
        return request_id

    def _dead_letter(
        self,
        pending: PendingSchedule,
        target: dict[str, Any],
        payload: str,
        execution_id: str,
        attempt: int,
        error: ScheduleTargetError,
    ) -> None:
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        role = str(target.get("RoleArn", ""))
        if not queue_arn:
            self._note(f"schedule {pending.arn}: {error.code} {error.message} (no DLQ)")
            return
        if not lambda_service(self.stage).allowed(role, "sqs:SendMessage", queue_arn):
            self._note(f"schedule {pending.arn}: its role may not send to its DLQ {queue_arn}")
            return
        attributes = {
            "ERROR_CODE": error.code,
            "ERROR_MESSAGE": error.message[:1024],
            "EXECUTION_ID": execution_id,
            "RETRY_ATTEMPTS": str(attempt - 1),
            "SCHEDULE_ARN": pending.arn,
            "TARGET_ARN": str(target["Arn"]),
        }
        try:
            queue = self.stage.deployment.find("AWS::SQS::Queue", arn=queue_arn)
            self.stage.cloud.client("sqs").send_message(
                QueueUrl=queue.attributes["QueueUrl"],
                MessageBody=payload,
                MessageAttributes=string_attributes(attributes),
            )
        except Exception as failure:
            self._note(f"schedule {pending.arn}: DLQ delivery failed: {failure}")

    def _note(self, message: str) -> None:
        if message in self._logged:
            return
        self._logged.add(message)
        self.stage.logs.write(
            "Scheduler",
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "type": "localstage.scheduler",
                    "message": message,
                }
            ),
        )


def _group_arn(pending: PendingSchedule) -> str:
    """``arn:...:schedule/<group>/<name>`` -> ``arn:...:schedule-group/<group>``."""
    prefix = pending.arn.split(":schedule/", 1)[0]
    return f"{prefix}:schedule-group/{pending.group}"
