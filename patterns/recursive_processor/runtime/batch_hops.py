"""Recursive processor: handing a run's next hop to the next invocation.

The function invokes itself asynchronously with a ``HopRequest``. The run record
remembers the highest hop sent (``dispatched_hop``), so a hop is sent once in the
normal case; when an invocation fails between its commit and the send, a duplicate
or retried invocation of its hop sends it (a hop sent twice is claimed once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from batch_models import HopRequest, ProcessorSettings, RunStatus
from batch_store import RunStore
from handler_kit.clock import Clock, Sleep, utc_now

if TYPE_CHECKING:  # typed when boto3-stubs[lambda,s3] is installed, Any otherwise
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_s3.client import S3Client

logger = Logger(child=True)

RemainingMillis = Callable[[], int]


class HopSender(Protocol):
    """Hands a hop to the next invocation."""

    def send(self, request: HopRequest) -> None: ...


class LambdaHopSender:
    """Invokes this function asynchronously (``InvocationType=Event``) with the hop.

    ``function_arn`` comes from the invocation's context (``invoked_function_arn``),
    so the template never needs the function's own ARN in its configuration.
    """

    def __init__(self, client: LambdaClient, function_arn: str) -> None:
        self._client = client
        self._function_arn = function_arn

    def send(self, request: HopRequest) -> None:
        """Invoke the function with ``request`` as its event, without waiting for it."""
        self._client.invoke(
            FunctionName=self._function_arn,
            InvocationType="Event",
            Payload=request.to_payload(),
        )


@dataclass(frozen=True)
class HopEnvironment:
    """What a hop needs from the outside world (injected, so tests can fake it)."""

    store: RunStore
    s3: S3Client
    sender: HopSender
    settings: ProcessorSettings
    remaining_ms: RemainingMillis
    request_id: str
    clock: Clock = utc_now
    sleep: Sleep = time.sleep


def send_hop(store: RunStore, sender: HopSender, request: HopRequest) -> None:
    """Send ``request`` and record it as dispatched (so it is not sent again)."""
    sender.send(request)
    store.mark_dispatched(request.run_id, hop=request.hop)
    logger.info("hop dispatched", run_id=request.run_id, hop=request.hop, offset=request.offset)


def dispatch_pending_hop(store: RunStore, sender: HopSender, item: Mapping[str, Any]) -> bool:
    """Send the run's next hop unless it was sent already.

    Safe to repeat: a hop sent twice is claimed once. Used when a run starts and when
    a duplicate or retried invocation finds a committed hop whose successor was never
    sent (the invocation that committed it failed before invoking).

    Parameters
    ----------
    store : RunStore
        The run table (records the dispatch).
    sender : HopSender
        Sends the hop.
    item : Mapping
        The run record as stored.

    Returns
    -------
    bool
        True if it sent the hop; False for a finished run or a hop sent already.
    """
    if item["status"] != RunStatus.RUNNING.value:
        return False
    if int(item.get("dispatched_hop", 0)) >= int(item["hop"]):
        return False
    send_hop(
        store,
        sender,
        HopRequest(
            run_id=item["run_id"],
            bucket=item["bucket"],
            key=item["key"],
            etag=item["etag"],
            offset=int(item["offset"]),
            hop=int(item["hop"]),
        ),
    )
    return True
