"""The lines of one S3 object version, read in ranged GETs with a record limit.

A line's fate depends on its own bytes only, never on where it sits relative to the
ranges or to the offset a hop starts at: the same object gives the same lines, the
same records and the same ``record_too_large`` lines whatever the range size and
wherever hops start. (Whether a hop has the time to scan a line too long to keep for its
end is another matter: see ``keep_scanning`` in `iter_lines`.)

The record limit counts the bytes of the record: the line without its end (``\\n``,
or ``\\r\\n``; a last line without ``\\n`` loses one trailing ``\\r`` likewise). A
record of exactly ``max_record_bytes`` bytes is accepted; one byte more is too large.
A too-large line is skipped by scanning for its newline: at most ``max_record_bytes``
+ 1 of its bytes are ever held, so memory does not grow with the line either.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

_CR = 0x0D
#: Reads of one range whose body stops streaming, and the errors botocore's streamed
#: body raises when it stops (s3transfer retries these too).
RANGE_ATTEMPTS = 3
STREAM_ERRORS = (ReadTimeoutError, ResponseStreamingError, IncompleteReadError)

#: ``get_range(first, last)``: the object's bytes ``first`` to ``last``, inclusive.
RangeGetter = Callable[[int, int], bytes]


class ObjectChangedError(RuntimeError):
    """The object no longer has the ETag the run started with (S3 answered 412)."""


class ObjectMissingError(RuntimeError):
    """The object was deleted during the run (S3 answered 404)."""


class ObjectUnreadableError(RuntimeError):
    """S3 refused to read the object (403 AccessDenied).

    S3 answers a read of a deleted key with 403 instead of 404 to a caller without
    ``s3:ListBucket`` on the bucket. The processor has that grant, so a 403 means the
    object was deleted while the grant was missing, or reading it is denied (a bucket or
    key policy): either way no retry reads it, so the run fails instead of staying
    RUNNING through Lambda's retries. Also a 403 ``InvalidObjectState``: the object is
    in an archive storage class (S3 Glacier Flexible Retrieval, Deep Archive) and must
    be restored before any GET reads it.
    """


class LineScanCutShortError(RuntimeError):
    """Time ran out while scanning a line too long to keep (see `iter_lines`).

    Attributes
    ----------
    line_start : int
        Where that line starts: the offset up to which every line has been yielded.
    scanned : int
        How many of its bytes were scanned without finding its end.
    """

    def __init__(self, line_start: int, scanned: int) -> None:
        super().__init__(
            f"the line at byte {line_start} has no end within the {scanned} bytes scanned"
        )
        self.line_start = line_start
        self.scanned = scanned


@dataclass(frozen=True)
class Line:
    """One line of the object: its record bytes and where it lies.

    ``end`` is the offset just past its newline (or the object's size for a last
    line without one): the offset a hop commits after processing it. ``data`` is the
    record (the line without ``\\n`` and one ``\\r`` before it), or ``None`` for a
    record over the limit, of which only the size is known. ``length`` is the
    record's size in bytes either way.
    """

    start: int
    end: int
    data: bytes | None
    length: int


def _line(start: int, end: int, body: bytes, max_record_bytes: int) -> Line:
    """The line whose bytes before its newline are ``body``, judged by the limit."""
    record = body[:-1] if body.endswith(b"\r") else body
    if len(record) > max_record_bytes:
        return Line(start, end, None, len(record))
    return Line(start, end, record, len(record))


def iter_lines(
    get_range: RangeGetter,
    *,
    start: int,
    size: int,
    range_bytes: int,
    max_record_bytes: int,
    keep_scanning: Callable[[], bool] = lambda: True,
) -> Generator[Line, None, None]:
    """Yield the lines from byte ``start`` (a line boundary) to the object's end ``size``.

    A range is fetched only when the consumer asks for a line the reader does not hold,
    so a consumer that stops early has read at most one range it does not use. Held at
    once: the range being scanned (and the previous one while the next arrives) plus at
    most ``max_record_bytes + 1`` bytes of the current line.

    Parameters
    ----------
    get_range : RangeGetter
        Fetches the bytes ``first`` to ``last`` (inclusive) of the object.
    start : int
        Where to start; a line boundary (0 or just past a newline).
    size : int
        The object's size.
    range_bytes : int
        Bytes per fetch (the last fetch may be shorter).
    max_record_bytes : int
        The largest record accepted; a longer one comes out with ``data=None``.
    keep_scanning : callable
        Asked before each range fetched while inside a line too long to keep: a line
        with no end in sight may need more ranges than a hop has time for.

    Raises
    ------
    LineScanCutShortError
        ``keep_scanning()`` said no inside such a line.

    Yields
    ------
    Line
        Every line, in order, blank ones included.
    """
    if range_bytes < 1:
        raise ValueError(f"range_bytes must be at least 1, not {range_bytes}")
    # A line's body may hold one byte more than the limit when that byte is the \r of
    # its \r\n, which is only known once the \n is seen (maybe in the next range).
    keep = max_record_bytes + 1
    carry = bytearray()  # the current line's bytes so far, while they may still fit
    oversized = False  # the current line is too large: its bytes are no longer kept
    last_byte = -1  # last byte of the current line seen so far (is its end a \r?)
    line_start = start
    position = start
    while position < size:
        if oversized and not keep_scanning():
            raise LineScanCutShortError(line_start, position - line_start)
        last = min(position + range_bytes, size) - 1
        chunk = get_range(position, last)
        chunk_start = position
        position = last + 1
        view = memoryview(chunk)
        cursor = 0
        while (newline := chunk.find(b"\n", cursor)) >= 0:
            end = chunk_start + newline + 1
            body_length = end - 1 - line_start
            if not oversized and len(carry) + newline - cursor <= keep:
                if carry:
                    carry += view[cursor:newline]
                    body = bytes(carry)
                else:  # the whole line is in this range: one copy, no carry
                    body = chunk[cursor:newline]
                yield _line(line_start, end, body, max_record_bytes)
            else:
                # The byte before this \n is in this range unless the \n opens it; an
                # oversized line is never empty, so that byte is the line's.
                before = chunk[newline - 1] if newline > 0 else last_byte
                yield Line(line_start, end, None, body_length - (before == _CR))
            carry.clear()
            oversized = False
            line_start = end
            cursor = newline + 1
        rest = len(chunk) - cursor
        if rest:
            last_byte = chunk[-1]
            if not oversized:
                # Decide before copying: the carry never holds more than `keep` bytes.
                if len(carry) + rest > keep:
                    oversized = True
                    carry.clear()
                else:
                    carry += view[cursor:]
        view.release()
    if line_start < size:  # a last line without a newline
        if oversized:
            yield Line(line_start, size, None, size - line_start - (last_byte == _CR))
        else:
            yield _line(line_start, size, bytes(carry), max_record_bytes)


def quoted_etag(etag: str) -> str:
    """The ETag as S3 compares it in ``If-Match`` (quoted; events carry it bare)."""
    bare = etag.strip('"')
    return f'"{bare}"'


class ObjectRangeReader:
    """Reads one version of an object in ranged GETs, yielding whole lines.

    Every GET carries ``IfMatch`` with the run's ETag, so a changed object fails the
    run at the next range instead of mixing two versions. At most two ranges plus one
    partial line (``max_record_bytes`` + 1) are held in memory, whatever the object
    size and however long its lines (see `iter_lines`).
    """

    def __init__(
        self,
        client: S3Client,
        *,
        bucket: str,
        key: str,
        etag: str,
        size: int,
        range_bytes: int,
        max_record_bytes: int,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._etag = etag
        self._size = size
        self._range_bytes = range_bytes
        self._max_record_bytes = max_record_bytes
        self.bytes_read = 0

    def _get_range(self, first: int, last: int) -> bytes:
        # botocore retries a call, not the read of its streamed body after the call has
        # returned: a body that stops (a read timeout, a dropped connection) is asked
        # for again here, as s3transfer does, instead of failing the hop.
        for attempt in range(1, RANGE_ATTEMPTS + 1):
            body = self._request_range(first, last)["Body"]
            try:
                data: bytes = body.read()
            except STREAM_ERRORS:
                if attempt == RANGE_ATTEMPTS:
                    raise
                continue
            finally:
                body.close()
            break
        self.bytes_read += len(data)
        if len(data) != last - first + 1:
            raise ObjectChangedError(
                f"s3://{self._bucket}/{self._key}: range {first}-{last} returned {len(data)} bytes"
            )
        return data

    def _request_range(self, first: int, last: int) -> GetObjectOutputTypeDef:
        try:
            return self._client.get_object(
                Bucket=self._bucket,
                Key=self._key,
                Range=f"bytes={first}-{last}",
                IfMatch=quoted_etag(self._etag),
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412"):
                raise ObjectChangedError(
                    f"s3://{self._bucket}/{self._key} no longer has ETag {self._etag}"
                ) from exc
            if code in ("NoSuchKey", "404"):
                raise ObjectMissingError(f"s3://{self._bucket}/{self._key} was deleted") from exc
            if code in ("AccessDenied", "403"):
                raise ObjectUnreadableError(
                    f"S3 denied reading s3://{self._bucket}/{self._key} (AccessDenied): it "
                    "was deleted and the processor may not list its bucket, or a policy "
                    "denies reading it"
                ) from exc
            if code == "InvalidObjectState":
                raise ObjectUnreadableError(
                    f"s3://{self._bucket}/{self._key} is in an archive storage class "
                    "(InvalidObjectState): restore it, then upload it again"
                ) from exc
            raise

    def lines(
        self, start: int, keep_scanning: Callable[[], bool] = lambda: True
    ) -> Generator[Line, None, None]:
        """Yield the lines from byte ``start`` (a line boundary) to the end of the object
        (``keep_scanning``: see `iter_lines`)."""
        return iter_lines(
            self._get_range,
            start=start,
            size=self._size,
            range_bytes=self._range_bytes,
            max_record_bytes=self._max_record_bytes,
            keep_scanning=keep_scanning,
        )
