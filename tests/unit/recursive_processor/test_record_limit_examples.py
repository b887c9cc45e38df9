"""Record limits by example: records at, under and over the limit, wherever ranges cut."""

from __future__ import annotations

import sys

from tests.support.memory import traced_peak
from tests.unit.recursive_processor.conftest import (
    INPUT_PREFIX,
    BatchModules,
    Processor,
    record_line,
)
from tests.unit.recursive_processor.record_limit_model import (
    Summary,
    read_in_hops,
    summarize,
)

# --------------------------------------------------------------------------- examples


def read_once(batch: BatchModules, data: bytes, *, range_bytes: int, limit: int) -> Summary:
    return summarize(read_in_hops(batch, data, range_bytes=range_bytes, limit=limit, hops=[10**6]))


def padded_record(length: int, index: int = 1) -> bytes:
    """A valid record of exactly ``length`` bytes."""
    line = record_line(index).encode()
    pad = length - len(line) - len(',"p":""')
    assert pad >= 0
    return line[:-1] + b',"p":"' + b"x" * pad + b'"}'


def test_a_record_over_the_limit_inside_one_range_is_too_large(batch: BatchModules) -> None:
    # GIVEN a valid 80-byte record, a 64-byte limit, and a range that holds it whole
    data = padded_record(80) + b"\n"
    # WHEN read THEN it is record_too_large, as it is when ranges cut it
    for range_bytes in (4096, 16):
        summary = read_once(batch, data, range_bytes=range_bytes, limit=64)
        assert (summary.records, summary.errors) == (0, {"record_too_large": 1}), range_bytes


def test_a_record_of_exactly_the_limit_is_accepted_with_either_line_end(
    batch: BatchModules,
) -> None:
    # GIVEN a 64-byte record ending in \r\n, read in ranges that end just after its \r
    # (the \n opens the next range), and the same record ending in \n
    record = padded_record(64)
    for data in (record + b"\r\n", record + b"\n", record + b"\r", record):
        # WHEN read with a 64-byte limit THEN it is a record: the limit is inclusive and
        # the line end does not count
        for range_bytes in (65, 64, 1, 4096):
            summary = read_once(batch, data, range_bytes=range_bytes, limit=64)
            assert (summary.records, summary.errors) == (1, {}), (data, range_bytes)
    # AND one byte more is too large, wherever the ranges end
    for range_bytes in (66, 65, 1, 4096):
        summary = read_once(batch, record + b"x\r\n", range_bytes=range_bytes, limit=64)
        assert summary.errors == {"record_too_large": 1}, range_bytes


def test_the_fate_of_a_record_does_not_depend_on_where_its_hop_starts(batch: BatchModules) -> None:
    # GIVEN a short record followed by a 90-byte one, a 64-byte limit, 100-byte ranges
    data = padded_record(50, 1) + b"\n" + padded_record(90, 2) + b"\n"
    # WHEN one hop reads both, or a hop ends after the first (the next starts at the second)
    whole = summarize(read_in_hops(batch, data, range_bytes=100, limit=64, hops=[2]))
    split = summarize(read_in_hops(batch, data, range_bytes=100, limit=64, hops=[1]))
    # THEN both say the same: one record, one record_too_large at the same offset
    assert whole == split
    assert (whole.records, whole.errors) == (1, {"record_too_large": 1})
    assert whole.bad_records[0]["offset"] == 51
    assert whole.bad_records[0]["message"] == "record of 90 bytes exceeds the limit of 64 bytes"


def test_a_blank_line_over_the_limit_is_too_large(batch: BatchModules) -> None:
    # GIVEN a line of 100 spaces and a 64-byte limit WHEN read in one range or many
    # THEN it is too large (the limit is judged first), never a skipped blank line
    for range_bytes in (4096, 10):
        summary = read_once(batch, b" " * 100 + b"\n", range_bytes=range_bytes, limit=64)
        assert summary.errors == {"record_too_large": 1}, range_bytes


def test_an_oversized_line_is_skipped_without_holding_more_than_the_limit(
    batch: BatchModules,
) -> None:
    # GIVEN a 1 MiB line without a newline between two records, a 100-byte limit and
    # 64 KiB ranges
    data = padded_record(50, 1) + b"\n" + b"y" * 2**20 + b"\n" + padded_record(50, 2)
    line_reader = batch.line_reader
    lines = list(
        line_reader.iter_lines(
            lambda first, last: data[first : last + 1],
            start=0,
            size=len(data),
            range_bytes=64 * 1024,
            max_record_bytes=100,
        )
    )
    # THEN the long line comes out without data, with its size and extent; the rest intact
    assert [(line.start, line.end, line.length) for line in lines] == [
        (0, 51, 50),
        (51, 51 + 2**20 + 1, 2**20),
        (52 + 2**20, len(data), 50),
    ]
    assert lines[1].data is None and lines[2].data == padded_record(50, 2)


def test_the_processor_on_moto_counts_the_same_whatever_its_range_size(
    processor: Processor,
) -> None:
    # GIVEN an object with a 300-byte valid record (limit 200), which a 1 KiB range
    # holds whole while 64-byte ranges cut it, plus records, a bad line and a \r\n line
    records = [record_line(i).encode() for i in range(30)]
    body = b"\n".join(
        [
            *records[:10],
            padded_record(300, 777),
            *records[10:20],
            b"{oops",
            padded_record(200, 778) + b"\r",
            *records[20:],
        ]
    )
    summaries = []
    for range_bytes in (64, 1024):
        # WHEN it is processed with each range size (several hops each)
        processor.configure(range_bytes=range_bytes)
        record = processor.infra.upload(f"{INPUT_PREFIX}range-{range_bytes}.ndjson", body)
        run_id = processor.start(record)
        processor.drain()
        run = processor.infra.run(run_id)
        assert run["status"] == "DONE" and run["hops"] > 1
        summary = processor.infra.output_json(run["summary_key"])
        errors = [
            line for key in summary["error_objects"] for line in processor.infra.output_lines(key)
        ]
        summaries.append((summary["records"], summary["amount_total"], summary["checksum"], errors))
    # THEN both runs report the same: 31 records, the 300-byte one too large
    assert summaries[0] == summaries[1]
    assert summaries[0][0] == 31
    assert [e["error"] for e in summaries[0][3]] == ["record_too_large", "invalid_json"]


def test_skipping_a_long_line_holds_two_ranges_plus_at_most_the_limit(batch: BatchModules) -> None:
    # GIVEN a 4 MiB line between two records, 64 KiB ranges and a 1 KiB record limit
    range_bytes, limit = 64 * 1024, 1024
    data = padded_record(50, 1) + b"\n" + b"y" * 2**22 + b"\n" + padded_record(50, 2) + b"\n"
    line_reader = sys.modules["line_reader"]
    # WHEN every line is read
    lengths, peak = traced_peak(
        lambda: [
            line.length
            for line in line_reader.iter_lines(
                lambda first, last: data[first : last + 1],
                start=0,
                size=len(data),
                range_bytes=range_bytes,
                max_record_bytes=limit,
            )
        ]
    )
    # THEN the long line was skipped holding the range being scanned, the one before it
    # (while the next arrives) and at most the limit of its bytes, never a range more
    assert lengths == [50, 2**22, 50]
    assert peak < 2 * range_bytes + 2 * limit + 8 * 1024, peak
