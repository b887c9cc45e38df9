"""SQS event source mappings, with Lambda's semantics.

- Messages are received with the function's role (as Lambda does), so a role
  without ``sqs:ReceiveMessage`` on the queue gets nothing: the failure is logged.
- ``BatchSize`` (several receives of up to 10 when larger), ``MaximumBatchingWindowInSeconds``,
  ``ScalingConfig.MaximumConcurrency`` (batches in flight at once), ``Enabled``.
- Success deletes the batch. A function error leaves every message in the queue.
  With ``ReportBatchItemFailures`` only the reported ``itemIdentifier``s stay; an
  invalid report (unknown or empty id) fails the whole batch, as on AWS.
- A message that stays becomes visible again when the queue's visibility timeout ends
  (in stage time: with a fast clock localstage shortens it accordingly), and moto
  moves it to the DLQ once ``maxReceiveCount`` receives are used up.
- A batch throttled by the function's reserved concurrency (all busy, or 0) is not
  invoked; its messages return like a failed batch's, having used a receive each.
- An idle mapping polls every few seconds, but a send to any queue wakes it at once
  (:mod:`localstage.activity`), and so does the end of a returned message's visibility
  timeout.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from localstage.events import sqs_record
from localstage.runtime import FunctionThrottledError
from localstage.sources import (
    EventSource,
    InvalidMappingError,
    event_source,
    mappings_from,
    report_once,
)
from localstage.sources.loop import SourceLoop

if TYPE_CHECKING:
    from localstage.deploy import Resource
    from localstage.runtime import FunctionRuntime
    from localstage.stage_view import StageView

DEFAULT_MAXIMUM_CONCURRENCY = 5
#: Between empty polls: from the first to the last, doubling (a send wakes the poller).
IDLE_POLL_SECONDS = (0.05, 2.0)


@event_source("sqs")
def sqs_mappings(stage: StageView) -> list[EventSource]:
    return [
        SqsEventSourceMapping(
            stage,
            mapping,
            stage.deployment.find("AWS::SQS::Queue", arn=mapping.properties["EventSourceArn"]),
            function,
        )
        for mapping, function in mappings_from(stage, "sqs")
    ]


def failed_message_ids(
    message_ids: list[str], payload: Any, *, errored: bool, report_item_failures: bool
) -> set[str]:
    """Which messages of a batch stay in the queue after the function answered ``payload``.

    A function error keeps the whole batch. Without ``ReportBatchItemFailures`` a
    success deletes it all; with it, only the reported ``itemIdentifier``s stay, and a
    response that is not an object (``null`` is a success), a ``batchItemFailures``
    that is not a list, or a report naming an unknown, null or empty id fails the
    whole batch, as on AWS.
    """
    every = set(message_ids)
    if errored:
        return every
    if not report_item_failures or payload is None:
        return set()
    failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
    # Success is an empty or null list, or no list at all (AWS's documented cases); a
    # falsy non-list (``{}``, ``""``, ``0``, ``false``) is not one of them.
    if isinstance(payload, dict) and (failures is None or failures == []):
        return set()
    if not isinstance(failures, list):
        # Not a response Lambda can read (a string, a list, a non-list report): the
        # whole batch failed, as AWS documents for an invalid response.
        return every
    reported: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in every:
            return every
        reported.add(identifier)
    return reported


def check_visibility_covers_timeout(
    logical_id: str, visibility_timeout: float, function_timeout: float
) -> None:
    """Refuse a mapping whose queue hides a message for less than the function may run.

    Lambda's "Creating and configuring an Amazon SQS event source mapping": "Your
    function's timeout must be less than or equal to the queue's visibility timeout.
    Lambda validates this requirement when you create or update an event source mapping
    and will return an error if the function timeout exceeds the queue's visibility
    timeout." (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)

    Parameters
    ----------
    logical_id
        The mapping's logical id, named in the error.
    visibility_timeout
        The queue's ``VisibilityTimeout`` in seconds (30 when the template omits it).
    function_timeout
        The function's ``Timeout`` in seconds.

    Raises
    ------
    InvalidMappingError
        When the function may run longer than the queue hides a message: the
        deployment fails on AWS, so the boot fails here.
    """
    if function_timeout > visibility_timeout:
        # AWS's wording, as CloudFormation reports the refusal ("Invalid request
        # provided: Queue visibility timeout: 36 seconds is less than Function
        # timeout: 450 seconds").
        raise InvalidMappingError(
            f"{logical_id}: Queue visibility timeout: {visibility_timeout:g} seconds is "
            f"less than Function timeout: {function_timeout:g} seconds (AWS refuses the mapping)"
        )


class SqsEventSourceMapping:
    """Polls one queue and invokes one function with batches of its messages."""

    def __init__(
        self, stage: StageView, mapping: Resource, queue: Resource, function: FunctionRuntime
    ) -> None:
        props = mapping.properties
        self.stage = stage
        self.function = function
        self.queue_arn: str = queue.attributes["Arn"]
        self.queue_url: str = queue.attributes["QueueUrl"]
        self.visibility_timeout = int(queue.properties.get("VisibilityTimeout", 30))
        self.batch_size = int(props.get("BatchSize", 10))
        self.batching_window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.max_concurrency = int(
            (props.get("ScalingConfig") or {}).get(
                "MaximumConcurrency", DEFAULT_MAXIMUM_CONCURRENCY
            )
        )
        self.report_item_failures = "ReportBatchItemFailures" in (
            props.get("FunctionResponseTypes") or []
        )
        self.enabled = str(props.get("Enabled", True)).lower() != "false"
        # CreateEventSourceMapping refuses both: "When you set BatchSize to a value
        # greater than 10, you must set MaximumBatchingWindowInSeconds to at least 1",
        # and MaximumConcurrency is 2-1000 (API_CreateEventSourceMapping, API_ScalingConfig).
        if self.batch_size > 10 and self.batching_window < 1:
            raise InvalidMappingError(
                f"{mapping.logical_id}: BatchSize {self.batch_size} needs "
                "MaximumBatchingWindowInSeconds of at least 1 (AWS refuses the mapping)"
            )
        if not 2 <= self.max_concurrency <= 1000:
            raise InvalidMappingError(
                f"{mapping.logical_id}: ScalingConfig.MaximumConcurrency "
                f"{self.max_concurrency} is outside 2-1000 (AWS refuses the mapping)"
            )
        check_visibility_covers_timeout(
            mapping.logical_id, self.visibility_timeout, function.spec.timeout_seconds
        )
        if props.get("FilterCriteria"):
            raise NotImplementedError(
                f"{mapping.logical_id}: FilterCriteria on SQS mappings is not emulated yet"
            )
        self.description = (
            f"SQS {queue.attributes['QueueName']} -> {function.spec.label} "
            f"(batch {self.batch_size}, max concurrency {self.max_concurrency})"
        )
        self._sqs = stage.cloud.client("sqs", function.spec.credentials)
        self._admin_sqs = stage.cloud.client("sqs")
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="sqs-esm")
        self._wakeup = stage.activity.wakeup("sqs")
        self._loop = SourceLoop("sqs-poller", join_seconds=5, wakeup=self._wakeup)
        self._stop = self._loop.stopping
        self.batches = 0
        self.last_error: str | None = None
        #: Duplicate delivery mode: ids of the copies this mapping sent (never copied).
        self._copies: set[str] = set()
        # Held from sending copies until their ids are noted: another batch may receive
        # a copy at once, and must know it for one.
        self._copies_lock = threading.Lock()

    def start(self) -> None:
        if not self.enabled:
            return
        self._loop.start(self._poll)

    def stop(self) -> None:
        self._loop.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _poll(self) -> None:
        idle = IDLE_POLL_SECONDS[0]
        while not self._stop.is_set():
            self._slots.acquire()
            try:
                messages = self._receive_batch()
            except Exception as error:
                messages = []
                self._report(f"ReceiveMessage failed: {error}")
            if not messages:
                self._slots.release()
                self._wakeup.wait(idle)
                idle = min(idle * 2, IDLE_POLL_SECONDS[1])
                continue
            idle = IDLE_POLL_SECONDS[0]
            self._pool.submit(self._process, messages)

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_ends = self.stage.clock.time() + self.batching_window
        while len(messages) < self.batch_size and not self._stop.is_set():
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            received = response.get("Messages") or []
            messages.extend(received)
            if not messages or self.stage.clock.time() >= window_ends:
                break
            if not received:
                self._stop.wait(0.05)
        return messages

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            self.batches += 1
            if self.stage.delivery.duplicates:
                self._send_copies(messages)
            event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
            try:
                result = self.function.invoke(event, throttle=True)
            except FunctionThrottledError:
                # Not invoked: the messages stay invisible until the visibility timeout,
                # their receive already counted (localstage/throttling.py).
                self._report("throttled by the function's reserved concurrency")
                self._return_to_queue(messages)
                return
            failed = failed_message_ids(
                [message["MessageId"] for message in messages],
                result.payload,
                errored=result.error is not None,
                report_item_failures=self.report_item_failures,
            )
            done = [message for message in messages if message["MessageId"] not in failed]
            self._delete(done)
            self._return_to_queue(
                [message for message in messages if message["MessageId"] in failed]
            )
        except Exception as error:
            self._report(f"batch handling failed: {error}")
        finally:
            self._slots.release()

    def _send_copies(self, messages: list[dict[str, Any]]) -> None:
        """Duplicate delivery mode: queue a copy of each message received for the first
        time (not of copies). A standard queue delivers at least once and in no promised
        order: the copy comes in a later batch, maybe while the original is processed.
        FIFO queues are left alone (exactly-once processing within their deduplication
        window)."""
        if self.queue_arn.endswith(".fifo"):
            return
        with self._copies_lock:
            self._copy_originals(messages)

    def _copy_originals(self, messages: list[dict[str, Any]]) -> None:
        originals = []
        for message in messages:
            if message["MessageId"] in self._copies:
                self._copies.discard(message["MessageId"])
            elif (message.get("Attributes") or {}).get("ApproximateReceiveCount") == "1":
                originals.append(message)
        for start in range(0, len(originals), 10):
            chunk = originals[start : start + 10]
            entries: list[dict[str, Any]] = []
            for index, message in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
                if message.get("MessageAttributes"):
                    entry["MessageAttributes"] = message["MessageAttributes"]
                entries.append(entry)
            sent = self._admin_sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            self._copies.update(item["MessageId"] for item in sent.get("Successful", []))
            if sent.get("Failed"):
                self._report(f"copying messages failed: {sent['Failed']}")

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                self._report(f"DeleteMessageBatch failed: {response['Failed']}")

    def _return_to_queue(self, messages: list[dict[str, Any]]) -> None:
        clock = self.stage.clock
        if not messages:
            return
        # The visibility timeout is stage time: with a faster clock it ends sooner.
        seconds = math.ceil(clock.real_seconds(self.visibility_timeout))
        if clock.speed != 1:
            for message in messages:
                self._admin_sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=seconds,
                )
        # Poll when they are visible again, not at the next idle poll.
        self._wakeup.set_after(seconds)

    def _report(self, message: str) -> None:
        # A lasting problem (say a role without sqs:ReceiveMessage) is logged once.
        record = {"type": "localstage.eventSourceMapping", "source": self.queue_arn}
        report_once(self, self.stage.logs, self.function.spec.label, {**record, "error": message})
