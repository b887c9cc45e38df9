"""The whole-file model, fakes and generated files behind the record-limit tests."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.unit.recursive_processor.conftest import (
    INPUT_BUCKET,
    OUTPUT_BUCKET,
    BatchModules,
    record_line,
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
