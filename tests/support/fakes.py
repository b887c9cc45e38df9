"""In-memory fakes for time and the Lambda context, so handler tests never wait."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
START = datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand (no sleeping)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def advance_to(self, epoch: int) -> None:
        """Move to the Unix second ``epoch`` (an item's TTL ``expires_at``, a deadline)."""
        self.advance(epoch - self.epoch)

    @property
    def epoch(self) -> int:
        return int(self.now.timestamp())


@dataclass
class FakeSleep:
    """Records sleeps and moves the fake clock instead of waiting.

    ``during`` runs once inside the next sleep: a way to make something happen while
    the code under test is "working" (another delivery, a lease expiring).
    """

    clock: FakeClock
    calls: list[float] = field(default_factory=list)
    during: Callable[[], None] | None = None

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)
        hook, self.during = self.during, None
        if hook is not None:
            hook()


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context object that Powertools and the handlers use.

    ``remaining_ms`` is fixed unless ``clock`` is given: then it counts down from
    ``timeout_ms`` as the fake clock advances, as a real invocation's would.
    """

    function_name: str = "TestFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    remaining_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/TestFunction"
    log_stream_name: str = "2025/03/14/[$LATEST]0123456789abcdef"
    clock: FakeClock | None = None
    started: datetime | None = None

    def __post_init__(self) -> None:
        if self.clock is not None and self.started is None:
            self.started = self.clock()

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        if self.clock is None or self.started is None:
            return self.remaining_ms
        elapsed = (self.clock() - self.started).total_seconds() * 1000
        return max(0, int(self.remaining_ms - elapsed))


@dataclass
class FakeLambdaInvoker:
    """Stands in for a boto3 Lambda client's ``invoke``: records calls, returns 202.

    Asynchronous invocations (``InvocationType="Event"``) are kept in ``calls`` for
    the test to deliver when it wants (in order, twice, or never). ``fail_next`` makes
    the next call raise, like a throttled or failed Invoke.
    """

    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_next: Exception | None = None

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.calls.append(
            {
                "FunctionName": FunctionName,
                "InvocationType": InvocationType,
                "Payload": json.loads(Payload),
            }
        )
        return {"StatusCode": 202 if InvocationType == "Event" else 200}

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [call["Payload"] for call in self.calls]
