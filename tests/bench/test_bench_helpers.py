"""The bench's pure helpers: generated input objects, the call tally, due-time arithmetic.

Benchmarks themselves are not tests (they report, see bench/); these check only that
the helpers they rely on compute what their figures claim.
"""

from __future__ import annotations

import json
import math

from bench.figures import Figure, unmeasured
from bench.handler_code import CallTally
from bench.localstage import real_seconds_from_due
from bench.recursive_processor import LINE_BYTES, object_parts, record_amount, record_line


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

    # THEN it finds a present pattern's, and none for a pattern that is gone
    found = _scenarios("fan_out_fan_in")
    assert found is not None and found.STACK == "FanOutFanIn"
    assert _scenarios("no_such_pattern") is None


def test_a_skipped_figure_has_no_value_misses_its_target_and_says_why() -> None:
    # GIVEN a row the budget left unmeasured WHEN reported as skipped
    figure = Figure.skipped(table="T", name="n", unit="s", target="< 1 s", reason="no time")

    # THEN it keeps its row, has no value, does not meet its target and says why
    assert (figure.table, figure.name, figure.unit, figure.target) == ("T", "n", "s", "< 1 s")
    assert math.isnan(figure.value)
    assert figure.met is False
    assert figure.note == "skipped: no time"


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
