"""Recursive processor: starting runs and reading them.

Plain Python (no Lambda types) so it can be tested directly: ``batch_processor.py``
starts a run per created object here, and ``run_api.py`` reads runs here; the hops
themselves run in ``batch_runner.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from batch_hops import HopSender, dispatch_pending_hop
from batch_models import ObjectCreated, ProcessorSettings, RunBody, RunNotFoundError, RunStatus
from batch_store import RunStore, new_run_item
from handler_kit.clock import parse_timestamp

logger = Logger(child=True)


def start_runs(
    store: RunStore,
    sender: HopSender,
    created: Sequence[ObjectCreated],
    *,
    now: datetime,
    settings: ProcessorSettings,
) -> list[str]:
    """Start one run per created object and send each its first hop.

    A duplicate notification finds its run already stored and only re-sends the
    first hop if that was never sent.

    Parameters
    ----------
    store : RunStore
        The run table.
    sender : HopSender
        Sends the first hops.
    created : Sequence of ObjectCreated
        The objects of the notification.
    now : datetime
        When the runs start.
    settings : ProcessorSettings
        For the runs' retention.

    Returns
    -------
    list of str
        The run ids, in record order (without a run that expired in between).
    """
    run_ids = []
    for record in created:
        item = new_run_item(record, now=now, settings=settings)
        if store.create(item, now=now):
            logger.info(
                "run started",
                run_id=record.run_id,
                bucket=record.bucket,
                key=record.key,
                size=record.size,
            )
        else:
            existing = store.get(record.run_id, now=now)
            logger.info("duplicate notification; run exists", run_id=record.run_id)
            if existing is None:  # expired in between: nothing to continue
                continue
            item = existing
        dispatch_pending_hop(store, sender, item)
        run_ids.append(record.run_id)
    return run_ids


def run_view(item: Mapping[str, Any], *, output_bucket: str, stalled: bool = False) -> RunBody:
    """What ``GET /runs/{run_id}`` shows of a run record.

    Counts are those of the committed hops; ``hops`` is the number of hops run so far
    (the final count once the run has finished).

    Parameters
    ----------
    item : Mapping
        The run record.
    output_bucket : str
        The bucket of the summary and errors objects.
    stalled : bool
        The record is RUNNING but no hop can come any more: it reads FAILED ``stalled``.

    Returns
    -------
    RunBody
        The response body (a StrEnum serializes as its value).
    """
    status = RunStatus(item["status"])
    finished = status is not RunStatus.RUNNING
    size = int(item["size"])
    offset = int(item["offset"])
    view: RunBody = {
        "run_id": item["run_id"],
        "status": RunStatus.FAILED if stalled else status,
        "source": {
            "bucket": item["bucket"],
            "key": item["key"],
            "etag": item["etag"],
            "size": size,
        },
        "offset": offset,
        "progress": round(offset / size, 4) if size else 1.0,
        "hops": int(item["hops"]) if finished else int(item["hop"]) - 1,
        "records": int(item["records"]),
        "errors": int(item["errors"]),
        "bytes_read": int(item["bytes_read"]),
        "started_at": item["started_at"],
        "updated_at": item["updated_at"],
        "error_objects": [
            {"bucket": output_bucket, "key": key} for key in item.get("error_objects", [])
        ],
    }
    if finished:
        view["finished_at"] = item.get("finished_at")
        view["duration_ms"] = int(item.get("duration_ms", 0))
    if "summary_key" in item:
        view["summary"] = {"bucket": output_bucket, "key": item["summary_key"]}
    if "reason" in item:
        reason = item["reason"]
        view["reason"] = {"code": reason["code"], "message": reason["message"]}
    elif stalled:
        view["reason"] = {
            "code": "stalled",
            "message": (
                f"no hop has run since {item['updated_at']} and none can come any more: "
                "the next hop's event was lost or is in the processor's failure queue "
                "(send it again from there to resume the run)"
            ),
        }
    return view


def get_run_view(
    store: RunStore,
    run_id: str,
    *,
    output_bucket: str,
    now: datetime,
    stalled_after_seconds: int | None = None,
) -> RunBody:
    """The view of one run.

    Parameters
    ----------
    store : RunStore
        The run table.
    run_id : str
        A canonical run id (see ``batch_events.parse_run_id``).
    output_bucket : str
        The bucket of the summary and errors objects.
    now : datetime
        A run expired at ``now`` (TTL pending) is not found.
    stalled_after_seconds : int, optional
        A RUNNING run not updated for this long reads FAILED ``stalled``: no hop event
        can still arrive (the stack sets it from the processor's maximum event age and
        timeout).

    Returns
    -------
    RunBody
        As ``run_view``.

    Raises
    ------
    RunNotFoundError
        No such run, or it expired.
    """
    item = store.get(run_id, now=now)
    if item is None:
        raise RunNotFoundError(f"no run {run_id}")
    stalled = (
        stalled_after_seconds is not None
        and item["status"] == RunStatus.RUNNING.value
        and now - parse_timestamp(item["updated_at"]) >= timedelta(seconds=stalled_after_seconds)
    )
    return run_view(item, output_bucket=output_bucket, stalled=stalled)
