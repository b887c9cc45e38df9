"""Fan-out/fan-in on a booted localstage: requests per subtask and wall time per size.

The sizes run last in the localstage section (:func:`bench.localstage.localstage_figures`):
they are its open-ended rows, so with a bench-wide deadline they are what yields.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from localstage.stage import LocalStage
from localstage.target import LocalTarget

from bench.figures import Figure
from bench.localstage_requests import TABLE_REQUESTS, code_requests, describe, function_label

FAN_OUT_SIZES = (100, 1_000, 10_000)
#: A fan-out size that has not finished by then is reported as skipped.
FAN_OUT_BUDGET_S = 180.0
#: Wall-time targets locally (the e2e suite's budget for N = 1,000 is "well under a
#: minute"; N = 10,000 gets the bench's 3 minutes).
FAN_OUT_WALL_TARGET_S = {100: 15.0, 1_000: 60.0, 10_000: 180.0}

TABLE_SCALING = "Fan-out/fan-in scaling (localstage)"
#: How long the subtasks left by earlier sections may take to stop after their queues
#: are emptied (the batches already handed to a worker finish; nothing new is received).
SETTLE_BUDGET_S = 30.0
SETTLE_INTERVAL_S = 0.5
#: How long the functions must make no request to count as stopped: longer than one
#: subtask's work (``work_ms`` is at most 1,000 in the API's document), during which
#: a worker still running a batch makes none.
SETTLE_QUIET_S = 2.5


def wait_until_quiet(
    requests_so_far: Callable[[], int],
    *,
    quiet_s: float = SETTLE_QUIET_S,
    budget_s: float = SETTLE_BUDGET_S,
    interval_s: float = SETTLE_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait until ``requests_so_far()`` has not changed for ``quiet_s``; False if it
    still changed when ``budget_s`` ran out.

    Examples
    --------
    >>> now = [0.0]
    >>> def tick(seconds: float) -> None:
    ...     now[0] += seconds
    >>> # one request a second (a worker running 1 s subtasks) for 5 s, then none
    >>> wait_until_quiet(lambda: min(int(now[0]), 5), clock=lambda: now[0], sleep=tick)
    True
    >>> now[0] >= 5 + SETTLE_QUIET_S
    True
    """
    deadline = clock() + budget_s
    last = requests_so_far()
    quiet_since = clock()
    while clock() < deadline:
        sleep(interval_s)
        current = requests_so_far()
        if current != last:
            last, quiet_since = current, clock()
        elif clock() - quiet_since >= quiet_s:
            return True
    return False


def settle_earlier_work(stage: LocalStage) -> bool:
    """Wait until the fan-out functions stop making requests; False if they had not
    within :data:`SETTLE_BUDGET_S`.

    The API fuzzing before this section submits valid jobs of up to 10,000 subtasks and
    empties the stack's queues after it (``tests.support.api_fuzz``), but the batches
    its workers already hold still run. Running beside the measured job, their requests
    were counted as its own (a bench once reported 59.8 writes per subtask and 30 s for
    N = 100).
    """
    labels = [
        function.spec.label
        for function in stage.functions.values()
        if function.spec.label.startswith("FanOutFanIn")
    ]

    def requests_so_far() -> int:
        return sum(sum(code_requests(stage, label).values()) for label in labels)

    return wait_until_quiet(requests_so_far)


@dataclass(frozen=True)
class FanOutRun:
    """One job of N subtasks, measured."""

    #: From the POST to the poll that read DONE.
    seconds: float
    #: The POST alone: the API function ventilates every subtask before it answers 202.
    post_seconds: float
    #: Requests per function (``Api``, ``Worker``, ``Reducer``), by ``service:Operation``.
    counts: dict[str, Counter[str]]


def _run_fan_out(
    stage: LocalStage, target: LocalTarget, fan_out: ModuleType, n: int, budget: float
) -> FanOutRun | str:
    """Submit an N-subtask job and wait for DONE, or say why it did not finish."""
    labels = {
        part: function_label(stage, "FanOutFanIn", part) for part in ("Api", "Worker", "Reducer")
    }
    stage.reset_request_counts()
    began = time.monotonic()
    try:
        accepted = fan_out.submit(target, {"count": n, "seed": n})
        post_seconds = time.monotonic() - began
        done = fan_out.poll_until_finished(target, accepted.headers["location"], timeout=budget)
    except AssertionError as error:  # a refused POST or a wait that timed out
        return str(error).split(";")[0][:160]
    seconds = time.monotonic() - began
    fan_out.check_finished(
        done.body, status="DONE", values=[fan_out.seeded_value(n, i) for i in range(n)]
    )
    counts = {part: code_requests(stage, label) for part, label in labels.items()}
    return FanOutRun(seconds=seconds, post_seconds=post_seconds, counts=counts)


