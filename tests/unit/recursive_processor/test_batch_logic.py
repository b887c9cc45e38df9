"""The logic without Lambda: ranged line reading, record parsing, settings."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from handler_kit.config import InvalidSettingError, MissingSettingError

from tests.support.memory import traced_peak
from tests.unit.recursive_processor.conftest import BatchModules

LINE_WIDTH = 64


def fixed_width_line(index: int) -> bytes:
    """Line ``index`` of a synthetic object of fixed-width lines (64 bytes with newline)."""
    text = json.dumps({"id": f"r{index:09d}", "amount": index % 97})
    return text.ljust(LINE_WIDTH - 1).encode() + b"\n"


@dataclass
class SyntheticS3:
    """A fake S3 client serving ranges of a large synthetic object it never holds whole.

    Each range is generated on request, so the test's own memory does not grow with
    the object either; every request is recorded.
    """

    size: int
    etag: str = "abc123"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def get_object(self, *, Bucket: str, Key: str, Range: str, IfMatch: str) -> dict[str, Any]:  # noqa: N803
        self.requests.append({"Range": Range, "IfMatch": IfMatch})
        if IfMatch != f'"{self.etag}"':
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "GetObject")
        first, last = (int(n) for n in Range.removeprefix("bytes=").split("-"))
        data = b"".join(
            fixed_width_line(index) for index in range(first // LINE_WIDTH, last // LINE_WIDTH + 1)
        )
        start = first % LINE_WIDTH
        return {"Body": io.BytesIO(data[start : start + last - first + 1])}


def reader(batch: BatchModules, client: Any, *, size: int, range_bytes: int = 4096) -> Any:
    return batch.line_reader.ObjectRangeReader(
        client,
        bucket="b",
        key="k",
        etag="abc123",
        size=size,
        range_bytes=range_bytes,
        max_record_bytes=100,
    )


def test_ranges_are_contiguous_bounded_and_carry_the_etag(batch: BatchModules) -> None:
    # GIVEN an object of 1,000 fixed-width lines read in 100-byte ranges (lines straddle them)
    size = 1000 * LINE_WIDTH
    client = SyntheticS3(size)
    lines = list(reader(batch, client, size=size, range_bytes=100).lines(0))
    # THEN every line comes out once, whole, with its exact extent
    assert len(lines) == 1000
    assert all(line.data + b"\n" == fixed_width_line(i) for i, line in enumerate(lines))
    assert [line.start for line in lines] == [i * LINE_WIDTH for i in range(1000)]
    assert lines[-1].end == size
    # AND every byte was fetched once, in ranges of at most 100 bytes, each with IfMatch
    spans = [tuple(int(n) for n in r["Range"][6:].split("-")) for r in client.requests]
    assert spans[0][0] == 0 and spans[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))
    assert max(last - first + 1 for first, last in spans) == 100
    assert {r["IfMatch"] for r in client.requests} == {'"abc123"'}


def test_a_reader_that_stops_early_fetched_at_most_one_unused_range(batch: BatchModules) -> None:
    # GIVEN a reader started mid-object WHEN its consumer stops after 100 lines
    # THEN it started at the given line and read at most one range it did not use
    size = 10_000 * LINE_WIDTH
    client = SyntheticS3(size)
    object_reader = reader(batch, client, size=size, range_bytes=1000)
    lines = object_reader.lines(64 * LINE_WIDTH)
    consumed = [next(lines) for _ in range(100)]
    lines.close()
    assert consumed[0].start == 64 * LINE_WIDTH
    assert object_reader.bytes_read <= 100 * LINE_WIDTH + 1000


@pytest.mark.parametrize("mebibytes", [1, 4])
def test_memory_held_while_reading_does_not_grow_with_the_object(
    batch: BatchModules, mebibytes: int
) -> None:
    # GIVEN objects of 1 MiB and 4 MiB read in 64 KiB ranges (peak must stay under 1 MiB)
    size = mebibytes * 1024 * 1024
    object_reader = reader(batch, SyntheticS3(size), size=size, range_bytes=64 * 1024)
    # WHEN every line is read (and dropped, as the processor does)
    count, peak = traced_peak(lambda: sum(1 for _ in object_reader.lines(0)))
    # THEN all lines came through while the peak stayed around a few ranges
    assert count == size // LINE_WIDTH
    assert peak < 1024 * 1024


def test_a_line_longer_than_the_limit_is_reported_without_being_held(batch: BatchModules) -> None:
    # GIVEN a 1,000-byte line between two records, a 100-byte record limit
    # WHEN read THEN it comes out as a data-less line with its extent; the next is intact
    body = b'{"id":"a","amount":1}\n' + b"x" * 1000 + b'\n{"id":"b","amount":2}'

    class Bytes:
        def get_object(self, *, Bucket: str, Key: str, Range: str, IfMatch: str) -> Any:  # noqa: N803
            first, last = (int(n) for n in Range[6:].split("-"))
            return {"Body": io.BytesIO(body[first : last + 1])}

    lines = list(reader(batch, Bytes(), size=len(body), range_bytes=64).lines(0))
    assert [(line.start, line.end) for line in lines] == [
        (0, 22),
        (22, 1023),
        (1023, len(body)),
    ]
    assert lines[1].data is None
    assert batch.records.interpret_line(lines[1], max_record_bytes=100).error == "record_too_large"
    assert lines[2].data == b'{"id":"b","amount":2}'


class _Stalling(io.BytesIO):
    def read(self, *_: Any) -> bytes:
        raise ReadTimeoutError(endpoint_url="https://s3.amazonaws.com")


@dataclass
class StallingS3:
    """S3 whose first ``stalls`` bodies stop streaming (a read timeout mid-body)."""

    real: Any
    stalls: int
    requests: int = 0

    def get_object(self, **params: Any) -> dict[str, Any]:
        self.requests += 1
        if self.requests <= self.stalls:
            return {"Body": _Stalling()}
        return dict(self.real.get_object(**params))


@pytest.mark.parametrize("stalls", [1, 2])
def test_a_range_whose_body_stalls_is_asked_for_again(batch: BatchModules, stalls: int) -> None:
    # GIVEN an object whose first range's body stops streaming once or twice: botocore
    # retries calls, not the read of a body after its call returned
    size = 10 * LINE_WIDTH
    client = StallingS3(SyntheticS3(size), stalls=stalls)
    # WHEN it is read THEN the range is asked for again and every line comes out once
    lines = list(reader(batch, client, size=size).lines(0))
    assert len(lines) == 10 and client.requests == stalls + 1


def test_a_range_that_stalls_every_time_fails_the_read(batch: BatchModules) -> None:
    # GIVEN a body that stalls on every attempt WHEN read THEN the error reaches the hop
    # (which gives its claim back and raises, so Lambda retries it)
    client = StallingS3(SyntheticS3(LINE_WIDTH), stalls=99)
    with pytest.raises(ReadTimeoutError):
        next(reader(batch, client, size=LINE_WIDTH).lines(0))
    assert client.requests == batch.line_reader.RANGE_ATTEMPTS


def test_a_changed_object_raises_object_changed(batch: BatchModules) -> None:
    # GIVEN an object whose ETag is not the run's WHEN read THEN S3's 412 becomes an error
    client = SyntheticS3(1000, etag="other")
    with pytest.raises(batch.line_reader.ObjectChangedError):
        next(reader(batch, client, size=1000).lines(0))


@dataclass
class MisrangedS3(SyntheticS3):
    """Answers every range ``extra`` bytes off: short, as a body that ends early, or long,
    as a store that ignores ``Range`` and sends more."""

    extra: int = -1

    def get_object(self, **request: Any) -> dict[str, Any]:
        body = super().get_object(**request)["Body"].read()
        more = b"x" * max(self.extra, 0)
        return {"Body": io.BytesIO(body[: len(body) + min(self.extra, 0)] + more)}


@pytest.mark.parametrize(("extra", "returned"), [(-1, 99), (1, 101)], ids=["short", "long"])
def test_a_range_answered_with_another_length_raises_object_changed(
    batch: BatchModules, extra: int, returned: int
) -> None:
    # GIVEN S3 answering a range with fewer or more bytes than asked (not the object the
    # run started with, or the range ignored) WHEN read THEN an error, not lines read from
    # the wrong offsets
    client = MisrangedS3(10 * LINE_WIDTH, extra=extra)
    with pytest.raises(batch.line_reader.ObjectChangedError, match=f"returned {returned} bytes"):
        next(reader(batch, client, size=10 * LINE_WIDTH, range_bytes=100).lines(0))


@pytest.mark.parametrize("range_bytes", [1, 2, 3, 4096])
def test_a_line_end_takes_one_carriage_return_with_it(
    batch: BatchModules, range_bytes: int
) -> None:
    # GIVEN lines ending in \r\n, \n, \r\r\n, and a last line without \n ending in \r\r
    data = b"a\r\nb\n\r\nc\r\r\nd\r\r"

    def get_range(first: int, last: int) -> bytes:
        return data[first : last + 1]

    # WHEN read in ranges of any size
    lines = list(
        batch.line_reader.iter_lines(
            get_range, start=0, size=len(data), range_bytes=range_bytes, max_record_bytes=8
        )
    )

    # THEN each record is its line without \n and one \r before it: a second \r is data
    assert [(line.data, line.length) for line in lines] == [
        (b"a", 1),
        (b"b", 1),
        (b"", 0),
        (b"c\r", 2),
        (b"d\r", 2),
    ]
    assert [(line.start, line.end) for line in lines] == [(0, 3), (3, 5), (5, 7), (7, 11), (11, 14)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"id": "a", "amount": 3}', ("record", 3)),
        (b'{"id": "a", "amount": 3, "note": "extra fields are ignored"}', ("record", 3)),
        (b"   ", None),
        (b"{", ("invalid_json", None)),
        (b"\xff\xfe", ("invalid_encoding", None)),
        (b'{"id": "a", "amount": true}', ("invalid_record", None)),
        (b'{"id": "a", "amount": 10000000000001}', ("invalid_record", None)),
        (b'{"id": 5, "amount": 1}', ("invalid_record", None)),
    ],
)
def test_parse_line(batch: BatchModules, line: bytes, expected: tuple[str, Any] | None) -> None:
    # GIVEN one line WHEN parsed THEN a record, a blank (None) or a bad record with its code
    result = batch.records.parse_line(line, 7)
    if expected is None:
        assert result is None
    elif expected[0] == "record":
        assert result.amount == expected[1]
    else:
        assert (result.error, result.offset) == (expected[0], 7)


def test_settings_come_from_the_environment_and_are_validated(batch: BatchModules) -> None:
    # GIVEN environments WHEN read THEN values are used, and missing or invalid ones refused
    settings = batch.models.ProcessorSettings.from_env(
        {"OUTPUT_BUCKET_NAME": "out", "OUTPUT_PREFIX": "results", "MAX_HOPS": "7"}
    )
    assert settings.output_prefix == "results/" and settings.max_hops == 7
    assert settings.summary_key("r1") == "results/r1/summary.json"
    assert settings.errors_key("r1", 3) == "results/r1/errors/hop-00003.ndjson"
    with pytest.raises(MissingSettingError, match="OUTPUT_BUCKET_NAME"):
        batch.models.ProcessorSettings.from_env({})
    with pytest.raises(InvalidSettingError, match="MAX_HOPS must be > 0"):
        batch.models.ProcessorSettings.from_env({"OUTPUT_BUCKET_NAME": "out", "MAX_HOPS": "0"})
    # a safety margin and the simulated work may be 0, not below
    zero = {"OUTPUT_BUCKET_NAME": "out", "SAFETY_MARGIN_MS": "0", "RECORD_WORK_MS": "0"}
    assert batch.models.ProcessorSettings.from_env(zero).safety_margin_ms == 0
    with pytest.raises(InvalidSettingError, match="RECORD_WORK_MS must be >= 0"):
        batch.models.ProcessorSettings.from_env({**zero, "RECORD_WORK_MS": "-1"})


def test_run_ids_are_stable_per_write_and_differ_between_writes(batch: BatchModules) -> None:
    # GIVEN the same write notified twice and a second write of the same object
    # THEN the duplicate maps to the same run and the second write to a new one
    first = batch.models.ObjectCreated("b", "k", 10, "e1", "0055AED6DCD90281E5")
    again = batch.models.ObjectCreated("b", "k", 10, "e1", "0055AED6DCD90281E5")
    rewrite = batch.models.ObjectCreated("b", "k", 10, "e1", "0055AED6DCD90281F0")
    assert first.run_id == again.run_id != rewrite.run_id


def test_the_s3_event_builder_has_the_shape_powertools_parses() -> None:
    # GIVEN the shared builder WHEN Powertools' S3 model parses its output THEN it fits
    from aws_lambda_powertools.utilities.parser.models import S3Model

    from tests.support.events import s3_event, s3_object_created_record

    event = s3_event(
        s3_object_created_record("bucket-a", "in/a b.ndjson", size=3, etag='"e1"'),
        s3_object_created_record("bucket-a", "in/c.ndjson", size=0, etag="e2", version_id="v1"),
    )
    parsed = S3Model.model_validate(event)
    first, second = parsed.Records
    assert first.s3.object.key == "in/a+b.ndjson" and first.s3.object.eTag == "e1"
    assert int(first.s3.object.sequencer, 16) < int(second.s3.object.sequencer, 16)
    assert second.s3.object.versionId == "v1"


def _parse_record_with_etag(batch: BatchModules, etag: str) -> tuple[list[Any], list[str]]:
    """``parse_s3_records`` of one ObjectCreated record of ``in/a b.ndjson`` whose eTag
    is spelled ``etag`` (the builder itself writes it bare)."""
    from tests.support.events import s3_event, s3_object_created_record

    record = s3_object_created_record("bucket-a", "in/a b.ndjson", size=7, etag="e1")
    record["s3"]["object"]["eTag"] = etag
    parsed, invalid = batch.events.parse_s3_records(s3_event(record))
    return list(parsed), invalid


def test_a_quoted_etag_is_parsed_as_the_bare_etag_reads_are_conditioned_on(
    batch: BatchModules,
) -> None:
    # GIVEN a notification record whose eTag is quoted as in an S3 ETag header
    # WHEN it is parsed
    parsed, invalid = _parse_record_with_etag(batch, '"e1"')

    # THEN the object is named by its decoded key and its bare eTag
    assert invalid == []
    [created] = parsed
    assert (created.bucket, created.key, created.size, created.etag) == (
        "bucket-a",
        "in/a b.ndjson",
        7,
        "e1",
    )


def test_an_object_created_record_without_an_etag_is_invalid(batch: BatchModules) -> None:
    # GIVEN a record with an empty eTag (a run's reads are all conditioned on it)
    # WHEN it is parsed THEN it starts nothing and is reported invalid
    assert _parse_record_with_etag(batch, "") == (
        [],
        ["record 0: ObjectCreated without size or eTag"],
    )


def test_a_bad_line_is_kept_as_an_excerpt_of_its_first_characters(batch: BatchModules) -> None:
    # GIVEN a long line of invalid JSON WHEN it is parsed
    bad = batch.records.parse_line(b"{" + "é".encode() * 1_000, 40)

    # THEN it is bad, where it starts, with only its first 256 characters as excerpt
    assert isinstance(bad, batch.records.BadRecord)
    assert (bad.offset, bad.error) == (40, "invalid_json")
    assert bad.excerpt == "{" + "é" * (batch.records.ERROR_EXCERPT_CHARS - 1)


def test_a_hop_counts_every_bad_line_but_keeps_only_the_first_ten_thousand(
    batch: BatchModules,
) -> None:
    # GIVEN one bad line more than a hop keeps, and a good one
    records = batch.records
    limit = records.MAX_ERROR_LINES_PER_HOP
    tally = records.HopTally()

    # WHEN the hop adds them
    for offset in range(limit + 1):
        tally.add(records.BadRecord(offset, "invalid_json", "bad", "{"))
    tally.add(records.InputRecord(id="a", amount=5))

    # THEN every bad line is counted, the first ten thousand are kept, the good one summed
    assert (tally.errors, tally.records, tally.amount) == (limit + 1, 1, 5)
    assert [bad.offset for bad in tally.bad_records] == list(range(limit))
