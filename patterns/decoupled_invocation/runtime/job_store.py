"""Decoupled invocation: the job table and the task queue.

Status transitions are conditional writes in DynamoDB, so a duplicate or late
SQS delivery never redoes or undoes finished work::

    PENDING --claim--> RUNNING --finish--> DONE | FAILED
    PENDING | RUNNING (past deadline) --> TIMED_OUT
    PENDING --enqueue failed--> FAILED (enqueue_failed) --same Idempotency-Key--> PENDING
    FAILED (enqueue_failed, keyed) --claim (a message was queued after all)--> RUNNING
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from handler_kit import ttl
from handler_kit.clock import epoch_seconds, iso_timestamp
from handler_kit.fair_queues import group_fields, message_group_id
from handler_kit.keyed_table import KeyedTable
from handler_kit.status_transitions import (
    CLAIMED_BY_ADD,
    OWN_CLAIM_CONDITION,
    claim_values,
    error_status_update,
    lease_holder_update,
)
from job_models import ENQUEUE_FAILED_MESSAGE, JobStatus

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,sqs] is installed, Any otherwise
    from mypy_boto3_sqs.client import SQSClient

# --------------------------------------------------------------------------- storage


class JobStore(KeyedTable):
    """The job table (partition key ``job_id`` (S), TTL attribute ``expires_at``).

    Every status change is a conditional write. Made as :class:`KeyedTable` is (a
    client and the table name).
    """

    key_name = "job_id"
    attribute_names = ("status", "result", "error", "code")
    ttl_attribute = ttl.TTL_ATTRIBUTE

    def mark_enqueue_failed(self, job_id: str, now: datetime) -> bool:
        """PENDING to FAILED (``enqueue_failed``); False if the job already left PENDING."""
        error = {
            "code": "enqueue_failed",
            "message": ENQUEUE_FAILED_MESSAGE,
        }
        return self._changed(
            job_id,
            **error_status_update(
                JobStatus.FAILED.value, error, sources=[JobStatus.PENDING.value], now=now
            ),
        )

    def rearm_enqueue_failed(self, job_id: str, request_hash: str, now: datetime) -> bool:
        """FAILED (``enqueue_failed``) back to PENDING, only before the deadline."""
        return self._changed(
            job_id,
            update="SET #status = :pending, updated_at = :now_iso REMOVE #error",
            condition=(
                "#status = :failed AND #error.#code = :enqueue_failed"
                " AND request_hash = :hash AND deadline_epoch > :now"
            ),
            values={
                ":pending": JobStatus.PENDING.value,
                ":failed": JobStatus.FAILED.value,
                ":enqueue_failed": "enqueue_failed",
                ":hash": request_hash,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
            },
        )

    def claim(
        self, job_id: str, *, lease_owner: str, lease_expires_epoch: int, now: datetime
    ) -> dict[str, Any] | None:
        """Take the job for one delivery: PENDING (or RUNNING with an expired lease) to RUNNING.

        A keyed job marked FAILED ``enqueue_failed`` is claimable too: a message exists
        after all (a send whose error came after SQS stored it, or a concurrent retry's
        send that succeeded and answered 202), and a retry with the key would have
        re-queued it anyway. An unkeyed one is not: its client was told to submit again,
        which makes another job, so running this one too would do the work twice.

        Returns
        -------
        dict or None
            The claimed item, or None if the job is not claimable (missing, expired,
            terminal, leased by another delivery, or past its deadline).
        """
        return self._update_if(
            job_id,
            update=(
                "SET #status = :running, lease_owner = :owner,"
                f" lease_expires_epoch = :lease, updated_at = :now_iso {CLAIMED_BY_ADD}"
                " REMOVE #error"
            ),
            condition=(
                "(#status = :pending OR (#status = :running AND lease_expires_epoch < :now)"
                f" OR {OWN_CLAIM_CONDITION}"
                " OR (#status = :failed AND #error.#code = :enqueue_failed"
                " AND attribute_exists(idempotency_key)))"
                f" AND deadline_epoch > :now AND {ttl.unexpired_condition()}"
            ),
            values={
                ":running": JobStatus.RUNNING.value,
                ":pending": JobStatus.PENDING.value,
                ":failed": JobStatus.FAILED.value,
                ":enqueue_failed": "enqueue_failed",
                ":lease": lease_expires_epoch,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
                **claim_values(lease_owner),
                **ttl.condition_values(now),
            },
            return_new=True,
        )

    def finish(
        self,
        job_id: str,
        *,
        lease_owner: str,
        now: datetime,
        result: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        """RUNNING to DONE (``result``) or FAILED (``error``), only while we hold the lease
        and before the deadline: past it, GET already answers TIMED_OUT, a final status
        that a late outcome must not change.

        Returns
        -------
        bool
            False if another delivery took the job over, or the deadline has passed (our
            outcome is discarded). True also when this very write had landed: the SDK
            retries a write whose reply was lost, and the retry fails its condition on
            the write it repeats; ``finished_by`` (the lease's owner, unique per call)
            tells it apart.
        """
        if (result is None) == (error is None):
            raise ValueError("give exactly one of result or error")
        field, status, payload = (
            ("#result", JobStatus.DONE, result)
            if result is not None
            else ("#error", JobStatus.FAILED, error)
        )
        return self._changed_or_landed(
            job_id,
            **lease_holder_update(
                f"#status = :status, {field} = :payload, finished_by = :owner",
                running=JobStatus.RUNNING.value,
                owner=lease_owner,
                now=now,
                values={
                    ":status": status.value,
                    ":payload": dict(payload or {}),
                    ":now": epoch_seconds(now),
                },
                also_condition="deadline_epoch > :now",
            ),
            mark=("finished_by", lease_owner),
        )

    def mark_timed_out(self, job_id: str, now: datetime) -> bool:
        """PENDING/RUNNING past the deadline to TIMED_OUT; False if no longer applicable."""
        error = {"code": "timed_out", "message": "the job did not finish before its deadline"}
        return self._changed(
            job_id,
            **error_status_update(
                JobStatus.TIMED_OUT.value,
                error,
                sources=[JobStatus.PENDING.value, JobStatus.RUNNING.value],
                now=now,
                also_condition="deadline_epoch <= :now",
                values={":now": epoch_seconds(now)},
                release_lease=True,
            ),
        )


class TaskQueue:
    """The SQS task queue.

    Parameters
    ----------
    client : SQSClient
        A boto3 SQS client.
    queue_url : str
        URL of the task queue.
    group_id : str, optional
        ``MessageGroupId`` of every message sent (see :meth:`for_tenant`).
    """

    def __init__(self, client: SQSClient, queue_url: str, *, group_id: str | None = None) -> None:
        self._client = client
        self._queue_url = queue_url
        self._group_id = group_id

    def for_tenant(self, tenant: str) -> TaskQueue:
        """This queue, sending as ``tenant`` (``handler_kit.fair_queues``)."""
        return TaskQueue(self._client, self._queue_url, group_id=message_group_id(tenant))

    def send(self, job_id: str, *, correlation_id: str | None = None) -> None:
        """Queue ``{"job_id": ...}``; the correlation id travels as a message attribute."""
        attributes: dict[str, Any] = {}
        if correlation_id:
            attributes["correlation_id"] = {"DataType": "String", "StringValue": correlation_id}
        group = group_fields(self._group_id)
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps({"job_id": job_id}),
            MessageAttributes=attributes,
            **group,
        )
