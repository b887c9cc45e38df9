"""One-off schedules: the schedule table (every status change a conditional write) and
the pattern's schedule group in EventBridge Scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from handler_kit import dynamodb, status_transitions, ttl
from handler_kit.clock import epoch_seconds, iso_timestamp
from handler_kit.keyed_table import KeyedTable
from schedule_models import ScheduleStatus, ScheduleStillRunningError, ScheduleTarget
from schedule_parsing import at_expression

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,scheduler] is installed, Any otherwise
    from mypy_boto3_scheduler.client import EventBridgeSchedulerClient


# --------------------------------------------------------------------------- storage


class ScheduleStore(KeyedTable):
    """The schedule table (partition key ``schedule_id`` (S), TTL attribute ``expires_at``).

    Every status change is a conditional write. Made as :class:`KeyedTable` is (a
    client and the table name).
    """

    key_name = "schedule_id"
    attribute_names = ("status", "result", "error")
    ttl_attribute = ttl.TTL_ATTRIBUTE

    def delete_unscheduled(self, schedule_id: str) -> bool:
        """Remove a PENDING record whose schedule could not be created."""
        deleted = dynamodb.unless_condition_fails(
            self._client.delete_item,
            TableName=self._table_name,
            Key=self._key(schedule_id),
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":pending": {"S": ScheduleStatus.PENDING.value}},
        )
        return deleted is not None

    def mark_scheduled(self, schedule_id: str) -> bool:
        """Note on a keyed record that its schedule exists (created, or found created).

        A retry with the key answers the stored 201 only for a record so marked: one
        whose every create failed can no longer be created once ``at`` has passed.
        False if a late retry has already given the record up (FAILED): its schedule
        then fires for nothing, and no 201 may say otherwise. False too if a DELETE
        cancelled the record while the schedule was being created: the cancel's own
        DeleteSchedule may have come first, and the caller deletes it again.
        """
        return self._changed(
            schedule_id,
            update="SET scheduled = :yes",
            condition=(
                "attribute_exists(schedule_id) AND #status <> :failed AND #status <> :cancelled"
            ),
            values={
                ":yes": True,
                ":failed": ScheduleStatus.FAILED.value,
                ":cancelled": ScheduleStatus.CANCELLED.value,
            },
        )

    def forget_schedule_deleted(self, schedule_id: str) -> bool:
        """Remove ``schedule_deleted_at``: a schedule was created after it was written."""
        return self._changed(
            schedule_id,
            update="REMOVE schedule_deleted_at",
            condition="attribute_exists(schedule_deleted_at)",
            values={},
        )

    def mark_not_scheduled(self, schedule_id: str, now: datetime) -> bool:
        """PENDING to FAILED ``not_scheduled``: no create succeeded and ``at`` has passed.

        False if the record is marked scheduled meanwhile, has left PENDING, or was
        fired: an executor's claim (``fired_at``) proves the schedule existed, and its
        failed attempt is retried by Lambda.
        """
        error = {
            "code": "not_scheduled",
            "message": "the schedule could not be created before its time passed",
        }
        return self._changed(
            schedule_id,
            **status_transitions.error_status_update(
                ScheduleStatus.FAILED.value,
                error,
                sources=[ScheduleStatus.PENDING.value],
                now=now,
                also_set="failed_at = :now_iso",
                also_condition="attribute_not_exists(scheduled) AND attribute_not_exists(fired_at)",
            ),
        )

    def claim(
        self,
        schedule_id: str,
        *,
        lease_owner: str,
        lease_expires_epoch: int,
        now: datetime,
        execution_id: str,
    ) -> dict[str, Any] | None:
        """PENDING (or RUNNING with an expired lease) to RUNNING for one delivery.

        A record past its TTL is not claimed: a delivery that late finds it absent.

        Returns
        -------
        dict or None
            The item after the claim, or None if it could not be claimed.
        """
        return self._update_if(
            schedule_id,
            update=(
                "SET #status = :running, lease_owner = :owner, lease_expires_epoch = :lease,"
                " execution_id = :execution, fired_at = if_not_exists(fired_at, :now_iso),"
                f" updated_at = :now_iso {status_transitions.CLAIMED_BY_ADD}"
            ),
            condition=(
                "(#status = :pending OR (#status = :running AND lease_expires_epoch < :now)"
                f" OR {status_transitions.OWN_CLAIM_CONDITION})"
                f" AND {ttl.unexpired_condition()}"
            ),
            values={
                ":running": ScheduleStatus.RUNNING.value,
                ":pending": ScheduleStatus.PENDING.value,
                ":lease": lease_expires_epoch,
                ":execution": execution_id,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
                **status_transitions.claim_values(lease_owner),
                **ttl.condition_values(now),
            },
            return_new=True,
        )

    def complete(
        self, schedule_id: str, *, lease_owner: str, result: Mapping[str, Any], now: datetime
    ) -> bool:
        """RUNNING to DONE with ``result``, only while this delivery holds the lease.

        True also when this very write had landed: the SDK retries a write whose reply
        was lost, and the retry fails its condition on the write it repeats;
        ``completed_by`` (the lease's owner, unique per call) tells it apart.
        """
        return self._changed_or_landed(
            schedule_id,
            **status_transitions.lease_holder_update(
                "#status = :done, #result = :result, completed_at = :now_iso,"
                " completed_by = :owner",
                running=ScheduleStatus.RUNNING.value,
                owner=lease_owner,
                now=now,
                values={":done": ScheduleStatus.DONE.value, ":result": dict(result)},
                also_remove=", last_error",
            ),
            mark=("completed_by", lease_owner),
        )

    def release(
        self, schedule_id: str, *, lease_owner: str, error: Mapping[str, Any], now: datetime
    ) -> bool:
        """RUNNING back to PENDING after a failed attempt, so Lambda's retry can claim it."""
        return self._changed(
            schedule_id,
            **status_transitions.lease_holder_update(
                "#status = :pending, last_error = :error",
                running=ScheduleStatus.RUNNING.value,
                owner=lease_owner,
                now=now,
                values={":pending": ScheduleStatus.PENDING.value, ":error": dict(error)},
            ),
        )

    def mark_failed(
        self,
        schedule_id: str,
        *,
        error: Mapping[str, Any],
        failure: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """PENDING, or RUNNING under an expired lease, to FAILED with the error and the
        failure record; False if the record is already final (or absent).

        Raises
        ------
        ScheduleStillRunningError
            Another delivery holds the record under a live lease: that delivery (a
            duplicate event from the Scheduler or from Lambda's queue) may still complete
            the run, which would then be DONE with its task done, not FAILED. The record
            that blocked the write comes back with its failure, so the cleanup, whose
            role may only update, needs no read.
        """
        blocker = self._update_or_blocker(
            schedule_id,
            **status_transitions.error_status_update(
                ScheduleStatus.FAILED.value,
                error,
                sources=[ScheduleStatus.PENDING.value, ScheduleStatus.RUNNING.value],
                now=now,
                also_set="failure = :failure, failed_at = :now_iso",
                also_condition=(
                    "(attribute_not_exists(lease_expires_epoch) OR lease_expires_epoch < :now)"
                ),
                values={":failure": dict(failure), ":now": epoch_seconds(now)},
                release_lease=True,
            ),
        )
        if blocker is None:
            return True
        if blocker.get("status") == ScheduleStatus.RUNNING.value:
            # The condition's own test failed on its lease (the same now).
            raise ScheduleStillRunningError(
                f"schedule {schedule_id} is RUNNING under a live lease until"
                f" {blocker.get('lease_expires_epoch')}; the cleanup is retried after it"
            )
        return False

    def cancel(self, schedule_id: str, now: datetime, *, undelivered_after_seconds: int) -> bool:
        """PENDING to CANCELLED; False if the schedule already left PENDING, has fired (an
        attempt ran and gave the record back for Lambda's retry: cancelling would leave
        a half-run task unrecorded), or reads FAILED ``not_delivered`` (PENDING
        ``undelivered_after_seconds`` past its time)."""
        return self._changed(
            schedule_id,
            update="SET #status = :cancelled, cancelled_at = :now_iso, updated_at = :now_iso",
            # An expired record is absent: nothing to cancel (the caller answers 404).
            condition=(
                "#status = :pending AND attribute_not_exists(fired_at)"
                " AND at_epoch > :undelivered_before"
                f" AND {ttl.unexpired_condition()}"
            ),
            values={
                ":cancelled": ScheduleStatus.CANCELLED.value,
                ":pending": ScheduleStatus.PENDING.value,
                ":now_iso": iso_timestamp(now),
                # The view's rule (schedule_service.schedule_view): undelivered once
                # now >= at_epoch + undelivered_after_seconds.
                ":undelivered_before": epoch_seconds(now) - undelivered_after_seconds,
                **ttl.condition_values(now),
            },
        )

    def record_schedule_deleted(self, schedule_id: str, now: datetime) -> bool:
        """Note when the schedule was found deleted (the first time only)."""
        return self._changed(
            schedule_id,
            update="SET schedule_deleted_at = if_not_exists(schedule_deleted_at, :now_iso)",
            condition="attribute_exists(schedule_id)",
            values={":now_iso": iso_timestamp(now)},
        )


class Schedules:
    """The pattern's schedule group in EventBridge Scheduler.

    Parameters
    ----------
    client : EventBridgeSchedulerClient
        A boto3 ``scheduler`` client.
    group_name : str
        The only group this pattern uses.
    """

    def __init__(self, client: EventBridgeSchedulerClient, group_name: str) -> None:
        self._client = client
        self.group_name = group_name

    def create(self, name: str, fire_at: datetime, target: ScheduleTarget, input: str) -> bool:
        """Create the one-time schedule; False if one with this name already exists.

        The name is the schedule id, so an existing schedule is this request's own
        (a retry after a lost response): creating is idempotent.
        """
        try:
            self._client.create_schedule(
                Name=name,
                GroupName=self.group_name,
                ScheduleExpression=at_expression(fire_at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                State="ENABLED",
                Description="One-off schedule; deleted after it ran",
                Target={
                    "Arn": target.function_arn,
                    "RoleArn": target.role_arn,
                    "Input": input,
                    "RetryPolicy": {
                        "MaximumRetryAttempts": target.retry_attempts,
                        "MaximumEventAgeInSeconds": target.max_event_age_seconds,
                    },
                    "DeadLetterConfig": {"Arn": target.dead_letter_queue_arn},
                },
            )
        except ClientError as exc:
            if dynamodb.error_code(exc) == "ConflictException":
                return False
            raise
        return True

    def exists(self, name: str) -> bool:
        """Whether the schedule exists (GetSchedule; gone once it fired and completed)."""
        return self._found(self._client.get_schedule, name)

    def delete(self, name: str) -> bool:
        """Delete the schedule; False if it was already gone (which counts as done)."""
        return self._found(self._client.delete_schedule, name)

    def _found(self, call: Callable[..., object], name: str) -> bool:
        """Run ``call`` on the schedule; False when it answers that there is none."""
        try:
            call(Name=name, GroupName=self.group_name)
        except ClientError as exc:
            if dynamodb.error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True
