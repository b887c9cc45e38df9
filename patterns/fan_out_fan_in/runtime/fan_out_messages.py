"""Fan-out/fan-in pydantic models: the ``POST /jobs`` body and the subtask message.

Apart from ``fan_out_models`` so that a function that validates neither (the reducer)
does not import pydantic: about 65 ms of its cold start. The API and the worker import
this module when they load (not on their first request).
"""

from __future__ import annotations

from typing import Annotated, Any

from fan_out_models import (
    MAX_LISTED_FAILURES,
    MAX_SUBTASKS,
    VALUE_LIMIT,
    InvalidSubtaskMessageError,
    seeded_value,
)
from handler_kit import http_requests
from handler_kit.fingerprints import OrderFree, normalized
from handler_kit.messages import parse_message
from pydantic import BaseModel, ConfigDict, Field, model_validator

_Value = Annotated[int, Field(ge=-VALUE_LIMIT, le=VALUE_LIMIT)]
#: A queued subtask's value: as wide as an earlier version accepted (10^9), so messages
#: queued before the tighter request limit still drain instead of turning poison.
_MessageValue = Annotated[int, Field(ge=-(10**9), le=10**9)]
_Index = Annotated[int, Field(ge=0, lt=MAX_SUBTASKS)]


class JobRequest(BaseModel):
    """The validated body of ``POST /jobs``: ``items``, or ``count`` (and ``seed``).

    Strict types and no extra fields, matching the JSON schema model API Gateway
    validates with; the rules a draft-4 schema cannot say (exactly one of items and
    count, failure indexes inside the job) are checked here.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    items: Annotated[list[_Value], Field(min_length=1, max_length=MAX_SUBTASKS)] | None = None
    count: Annotated[int, Field(ge=1, le=MAX_SUBTASKS)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    # A set of indexes: its order means nothing (repeats are refused below).
    fail_indexes: Annotated[list[_Index], Field(max_length=MAX_LISTED_FAILURES), OrderFree()] = []
    work_ms: Annotated[int, Field(ge=0, le=1000)] = 0

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        if (self.items is None) == (self.count is None):
            raise ValueError("give exactly one of 'items' (a list) or 'count' (with 'seed')")
        if self.seed is not None and self.count is None:
            raise ValueError("'seed' goes with 'count', not with 'items'")
        total = self.total
        outside = [index for index in self.fail_indexes if index >= total]
        if outside:
            raise ValueError(f"fail_indexes {outside[:5]} are not subtasks of a {total}-job")
        if len(set(self.fail_indexes)) != len(self.fail_indexes):
            raise ValueError("fail_indexes must not repeat")
        return self

    def fingerprint_view(self) -> dict[str, Any]:
        """The request as an Idempotency-Key compares it (``handler_kit.fingerprints``).

        ``seed`` is absent in the model when not given, but a ``count`` job without it
        runs with seed 0: the same job as one that says ``"seed": 0``.
        """
        view = normalized(self)
        if self.count is not None:
            view["seed"] = self.seed or 0
        return view

    @property
    def total(self) -> int:
        """N, the number of subtasks."""
        return len(self.items) if self.items is not None else int(self.count or 0)

    def values(self) -> list[int]:
        """The subtask inputs: the items, or ``count`` values derived from the seed."""
        if self.items is not None:
            return list(self.items)
        return [seeded_value(self.seed or 0, index) for index in range(self.total)]

    def summary(self) -> dict[str, Any]:
        """What the job item keeps of the request (not the items themselves)."""
        summary: dict[str, Any] = {
            "source": "items" if self.items is not None else "count",
            "fail_indexes": sorted(self.fail_indexes),
            "work_ms": self.work_ms,
        }
        if self.count is not None:
            summary["seed"] = self.seed or 0
        return summary


class SubtaskMessage(BaseModel):
    """The SQS message body of one subtask.

    Unknown fields are ignored so a newer ventilator can add fields while an older
    worker version still drains the queue.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, defer_build=True)

    job_id: Annotated[str, Field(pattern=http_requests.UUID_RE.pattern)]
    index: _Index
    value: _MessageValue
    fail: bool = False
    work_ms: Annotated[int, Field(ge=0, le=1000)] = 0
    #: The job's deadline (epoch seconds): past it the result would be refused, so the
    #: worker does not run the subtask. Absent in messages of an older ventilator.
    deadline_epoch: Annotated[int, Field(ge=0)] | None = None

    def to_body(self) -> str:
        """Compact JSON; defaults left out to keep 10,000 messages small."""
        return self.model_dump_json(exclude_defaults=True)


# --------------------------------------------------------------------------- parsing


def parse_job_request(raw: bytes) -> JobRequest:
    """Validate a ``POST /jobs`` body.

    Raises
    ------
    InvalidRequestError
        Empty body, malformed or not strict JSON, N = 0, N over the limit, malformed items.
    """
    missing = "request body is required: {'items': [...]} or {'count': N}"
    return http_requests.parse_request(JobRequest, raw, missing=missing)


def parse_subtask_message(body: str) -> SubtaskMessage:
    """Validate an SQS message body.

    Raises
    ------
    InvalidSubtaskMessageError
        If the body is not a subtask message (a poison message).
    """
    message = parse_message(
        SubtaskMessage, body, error=InvalidSubtaskMessageError, what="subtask message"
    )
    return message.model_copy(update={"job_id": message.job_id.lower()})
