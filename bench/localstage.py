"""Benchmarks on a booted localstage: AWS requests per operation, schedules, boot.

The fan-out sizes are in bench/localstage_fan_out.py.

Requests are counted in moto's process (:meth:`localstage.stage.LocalStage.request_counts`),
so every request a function makes is seen; the figures count what handler code sends
(``from_function_code``), per caller, and leave out the event sources' polls, which
Lambda makes on AWS. Wall times are local (moto serializes every request; the
machine's other load counts): they show how the work scales, not AWS latency.
"""

from __future__ import annotations

import importlib
import importlib.util
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from localstage.stage import LocalStage
from localstage.target import LocalTarget

from bench.api_fuzz import EXAMPLES as FUZZ_EXAMPLES
from bench.api_fuzz import fuzz_figures
from bench.figures import Figure
from bench.localstage_demo import (  # noqa: F401  (bench.__main__ imports them from here)
    DEMO_BUDGET_S,
    DEMO_TARGET_S,
    TABLE_DEMO,
    demo_figure,
    demo_skipped,
)
from bench.localstage_fan_out import FAN_OUT_SIZES, fan_out_figures, settle_earlier_work
from bench.localstage_requests import TABLE_REQUESTS, code_requests, describe, function_label

#: Stage time for visibility timeouts and retries (as the demo and the e2e tests).
CLOCK_SPEED = 90.0
BOOT_TARGET_S = 6.0
#: Schedules created a couple of stage seconds apart (the e2e test fires 100).
SCHEDULE_COUNT = 50
#: Real seconds to wait for them all to fire, run and be cleaned up.
SCHEDULE_BUDGET_S = 90.0

TABLE_SCHEDULES = "One-off schedules (localstage)"


#: The app's pattern folders, each with its scenarios.py.
PATTERNS_DIR = Path(__file__).resolve().parents[1] / "patterns"


def _scenarios(module: str) -> ModuleType | None:
    """A pattern's scenario module, or None when a fork removed the pattern."""
    if not (PATTERNS_DIR / module / "scenarios.py").is_file():
        return None
    return importlib.import_module(f"patterns.{module}.scenarios")


def decoupled_figures(
    stage: LocalStage, target: LocalTarget, decoupled: ModuleType
) -> list[Figure]:
    """Requests the decoupled-invocation functions make per POST, GET and worker run."""
    api_label = function_label(stage, "DecoupledInvocation", "Api")
    worker_label = function_label(stage, "DecoupledInvocation", "Worker")
    api = target.output(decoupled.STACK, "ApiUrl")

    stage.reset_request_counts()
    accepted = decoupled.submit(target, {"task": "bench", "input": "x", "duration_ms": 0})
    post = code_requests(stage, api_label)
    decoupled.poll_until_finished(target, accepted.headers["location"])
    # Let the worker's last write land before reading its counts.
    time.sleep(0.5)
    worker = code_requests(stage, worker_label)
    stage.reset_request_counts()
    target.call_api(api, "GET", accepted.headers["location"])
    get = code_requests(stage, api_label)

    def row(name: str, counts: Counter[str], minimum: int, why: str) -> Figure:
        value = float(sum(counts.values()))
        return Figure(
            table=TABLE_REQUESTS,
            name=f"decoupled invocation: {name}",
            value=value,
            unit="requests",
            target=f"<= {minimum} ({why})",
            met=value <= minimum,
            note=describe(counts),
        )

    return [
        row("POST /jobs", post, 2, "conditional PutItem + SendMessage"),
        row("GET /jobs/{id}", get, 1, "one GetItem"),
        row("worker run (one message)", worker, 2, "claim UpdateItem + finish UpdateItem"),
    ]


def real_seconds_from_due(body: dict[str, Any], clock_speed: float) -> float:
    """Real seconds from the moment a schedule came due on the stage clock to DONE.

    Handler timestamps are real time; the wait from creation to ``at`` runs
    ``clock_speed`` times faster (localstage's Scheduler), so the schedule came due
    ``(at - created_at) / clock_speed`` real seconds after it was created.
    """
    created = datetime.fromisoformat(body["created_at"]).timestamp()
    due = datetime.fromisoformat(body["at"]).timestamp()
    completed = datetime.fromisoformat(body["completed_at"]).timestamp()
    return completed - (created + (due - created) / clock_speed)


