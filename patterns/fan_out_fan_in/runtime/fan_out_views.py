"""Fan-out/fan-in: the job as a client sees it (``GET /jobs/{job_id}`` and every answer).

Plain Python on ``fan_out_store``; ``fan_out_api.py`` renders the view.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fan_out_models import JobNotFoundError, JobStatus, JobView, timeout_error
from fan_out_store import JobStore
from handler_kit.clock import epoch_seconds


def job_view(item: Mapping[str, Any], now: datetime) -> JobView:
    """Client view of a job item; RUNNING/REDUCING past ``deadline_epoch`` reads TIMED_OUT."""
    status = JobStatus(item["status"])
    error = item.get("error")
    if status in (JobStatus.RUNNING, JobStatus.REDUCING) and epoch_seconds(now) >= int(
        item["deadline_epoch"]
    ):
        status, error = JobStatus.TIMED_OUT, timeout_error()
    return JobView(
        job_id=item["job_id"],
        status=status,
        total=int(item["total"]),
        done=int(item["done"]),
        failed=int(item["failed"]),
        remaining=int(item["remaining"]),
        created_at=item["created_at"],
        updated_at=item.get("updated_at", item["created_at"]),
        aggregate=item.get("aggregate"),
        error=error,
    )


def get_job_view(store: JobStore, job_id: str, *, now: datetime) -> JobView:
    """Read a job for ``GET /jobs/{job_id}``, marking one past its deadline TIMED_OUT
    first: a count sent before the deadline can land after it (an SDK retry), and is
    then refused, so the answer is final.

    Raises
    ------
    JobNotFoundError
        If there is no such job.
    """
    item = store.get(job_id, now=now)
    if item is None:
        raise JobNotFoundError(f"job {job_id} not found")
    view = job_view(item, now)
    if view.status is JobStatus.TIMED_OUT and item["status"] != JobStatus.TIMED_OUT.value:
        store.mark_timed_out(job_id, now)  # refused if finished meanwhile: answer that
        view = job_view(store.get(job_id, now=now) or item, now)
    return view
