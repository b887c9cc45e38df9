"""A record's fate depends on its own bytes, never on where ranges or hops cut the object.

The reference is a plain whole-file model: split the object on ``\\n``, drop one ``\\r``
before each newline, and judge every line alone (over ``max_record_bytes`` bytes:
``record_too_large``; otherwise ``parse_line``). The summary of any run of the same
object (records, amount, checksum, errors by code, the bad records listed) must equal
the model's, whatever the range size and wherever the hops start.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import sys
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fakes import FakeClock
from tests.unit.recursive_processor.conftest import (
    INPUT_BUCKET,
    INPUT_PREFIX,
    OUTPUT_BUCKET,
    TABLE_NAME,
    BatchModules,
    Infra,
    Processor,
    import_batch_modules,
    record_line,
    run_id_of,
)

ETAG = "0123456789abcdef"
KEY = "incoming/generated.ndjson"

#: Deterministic and database-less, so the suite is fast and the same on every run.
PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def batch() -> BatchModules:
    return import_batch_modules()


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Summary:
    """What a run reports about an object, in a form two runs can be compared by."""

    records: int
    amount: int
    checksum: int
    errors: dict[str, int]
    #: the errors objects' lines, in object order
    bad_records: list[dict[str, Any]]


def summarize(results: Sequence[Any]) -> Summary:
    """Summarize ``interpret_line``/``parse_line`` results (``None`` for a blank line)."""
    records = [r for r in results if r is not None and not hasattr(r, "error")]
    bad = [r for r in results if r is not None and hasattr(r, "error")]
    checksum = 0
    for record in records:
        digest = hashlib.sha256(f"{record.id}\x00{record.amount}".encode()).digest()
        checksum += int.from_bytes(digest[:8], "big")
    return Summary(
        records=len(records),
        amount=sum(r.amount for r in records),
        checksum=checksum % 2**64,
        errors=dict(Counter(b.error for b in bad)),
        bad_records=[json.loads(b.to_json()) for b in bad],
    )


def reference(batch: BatchModules, data: bytes, limit: int) -> Summary:
    """The whole-file model: every line judged by its own bytes alone."""
    bodies = data.split(b"\n")
    if bodies[-1] == b"":  # the object ends with a newline (or is empty)
        bodies.pop()
    results = []
    offset = 0
    for body in bodies:
        record = body[:-1] if body.endswith(b"\r") else body
        if len(record) > limit:
            message = f"record of {len(record)} bytes exceeds the limit of {limit} bytes"
            results.append(batch.records.BadRecord(offset, "record_too_large", message, ""))
        else:
            results.append(batch.records.parse_line(record, offset))
        offset += len(body) + 1
    return summarize(results)


def run_summary_of(document: dict[str, Any], bad_records: list[dict[str, Any]]) -> Summary:
    """A DONE run's summary object and errors objects, as a `Summary`."""
    return Summary(
        records=document["records"],
        amount=document["amount_total"],
        checksum=int(document["checksum"], 16),
        errors=dict(Counter(b["error"] for b in bad_records)),
        bad_records=bad_records,
    )


# --------------------------------------------------------------------------- fakes