def schedule_figures(stage: LocalStage, target: LocalTarget, schedules: ModuleType) -> list[Figure]:
    """``SCHEDULE_COUNT`` schedules fire once each: what is left, requests per schedule.

    The schedules are created as the e2e test and the demo create them
    (:mod:`patterns.one_off_schedules.scenarios`): due from 90 stage seconds ahead,
    2 stage seconds apart.
    """
    labels = {
        part: function_label(stage, schedules.STACK, part)
        for part in ("Api", "Executor", "Cleanup")
    }
    stage.reset_request_counts()
    ids = [
        schedules.create(
            target,
            at=schedules.at_time(schedules.LEAD + schedules.SPACING * index),
            payload={"index": index},
        ).body["schedule_id"]
        for index in range(SCHEDULE_COUNT)
    ]
    # Read now: the GETs of the wait below go through the same function.
    api = code_requests(stage, labels["Api"])
    deadline = time.monotonic() + SCHEDULE_BUDGET_S
    bodies: list[dict[str, Any]] = []
    not_finished = ""
    try:
        for schedule_id in ids:
            left = max(1.0, deadline - time.monotonic())
            bodies.append(schedules.wait_until_finished(target, schedule_id, timeout=left))
        target.wait_for(
            "every fired schedule to be deleted",
            lambda: not schedules.remaining(target, ids),
            timeout=max(1.0, deadline - time.monotonic()),
        )
    except AssertionError as error:  # a wait that timed out
        not_finished = str(error).split(";")[0][:160]
    # Let the last cleanup's write land before reading its counts.
    time.sleep(0.5)
    left_over = len(schedules.remaining(target, ids))
    executor = code_requests(stage, labels["Executor"])
    cleanup = code_requests(stage, labels["Cleanup"])
    done = [body for body in bodies if body["status"] == "DONE" and body["attempts"] == 1]
    count = SCHEDULE_COUNT

    def per_schedule(name: str, counts: Counter[str], minimum: int, why: str) -> Figure:
        value = sum(counts.values()) / count
        return Figure(
            table=TABLE_SCHEDULES,
            name=f"{name} requests per schedule",
            value=value,
            unit="requests",
            target=f"<= {minimum} ({why})",
            met=value <= minimum + 1e-9,
            note=f"{count} schedules: {describe(counts)}",
        )

    figures = [
        Figure(
            table=TABLE_SCHEDULES,
            name=f"schedules left after {count} fired",
            value=float(left_over),
            unit="schedules",
            target="0",
            met=left_over == 0 and not not_finished,
            note=(
                f"{len(done)} of {count} DONE after exactly one attempt"
                + (f"; {not_finished}" if not_finished else "")
                + "; ListSchedules of the stack's group"
            ),
        ),
        per_schedule("API (POST /schedules)", api, 2, "PutItem PENDING + CreateSchedule"),
        per_schedule("executor", executor, 2, "claim UpdateItem + DONE UpdateItem"),
        per_schedule("cleanup", cleanup, 2, "DeleteSchedule + UpdateItem schedule_deleted_at"),
    ]
    if done:
        latencies = [real_seconds_from_due(body, CLOCK_SPEED) for body in done]
        figures.append(
            Figure(
                table=TABLE_SCHEDULES,
                name="due to DONE (median, real seconds)",
                value=statistics.median(latencies),
                unit="s",
                target="informative (localstage's Scheduler polls every 0.2 s)",
                met=True,
                note=(
                    f"max {max(latencies):.2f} s over {len(done)} schedules; stage clock "
                    f"{CLOCK_SPEED:g}x: the wait until due is compressed, firing and "
                    "running are not (not AWS latency)"
                ),
            )
        )
    return figures


def boot_figures(stage: LocalStage) -> list[Figure]:
    timings = stage.timings
    figures = [
        Figure(
            table=TABLE_DEMO,
            name="localstage boot (moto, deploy, functions, sources; synth excluded)",
            value=timings["boot"],
            unit="s",
            target=f"<= {BOOT_TARGET_S:g} s",
            met=timings["boot"] <= BOOT_TARGET_S,
            note=", ".join(
                f"{step} {seconds:.1f} s"
                for step, seconds in timings.items()
                if step not in ("boot", "synth")
            ),
        )
    ]
    if "synth" in timings:
        figures.append(
            Figure(
                table=TABLE_DEMO,
                name="synth of stage local before the boot (the CDK CLI, cdk-nag on)",
                value=timings["synth"],
                unit="s",
                target="informative (see the synth row above for its target)",
                met=True,
                note="moto starts meanwhile",
            )
        )
    return figures


def localstage_figures(
    *,
    workdir: Path,
    assembly_dir: Path | None = None,
    log: Callable[[str], Any] = print,
    deadline: float | None = None,
) -> list[Figure]:
    """Boot stage ``local`` once and measure everything above on it.

    The fan-out sizes come last: they are the open-ended rows (N = 10,000 alone takes
    minutes), so with a bench-wide ``deadline`` (``time.monotonic()``) they are what
    yields (:func:`fan_out_budget`), not the rows with a fixed cost.
    """
    with LocalStage(workdir=workdir, assembly_dir=assembly_dir, clock_speed=CLOCK_SPEED) as stage:
        target = LocalTarget(stage)
        figures = boot_figures(stage)
        # A fork that removed one of these patterns gets the other figures.
        decoupled = _scenarios("decoupled_invocation")
        if decoupled is not None:
            log("  decoupled invocation requests")
            figures += decoupled_figures(stage, target, decoupled)
        schedules = _scenarios("one_off_schedules")
        if schedules is not None:
            log(f"  one-off schedules: {SCHEDULE_COUNT} fire (budget {SCHEDULE_BUDGET_S:g} s)")
            figures += schedule_figures(stage, target, schedules)
        log(f"  API fuzzing: {FUZZ_EXAMPLES} cases per operation and mode")
        figures += fuzz_figures(target, log=log)
        fan_out = _scenarios("fan_out_fan_in")
        if fan_out is not None:
            if not settle_earlier_work(stage):
                log("  fan-out: the fuzzed jobs' workers were still making requests")
            left = "" if deadline is None else f"; {deadline - time.monotonic():.0f} s left"
            log(f"  fan-out at N = {', '.join(f'{n:,}' for n in FAN_OUT_SIZES)}{left}")
            figures += fan_out_figures(stage, target, fan_out, deadline=deadline)
    return figures