def fan_out_budget(n: int, left: float | None) -> float | str:
    """How long size ``n`` may wait for DONE with ``left`` seconds of the bench to go,
    or why it is skipped.

    A size runs only if it can be given its wall-time target: with less, it could only
    report that it was stopped, not whether the target is met. ``None`` (no bench-wide
    deadline) gives every size the section's own budget.

    Examples
    --------
    >>> fan_out_budget(10_000, 100.0)
    "100 s left of the bench's budget; N = 10,000 needs up to 180 s"
    >>> fan_out_budget(1_000, 100.0)
    100.0
    """
    if left is None:
        return FAN_OUT_BUDGET_S
    needed = FAN_OUT_WALL_TARGET_S[n]
    if left < needed:
        return f"{left:.0f} s left of the bench's budget; N = {n:,} needs up to {needed:g} s"
    return min(FAN_OUT_BUDGET_S, left)


def _request_targets(n: int) -> dict[str, tuple[str, float]]:
    """Each request row of size ``n``: its target, as text and as the largest value met."""
    pages = _query_pages(n)
    return {
        "SQS sends per subtask (ventilator)": ("<= 0.1 (SendMessageBatch of 10)", 0.1),
        "DynamoDB write requests per subtask (workers)": (
            "<= 1 (one TransactWriteItems: result put + counter update)",
            1.0,
        ),
        "reducer Query pages per job": (
            f"<= {pages} (~{_RESULT_ITEM_BYTES} B per result, 1 MB pages)",
            float(pages),
        ),
    }


def _fan_out_skipped(n: int, reason: str) -> list[Figure]:
    """The rows of a size that was not measured: its request rows and its wall time."""
    return [
        *(
            Figure.skipped(
                table=TABLE_REQUESTS,
                name=f"fan-out N = {n:,}: {name}",
                unit="requests",
                target=target,
                reason=reason,
            )
            for name, (target, _) in _request_targets(n).items()
        ),
        Figure.skipped(
            table=TABLE_SCALING,
            name=f"N = {n:,}: POST to DONE",
            unit="s",
            target=f"< {FAN_OUT_WALL_TARGET_S[n]:g} s",
            reason=reason,
        ),
    ]


def _query_pages(n: int) -> int:
    return max(1, math.ceil(n * _RESULT_ITEM_BYTES / 1_000_000))


def fan_out_figures(
    stage: LocalStage,
    target: LocalTarget,
    fan_out: ModuleType,
    *,
    deadline: float | None = None,
) -> list[Figure]:
    """Requests per subtask and wall time at each size, smallest first.

    A size that did not finish in its budget, or that the bench's ``deadline``
    (``time.monotonic()``) leaves too little time (:func:`fan_out_budget`), is reported
    as skipped, as are the larger sizes after it.
    """
    figures: list[Figure] = []
    skipped = ""
    for n in FAN_OUT_SIZES:
        left = None if deadline is None else deadline - time.monotonic()
        budget = fan_out_budget(n, left)
        if skipped:
            result: FanOutRun | str = "a smaller size was skipped"
        elif isinstance(budget, str):
            result = budget
        else:
            outcome = _run_fan_out(stage, target, fan_out, n, budget)
            result = (
                outcome
                if not isinstance(outcome, str)
                else f"budget {budget:.0f} s on this machine: {outcome}"
            )
        if isinstance(result, str):
            skipped = result
            figures += _fan_out_skipped(n, result)
            continue
        seconds, counts = result.seconds, result.counts
        sends = counts["Api"]["sqs:SendMessageBatch"] + counts["Api"]["sqs:SendMessage"]
        worker_writes = sum(
            count
            for name, count in counts["Worker"].items()
            if name.split(":")[1] in _DYNAMODB_WRITES
        )
        measured = {
            "SQS sends per subtask (ventilator)": (
                sends / n,
                f"API function, its GET polls included: {describe(counts['Api'])}",
            ),
            "DynamoDB write requests per subtask (workers)": (
                worker_writes / n,
                describe(counts["Worker"]),
            ),
            "reducer Query pages per job": (
                float(counts["Reducer"]["dynamodb:Query"]),
                describe(counts["Reducer"]),
            ),
        }
        targets = _request_targets(n)
        figures += [
            *(
                Figure(
                    table=TABLE_REQUESTS,
                    name=f"fan-out N = {n:,}: {name}",
                    value=value,
                    unit="requests",
                    target=targets[name][0],
                    met=value <= targets[name][1] + 1e-9,
                    note=note,
                )
                for name, (value, note) in measured.items()
            ),
            Figure(
                table=TABLE_SCALING,
                name=f"N = {n:,}: POST to DONE",
                value=seconds,
                unit="s",
                target=f"< {FAN_OUT_WALL_TARGET_S[n]:g} s",
                met=seconds < FAN_OUT_WALL_TARGET_S[n],
                note=(
                    f"{n / seconds:,.0f} subtasks/s; the POST, which sends every subtask before"
                    f" it answers, took {result.post_seconds:.1f} s; worker max concurrency 5"
                ),
            ),
        ]
    return figures


_DYNAMODB_WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
}
# A result item's DynamoDB size (names + values: job_id, subtask, value, result, outcome,
# recorded_at, expires_at). Query's 1 MB page counts items before the projection.
_RESULT_ITEM_BYTES = 140
