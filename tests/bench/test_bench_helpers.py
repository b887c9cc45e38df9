"""The bench's pure helpers: generated input objects, the call tally, due-time arithmetic.

Benchmarks themselves are not tests (they report, see bench/); these check only that
the helpers they rely on compute what their figures claim.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter

import pytest

from bench import localstage_fan_out
from bench.figures import Figure, unmeasured
from bench.handler_code import CallTally
from bench.localstage import TABLE_REQUESTS, real_seconds_from_due
from bench.localstage_fan_out import (
    FAN_OUT_BUDGET_S,
    FAN_OUT_SIZES,
    FAN_OUT_WALL_TARGET_S,
    TABLE_SCALING,
    _fan_out_skipped,
    fan_out_budget,
    fan_out_figures,
)
from bench.recursive_processor import LINE_BYTES, object_parts, record_amount, record_line
from stacks.stage import pattern_stack_classes


def test_every_generated_line_is_one_valid_record_of_the_stated_size() -> None:
    # GIVEN lines of a few index widths WHEN generated THEN each is LINE_BYTES long,
    # ends with its only newline and parses as the record the processor expects
    for index in (0, 7, 123_456, 999_999_999):
        line = record_line(index)
        assert len(line) == LINE_BYTES
        assert line.count(b"\n") == 1 and line.endswith(b"\n")
        value = json.loads(line)
        assert value["id"] == f"r{index:09d}"
        assert value["amount"] == record_amount(index)


def test_object_parts_concatenate_to_the_object_in_whole_lines() -> None:
    # GIVEN a 20-line object in parts of 8 lines WHEN generated THEN 3 parts, each of
    # whole lines, together exactly the 20 lines in order
    parts = list(object_parts(20 * LINE_BYTES, part_bytes=8 * LINE_BYTES))
    assert [len(part) // LINE_BYTES for part in parts] == [8, 8, 4]
    assert all(len(part) % LINE_BYTES == 0 for part in parts)
    assert b"".join(parts) == b"".join(record_line(index) for index in range(20))


def test_the_tally_counts_requests_items_and_bytes_by_operation() -> None:
    # GIVEN responses as botocore parses them WHEN recorded THEN requests per operation,
    # items read (Query ScannedCount, GetItem hits only) and GetObject bytes add up
    tally = CallTally()
    tally.record("dynamodb", "GetItem", {"Item": {"k": {"S": "v"}}})
    tally.record("dynamodb", "GetItem", {})
    tally.record("dynamodb", "Query", {"Count": 3, "ScannedCount": 4, "Items": []})
    tally.record("dynamodb", "PutItem", {})
    tally.record("s3", "GetObject", {"ContentLength": 1024})
    assert tally.requests == {
        "dynamodb:GetItem": 2,
        "dynamodb:Query": 1,
        "dynamodb:PutItem": 1,
        "s3:GetObject": 1,
    }
    assert (tally.items_read, tally.bytes_read, tally.total_requests) == (5, 1024, 5)
    tally.reset()
    assert (tally.total_requests, tally.items_read, tally.bytes_read) == (0, 0, 0)


def test_due_to_done_counts_the_wait_until_due_at_the_stage_clock_speed() -> None:
    # GIVEN a schedule created 90 stage seconds before its time, at 90x (due 1 real
    # second after creation) and completed 1.5 real seconds after creation
    body = {
        "created_at": "2026-01-01T00:00:00.000Z",
        "at": "2026-01-01T00:01:30+00:00",
        "completed_at": "2026-01-01T00:00:01.500Z",
    }
    # THEN it took half a second from due to DONE
    assert abs(real_seconds_from_due(body, 90.0) - 0.5) < 1e-6


def test_the_bench_finds_each_patterns_scenarios_and_skips_a_removed_one() -> None:
    # GIVEN the pattern folders WHEN the bench looks up their scenario modules
    from bench.localstage import _scenarios

    # THEN it finds each present pattern's, and none for a pattern that is gone
    for stack_class in pattern_stack_classes():
        found = _scenarios(stack_class.__module__.split(".")[1])
        assert found is not None and stack_class.pattern_name == found.STACK
    assert _scenarios("no_such_pattern") is None


def test_a_skipped_figure_has_no_value_misses_its_target_and_says_why() -> None:
    # GIVEN a row the budget left unmeasured WHEN reported as skipped
    figure = Figure.skipped(table="T", name="n", unit="s", target="< 1 s", reason="no time")

    # THEN it keeps its row, has no value, does not meet its target and says why
    assert (figure.table, figure.name, figure.unit, figure.target) == ("T", "n", "s", "< 1 s")
    assert math.isnan(figure.value)
    assert figure.met is False
    assert figure.note == "skipped: no time"
    # AND the report calls it not measured, not short: nothing was shown to miss
    assert not figure.measured and figure.verdict == "not measured"
    missed = Figure(table="T", name="n", value=2.0, unit="s", target="< 1 s", met=False)
    assert missed.measured and missed.verdict == "short"


def test_the_points_after_the_measured_ones_are_each_one_skipped_row() -> None:
    # GIVEN four sizes of which the budget let the first one be measured
    # WHEN the rest are reported
    figures = unmeasured(
        (1, 10, 100, 1000),
        1,
        table="T",
        name=lambda size: f"{size} MiB",
        unit="MiB",
        target="<= 5",
        reason="no time",
    )

    # THEN one skipped row per unmeasured size, in order, each named by its size
    assert [figure.name for figure in figures] == ["10 MiB", "100 MiB", "1000 MiB"]
    assert all(figure.note == "skipped: no time" and not figure.met for figure in figures)


def test_a_fan_out_size_runs_only_with_time_for_its_target() -> None:
    # GIVEN the bench's time left WHEN each size is planned THEN a size gets at most the
    # section's budget, and is skipped (with the time left and what it needs) when less
    # than its wall-time target is left
    assert fan_out_budget(10_000, None) == FAN_OUT_BUDGET_S
    assert fan_out_budget(10_000, 1_000.0) == FAN_OUT_BUDGET_S
    assert fan_out_budget(1_000, 100.0) == 100.0
    reason = fan_out_budget(10_000, FAN_OUT_WALL_TARGET_S[10_000] - 1)
    assert isinstance(reason, str)
    assert reason.startswith("179 s left") and "N = 10,000 needs up to 180 s" in reason


def test_a_skipped_fan_out_size_keeps_every_one_of_its_rows() -> None:
    # GIVEN a size that was not run WHEN reported THEN its three request rows and its
    # wall-time row are listed as skipped with the reason, none silently dropped
    rows = _fan_out_skipped(10_000, "10 s left")
    assert [(row.table, row.name) for row in rows] == [
        (TABLE_REQUESTS, "fan-out N = 10,000: SQS sends per subtask (ventilator)"),
        (TABLE_REQUESTS, "fan-out N = 10,000: DynamoDB write requests per subtask (workers)"),
        (TABLE_REQUESTS, "fan-out N = 10,000: reducer Query pages per job"),
        (TABLE_SCALING, "N = 10,000: POST to DONE"),
    ]
    assert all(math.isnan(row.value) and not row.met for row in rows)
    assert all(row.note == "skipped: 10 s left" for row in rows)
    assert rows[2].target.startswith("<= 2 ")


def test_fan_out_sizes_with_no_time_left_are_all_reported_skipped_without_a_stage() -> None:
    # GIVEN a bench deadline already passed WHEN the fan-out section runs THEN no size
    # touches the stage, and every size's four rows say why they were skipped
    rows = fan_out_figures(None, None, None, deadline=time.monotonic())  # type: ignore[arg-type]
    assert len(rows) == 4 * len(FAN_OUT_SIZES)
    assert all(math.isnan(row.value) for row in rows)
    first, later = rows[0].note, rows[-1].note
    assert "left of the bench's budget; N = 100 needs up to 15 s" in first
    assert later == "skipped: a smaller size was skipped"


def test_a_measured_fan_out_size_has_the_rows_and_targets_of_a_skipped_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a size whose run made one SendMessageBatch per 10 subtasks, one transaction
    # per subtask, and one Query page too many for N = 100
    # (in 2 s from the POST to DONE, the POST's ventilation taking 0.4 s)
    def run(stage: object, target: object, fan_out: object, n: int, budget: float) -> object:
        return localstage_fan_out.FanOutRun(
            seconds=2.0,
            post_seconds=0.4,
            counts={
                "Api": Counter({"sqs:SendMessageBatch": n // 10}),
                "Worker": Counter({"dynamodb:TransactWriteItems": n}),
                "Reducer": Counter({"dynamodb:Query": 2}),
            },
        )

    monkeypatch.setattr(localstage_fan_out, "_run_fan_out", run)
    # WHEN the section runs with no deadline
    rows = fan_out_figures(None, None, None)  # type: ignore[arg-type]
    # THEN each size lists the same rows and targets as when it is skipped, judged
    first = rows[:4]
    skipped = _fan_out_skipped(100, "-")
    assert [(r.name, r.target) for r in first] == [(r.name, r.target) for r in skipped]
    assert [r.value for r in first] == [0.1, 1.0, 2.0, 2.0]
    assert [r.met for r in first] == [True, True, False, True]
    # AND the wall-time row says how long the POST (the ventilation) took
    assert "the POST, which sends every subtask before it answers, took 0.4 s" in first[3].note


def test_earlier_work_counts_as_stopped_only_after_a_quiet_spell_longer_than_a_subtask() -> None:
    # GIVEN functions making one request a second (a worker running 1 s subtasks), on a
    # fake clock
    now = [0.0]

    def tick(seconds: float) -> None:
        now[0] += seconds

    def one_a_second_until(stop: float) -> int:
        return int(min(now[0], stop))

    # WHEN they stop after 4 s THEN the wait returns True only after a quiet spell
    # longer than a subtask (a 0.5 s gap between two requests is not one)
    assert localstage_fan_out.wait_until_quiet(
        lambda: one_a_second_until(4.0), clock=lambda: now[0], sleep=tick
    )
    assert now[0] >= 4.0 + localstage_fan_out.SETTLE_QUIET_S

    # WHEN they never stop THEN the wait gives up at its budget and says so
    now[0] = 0.0
    assert not localstage_fan_out.wait_until_quiet(
        lambda: one_a_second_until(math.inf), clock=lambda: now[0], sleep=tick
    )
    assert localstage_fan_out.SETTLE_BUDGET_S <= now[0] < localstage_fan_out.SETTLE_BUDGET_S + 1