@dataclass
class FakeS3:
    """An in-memory S3 that honours ``Range`` and ``IfMatch`` as S3 does."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    requests: int = 0

    def get_object(self, *, Bucket: str, Key: str, **options: Any) -> dict[str, Any]:  # noqa: N803
        self.requests += 1
        data = self.objects[(Bucket, Key)]
        if "IfMatch" in options and options["IfMatch"] != f'"{ETAG}"':
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "GetObject")
        if "Range" in options:
            first, last = (int(n) for n in options["Range"].removeprefix("bytes=").split("-"))
            data = data[first : last + 1]
        return {"Body": io.BytesIO(data)}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.objects[(Bucket, Key)] = Body
        return {"ETag": f'"{ETAG}"'}

    def json(self, key: str) -> Any:
        return json.loads(self.objects[(OUTPUT_BUCKET, key)])

    def lines(self, key: str) -> list[dict[str, Any]]:
        body = self.objects[(OUTPUT_BUCKET, key)].decode("utf-8")
        return [json.loads(line) for line in body.splitlines()]


@dataclass
class CollectingSender:
    """The self-invocations a hop sends, kept for the test to deliver."""

    requests: list[Any] = field(default_factory=list)

    def send(self, request: Any) -> None:
        self.requests.append(request)


# --------------------------------------------------------------------------- generated files


@st.composite
def lines_near(draw: st.DrawFn, limit: int) -> bytes:
    """One line (without its newline) of a kind and a length chosen around ``limit``."""
    length = draw(
        st.one_of(
            st.integers(0, limit),
            st.integers(limit - 2, limit + 2),  # at the limit, either side of it
            st.integers(limit + 1, 4 * limit),  # over it, up to several ranges long
        )
    )
    kind = draw(st.sampled_from(["record", "record", "json", "shape", "encoding", "blank"]))
    if kind == "record":
        index = draw(st.integers(0, 99_999))
        line = record_line(index).encode()
        if length > len(line) + len(',"p":""'):  # padded to the length drawn
            pad = length - len(line) - len(',"p":""')
            line = line[:-1] + b',"p":"' + b"x" * pad + b'"}'
    elif kind == "json":
        line = b"{not json" + b"x" * max(0, length - 9)
    elif kind == "shape":
        line = b'{"id": "", "amount": 1}' + b" " * max(0, length - 23)
    elif kind == "encoding":
        line = b"\xff\xfe" + b"a" * max(0, length - 2)
    else:
        line = b" " * length
    return line + (b"\r" if draw(st.booleans()) else b"")


@st.composite
def objects(draw: st.DrawFn) -> tuple[bytes, int]:
    """An object and its record limit: lines of every kind, with or without a last newline."""
    limit = draw(st.integers(48, 120))
    lines = draw(st.lists(lines_near(limit), max_size=24))
    trailing = draw(st.booleans())
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    return data, limit


range_sizes = st.one_of(st.integers(1, 48), st.integers(49, 600), st.just(4096))
hop_lengths = st.lists(st.integers(1, 6), min_size=1, max_size=5)


def read_in_hops(
    batch: BatchModules, data: bytes, *, range_bytes: int, limit: int, hops: Sequence[int]
) -> list[Any]:
    """Read ``data`` as a run would: each hop takes a few lines, then the next hop starts
    a new reader at the offset the last one reached (as a checkpoint does)."""
    s3 = FakeS3({(INPUT_BUCKET, KEY): data})
    results: list[Any] = []
    offset = 0
    budgets = itertools.cycle(hops)
    while offset < len(data):
        reader = batch.line_reader.ObjectRangeReader(
            s3,
            bucket=INPUT_BUCKET,
            key=KEY,
            etag=ETAG,
            size=len(data),
            range_bytes=range_bytes,
            max_record_bytes=limit,
        )
        lines = reader.lines(offset)
        try:
            for line in itertools.islice(lines, next(budgets)):
                results.append(batch.records.interpret_line(line, max_record_bytes=limit))
                offset = line.end
        finally:
            lines.close()
    return results


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(obj=objects(), range_bytes=range_sizes, hops=hop_lengths)
def test_lines_are_judged_by_their_own_bytes_whatever_the_ranges_and_hops(
    batch: BatchModules, obj: tuple[bytes, int], range_bytes: int, hops: list[int]
) -> None:
    # GIVEN any object (records, bad lines, blank lines, lines around the record limit,
    # \r\n or \n, with or without a last newline), any range size and any hop points
    data, limit = obj
    # WHEN it is read in ranges of that size, hop after hop
    results = read_in_hops(batch, data, range_bytes=range_bytes, limit=limit, hops=hops)
    # THEN the summary is the whole-file model's: counts, codes, checksum, bad records
    expected = reference(batch, data, limit)
    actual = summarize(results)
    assert (actual.records, actual.errors, actual.checksum, actual.amount) == (
        expected.records,
        expected.errors,
        expected.checksum,
        expected.amount,
    )
    assert actual.bad_records == expected.bad_records


def remaining_for(budget: int, margin_ms: int) -> Iterator[int]:
    """Remaining times that let a hop take ``budget`` lines, then fall under the margin.

    The first call is the claim's deadline; each later one is a check before a line.
    """
    yield 60_000
    for _ in range(budget):
        yield margin_ms
    while True:
        yield margin_ms - 1


@pytest.fixture
def hop_world(infra: Infra, batch: BatchModules) -> dict[str, Any]:
    """The run table on moto (created once per test, shared by its examples)."""
    return {"store": batch.store.RunStore(infra.dynamodb, TABLE_NAME)}


@settings(PROPERTY, max_examples=40, suppress_health_check=list(HealthCheck))
@given(obj=objects(), range_bytes=range_sizes, hops=hop_lengths)
def test_a_run_reports_the_same_summary_whatever_the_ranges_and_hops(
    batch: BatchModules,
    hop_world: dict[str, Any],
    obj: tuple[bytes, int],
    range_bytes: int,
    hops: list[int],
) -> None:
    # GIVEN any object, range size and hop points; the run table on moto (each example
    # is a run of its own: same table, another run id)
    data, limit = obj
    s3 = FakeS3({(INPUT_BUCKET, KEY): data})
    sender = CollectingSender()
    clock = FakeClock()
    settings_ = batch.models.ProcessorSettings(
        output_bucket=OUTPUT_BUCKET,
        safety_margin_ms=1_000,
        max_hops=10_000,
        range_bytes=range_bytes,
        max_record_bytes=limit,
    )
    created = batch.models.ObjectCreated(
        bucket=INPUT_BUCKET, key=KEY, size=len(data), etag=ETAG, sequencer=uuid.uuid4().hex
    )
    store = hop_world["store"]
    (run_id,) = batch.service.start_runs(store, sender, [created], now=clock(), settings=settings_)

    # WHEN every hop runs, each stopping after its own number of lines
    budgets = itertools.cycle(hops)
    delivered = 0
    while delivered < len(sender.requests):
        request = sender.requests[delivered]
        delivered += 1
        remaining = remaining_for(next(budgets), settings_.safety_margin_ms)
        env = batch.hops.HopEnvironment(
            store=store,
            s3=s3,
            sender=sender,
            settings=settings_,
            remaining_ms=lambda remaining=remaining: next(remaining),
            request_id=str(uuid.uuid4()),
            clock=clock,
        )
        outcome = batch.runner.run_hop(env, request)
        assert outcome in (batch.models.HopOutcome.CONTINUED, batch.models.HopOutcome.DONE)
        clock.advance(1)

    # THEN the summary and errors objects say what the whole-file model says
    document = s3.json(settings_.summary_key(run_id))
    bad_records = [line for key in document["error_objects"] for line in s3.lines(key)]
    assert run_summary_of(document, bad_records) == reference(batch, data, limit)


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
        run_id = run_id_of(processor.notify(record))
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
    tracemalloc.start()
    try:
        lines = list(
            line_reader.iter_lines(
                lambda first, last: data[first : last + 1],
                start=0,
                size=len(data),
                range_bytes=range_bytes,
                max_record_bytes=limit,
            )
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN the long line was skipped holding the range being scanned, the one before it
    # (while the next arrives) and at most the limit of its bytes, never a range more
    assert [line.length for line in lines] == [50, 2**22, 50]
    assert peak < 2 * range_bytes + 2 * limit + 8 * 1024, peak
