"""Fan-out/fan-in storage: the job and result tables and the subtask queue.

Every change of a job is a conditional write; a subtask's outcome and the counter's
decrement are one ``TransactWriteItems`` (see ``fan_out_models``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from fan_out_models import (
    TRANSACTION_ATTEMPTS,
    JobStatus,
    Recorded,
    RecordOutcome,
    TransactionConflictError,
    timeout_error,
)
from handler_kit import dynamodb, status_transitions, ttl
from handler_kit.aws_failures import TRANSIENT_CANCELLATIONS
from handler_kit.clock import Sleep, epoch_seconds, iso_timestamp
from handler_kit.fair_queues import group_fields, message_group_id

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,sqs] is installed, Any otherwise
    from fan_out_messages import SubtaskMessage  # annotations only: the reducer has no pydantic
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

# Reserved words (status, total, ...) and readability: every name goes through #name.
_NAMES = ("status", "total", "remaining", "done", "failed", "error", "aggregate")


class JobStore:
    """The job and result tables. Every change of a job is a conditional write.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client.
    job_table : str
        Partition key ``job_id`` (S); TTL ``expires_at``; its stream feeds the reducer.
    result_table : str
        Partition key ``job_id`` (S), sort key ``subtask`` (N); TTL ``expires_at``.
    sleep : callable
        Backoff between TransactionConflict retries (injected in tests).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        job_table: str,
        result_table: str,
        *,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._job_table = job_table
        self._result_table = result_table
        self.sleep = sleep

    def _update(
        self, job_id: str, *, update: str, condition: str, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Run a conditional UpdateItem; the new item, or None when the condition failed."""
        return dynamodb.update_if(
            self._client,
            self._job_table,
            {"job_id": {"S": job_id}},
            update=update,
            condition=condition,
            values=values,
            names=_NAMES,
            return_new=True,
        )

    def _pause_after_conflict(self, attempt: int) -> None:
        """Wait before attempt ``attempt + 1`` of a write that met a transaction in flight;
        full jitter, so concurrent writers of one job item spread their retries."""
        self.sleep(random.uniform(0, 0.05 * 2**attempt))

    def put_new(self, item: Mapping[str, Any], *, now: datetime) -> bool:
        """Create the job item unless a live one with its ``job_id`` exists (False then).

        A job expired at ``now`` (TTL pending) is replaced as if it were deleted.
        """
        return dynamodb.put_if_absent(
            self._client, self._job_table, item, key_name="job_id", now=now
        )

    def get(self, job_id: str, *, now: datetime) -> dict[str, Any] | None:
        """Strongly consistent read of a job item; None if missing or expired at ``now``."""
        return dynamodb.get_consistent(
            self._client, self._job_table, {"job_id": {"S": job_id}}, now=now
        )

    def record_outcome(
        self,
        message: SubtaskMessage,
        *,
        now: datetime,
        expires_at: int,
        result: int | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> Recorded:
        """Store a subtask's result (or failure) and decrement ``remaining``, atomically.

        One TransactWriteItems: put the (job, subtask) item if it does not exist, and
        ``ADD remaining -1, done|failed +1`` on the job while it is RUNNING, before its
        deadline and with ``remaining > 0``. Either both happen or neither does, so a
        duplicate delivery (the put's condition fails) cannot decrement again. A result
        left expired by an earlier job with the same id (a reused Idempotency-Key) is
        not a duplicate: the put replaces it.

        Raises
        ------
        TransactionConflictError
            The transaction stayed cancelled for a transient reason (a conflict with
            another transaction on the job item, a throttled item) through
            ``TRANSACTION_ATTEMPTS`` attempts, or was cancelled for another reason.
        """
        if (result is None) == (error is None):
            raise ValueError("give exactly one of result or error")
        outcome_item: dict[str, Any] = {
            "job_id": message.job_id,
            "subtask": message.index,
            "value": message.value,
            "recorded_at": iso_timestamp(now),
            "expires_at": expires_at,
        }
        counter = "#done" if result is not None else "#failed"
        if result is not None:
            outcome_item.update(outcome="ok", result=result)
        else:
            outcome_item.update(outcome="failed", error=dict(error or {}))
        update = f"ADD #remaining :minus_one, {counter} :one SET updated_at = :now_iso"
        condition = "#status = :running AND #remaining > :zero AND deadline_epoch > :now"
        transaction = [
            {
                "Put": {
                    "TableName": self._result_table,
                    "Item": dynamodb.to_attribute_values(outcome_item),
                    "ConditionExpression": ttl.absent_condition("job_id"),
                    "ExpressionAttributeValues": dynamodb.to_attribute_values(
                        ttl.condition_values(now)
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self._job_table,
                    "Key": {"job_id": {"S": message.job_id}},
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": dynamodb.expression_names(
                        _NAMES, update, condition
                    ),
                    "ExpressionAttributeValues": dynamodb.to_attribute_values(
                        {
                            ":minus_one": -1,
                            ":one": 1,
                            ":zero": 0,
                            ":running": JobStatus.RUNNING.value,
                            ":now": epoch_seconds(now),
                            ":now_iso": iso_timestamp(now),
                        }
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=transaction)
            except ClientError as exc:
                if dynamodb.error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                codes = [reason.get("Code") for reason in reasons]
                if codes[:1] == ["ConditionalCheckFailed"]:
                    existing = dynamodb.from_attribute_values(reasons[0].get("Item") or {})
                    stored_ok = existing.get("outcome") == "ok"
                    return Recorded(RecordOutcome.DUPLICATE, stored_ok=stored_ok)
                if codes[1:2] == ["ConditionalCheckFailed"]:
                    # An expired job item is as good as gone.
                    job = ttl.live(reasons[1].get("Item"), now)
                    return Recorded(
                        RecordOutcome.JOB_CLOSED,
                        job=dynamodb.from_attribute_values(job) if job else None,
                    )
                # A conflict with another worker's transaction on the job item, or a
                # throttled item: a later attempt may land (other reasons will not).
                transient = TRANSIENT_CANCELLATIONS.intersection(codes)
                if not transient or attempt == TRANSACTION_ATTEMPTS:
                    raise TransactionConflictError(
                        f"transaction for subtask {message.index} of {message.job_id} "
                        f"cancelled: {codes}"
                    ) from exc
                self._pause_after_conflict(attempt)
                continue
            return Recorded(RecordOutcome.RECORDED)
        raise AssertionError("unreachable")  # pragma: no cover

    def mark_timed_out(self, job_id: str, now: datetime) -> bool:
        """RUNNING/REDUCING past the deadline to TIMED_OUT; False if no longer applicable."""
        transition = status_transitions.error_status_update(
            JobStatus.TIMED_OUT.value,
            timeout_error(),
            sources=[JobStatus.RUNNING.value, JobStatus.REDUCING.value],
            now=now,
            also_condition="deadline_epoch <= :now",
            values={":now": epoch_seconds(now)},
        )
        return self._update(job_id, **transition) is not None

    def mark_ventilation_failed(self, job_id: str, *, unsent: int, now: datetime) -> bool:
        """RUNNING to FAILED because ``unsent`` subtasks could not be queued.

        Only while some subtask is still uncounted: a send whose error came after SQS
        stored its entries delivered them, and a job whose every subtask was counted
        (remaining 0, reducing or done) is finished, not failed.
        """
        error = {
            "code": "ventilation_failed",
            "message": f"{unsent} subtask(s) could not be queued; submit the job again",
        }
        transition = status_transitions.error_status_update(
            JobStatus.FAILED.value,
            error,
            sources=[JobStatus.RUNNING.value],
            now=now,
            also_condition="#remaining > :zero",
            values={":zero": 0},
        )
        # Workers' transactions are counting the subtasks already sent on this very item:
        # DynamoDB refuses a write that meets one in flight (TransactionConflictException,
        # which the SDK does not retry). Left unmarked, the job would wait for subtasks
        # never sent and a keyed retry would be answered its first 202.
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                return self._update(job_id, **transition) is not None
            except ClientError as exc:
                conflict = dynamodb.error_code(exc) == "TransactionConflictException"
                if not conflict or attempt == TRANSACTION_ATTEMPTS:
                    raise
                self._pause_after_conflict(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def claim_reduction(self, job_id: str, now: datetime) -> dict[str, Any] | None:
        """RUNNING (or REDUCING, a retried reduction) with remaining = 0 to REDUCING.

        Returns
        -------
        dict or None
            The job item, or None if it is not ready, finished, missing or late.
        """
        return self._update(
            job_id,
            update="SET #status = :reducing, updated_at = :now_iso ADD reductions :one",
            condition=(
                "#status IN (:running, :reducing) AND #remaining = :zero AND deadline_epoch > :now"
            ),
            values={
                ":reducing": JobStatus.REDUCING.value,
                ":running": JobStatus.RUNNING.value,
                ":zero": 0,
                ":one": 1,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
            },
        )

    def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        aggregate: Mapping[str, Any],
        error: Mapping[str, Any] | None,
        now: datetime,
    ) -> bool:
        """REDUCING to DONE or FAILED with the aggregate; False if another trigger won."""
        update = "SET #status = :status, #aggregate = :aggregate, updated_at = :now_iso"
        values: dict[str, Any] = {
            ":status": status.value,
            ":aggregate": dict(aggregate),
            ":reducing": JobStatus.REDUCING.value,
            ":now": epoch_seconds(now),
            ":now_iso": iso_timestamp(now),
        }
        if error is not None:
            update += ", #error = :error"
            values[":error"] = dict(error)
        return (
            self._update(
                job_id,
                update=update,
                condition="#status = :reducing AND deadline_epoch > :now",
                values=values,
            )
            is not None
        )

    def iter_results(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Every (job, subtask) item, page by page (a strongly consistent Query).

        Expired ones included (with ``expires_at``): the caller drops them.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._result_table,
            "KeyConditionExpression": "job_id = :job_id",
            "ExpressionAttributeValues": {":job_id": {"S": job_id}},
            "ProjectionExpression": f"subtask, outcome, #result, {ttl.TTL_ATTRIBUTE}",
            "ExpressionAttributeNames": {"#result": "result"},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                yield dynamodb.from_attribute_values(item)
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key


class BatchFailures(NamedTuple):
    """The entries of one SendMessageBatch call that SQS did not store, by entry id."""

    #: Failed on SQS's side: the same entry may go through if sent again.
    retryable: list[str]
    #: Refused as the sender's fault (``SenderFault``): sent again, it fails again.
    refused: list[str]


class SubtaskQueue:
    """The SQS subtask queue; only SendMessageBatch is used.

    Parameters
    ----------
    client : SQSClient
        A boto3 SQS client (clients are thread-safe; the ventilator shares one).
    queue_url : str
        URL of the subtask queue.
    group_id : str, optional
        ``MessageGroupId`` of every message sent (see :meth:`for_tenant`).
    """

    def __init__(self, client: SQSClient, queue_url: str, *, group_id: str | None = None) -> None:
        self._client = client
        self._queue_url = queue_url
        self._group_id = group_id

    def for_tenant(self, tenant: str) -> SubtaskQueue:
        """This queue, sending as ``tenant`` (``handler_kit.fair_queues``)."""
        return SubtaskQueue(self._client, self._queue_url, group_id=message_group_id(tenant))

    def send_batch(self, entries: Sequence[tuple[str, str]]) -> BatchFailures:
        """Send up to 10 ``(entry id, body)``; return the entries SQS reports as failed.

        One call can store some entries and fail others with an HTTP 200 (SendMessageBatch
        reference); ``SenderFault`` says whether an entry failed through the caller's fault.
        """
        group = group_fields(self._group_id)
        response = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[{"Id": entry_id, "MessageBody": body, **group} for entry_id, body in entries],
        )
        failed = response.get("Failed", [])
        return BatchFailures(
            retryable=[failure["Id"] for failure in failed if not failure.get("SenderFault")],
            refused=[failure["Id"] for failure in failed if failure.get("SenderFault")],
        )
