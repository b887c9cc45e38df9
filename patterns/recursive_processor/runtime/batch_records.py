"""Recursive processor: the input's records, how a line becomes one, and a hop's tally.

Plain Python (no AWS clients). An input object is newline-delimited JSON; each line
``line_reader`` yields is a record (``InputRecord``), a bad record (``BadRecord``, listed
in the hop's errors object) or blank (skipped). ``HopTally`` adds up what one hop
processed; the hop commits it to the run's totals (see ``batch_store.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from handler_kit.strict_json import InvalidJsonError
from handler_kit.strict_json import loads as strict_loads
from line_reader import Line
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

#: How much of a bad line the errors object keeps.
ERROR_EXCERPT_CHARS = 256
#: A hop keeps at most this many error lines in memory (all are counted).
MAX_ERROR_LINES_PER_HOP = 10_000


class InputRecord(BaseModel):
    """One line of an input object: ``{"id": "<1-128 chars>", "amount": <integer>}``.

    Other fields are ignored, so producers can add some without breaking runs.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    id: str = Field(min_length=1, max_length=128)
    amount: StrictInt = Field(ge=-(10**12), le=10**12)


@dataclass(frozen=True)
class BadRecord:
    """A line that could not be processed, as the errors object lists it."""

    offset: int
    error: Literal["invalid_json", "invalid_record", "record_too_large", "invalid_encoding"]
    message: str
    excerpt: str

    def to_json(self) -> str:
        """The bad record as one compact JSON line of the errors object (no newline)."""
        return json.dumps(
            {
                "offset": self.offset,
                "error": self.error,
                "message": self.message,
                "excerpt": self.excerpt,
            },
            separators=(",", ":"),
        )


def record_checksum(record: InputRecord) -> int:
    """A 64-bit digest of one record; the run's checksum is their sum modulo 2**64.

    A sum does not depend on the order of hops, and a record processed twice (or
    skipped) changes it, which is what the summary is there to prove.

    Parameters
    ----------
    record : InputRecord
        A valid record.

    Returns
    -------
    int
        The first 8 bytes of the SHA-256 of ``id`` and ``amount``, big-endian.
    """
    digest = hashlib.sha256(f"{record.id}\x00{record.amount}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class HopTally:
    """What one hop did, added to the run's totals when the hop commits."""

    records: int = 0
    errors: int = 0
    amount: int = 0
    checksum: int = 0
    bytes_read: int = 0
    bad_records: list[BadRecord] = field(default_factory=list)

    def add(self, result: InputRecord | BadRecord) -> None:
        """Count one processed line; keep a bad one for the errors object (up to a cap)."""
        if isinstance(result, BadRecord):
            self.errors += 1
            if len(self.bad_records) < MAX_ERROR_LINES_PER_HOP:
                self.bad_records.append(result)
            return
        self.records += 1
        self.amount += result.amount
        self.checksum += record_checksum(result)


def parse_line(line: bytes, offset: int) -> InputRecord | BadRecord | None:
    """Parse one line of the input with handler_kit's strict JSON reader.

    Parameters
    ----------
    line : bytes
        The record's bytes, without the line end.
    offset : int
        Where the line starts in the object (reported with a bad record).

    Returns
    -------
    InputRecord or BadRecord or None
        The record, why it is bad, or ``None`` for a blank line (skipped, not an error).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord(offset, "invalid_encoding", f"not UTF-8: {exc.reason}", _excerpt(line))
    if not text.strip():
        return None
    try:
        value = strict_loads(text)
    except InvalidJsonError as exc:
        return BadRecord(offset, "invalid_json", str(exc), _excerpt(line))
    try:
        return InputRecord.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}"
            for error in exc.errors()
        )
        return BadRecord(offset, "invalid_record", problems, _excerpt(line))


def _excerpt(line: bytes) -> str:
    # At most 4 bytes per character: decode no more than the excerpt can show.
    text = line[: ERROR_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return text[:ERROR_EXCERPT_CHARS]


def interpret_line(line: Line, *, max_record_bytes: int) -> InputRecord | BadRecord | None:
    """Turn a line into a record, a bad record, or ``None`` (blank).

    A record over ``max_record_bytes`` is ``record_too_large`` whatever its content
    (even blank): its fate depends on its bytes alone, never on where ranges or hops
    cut the object. The reader already leaves such a line without data; the length
    check here holds for a line read with a higher limit too.

    Parameters
    ----------
    line : Line
        A line from ``line_reader``.
    max_record_bytes : int
        The largest record accepted (inclusive).

    Returns
    -------
    InputRecord or BadRecord or None
        As ``parse_line``, or a ``record_too_large`` bad record.
    """
    if line.data is None or len(line.data) > max_record_bytes:
        return BadRecord(
            line.start,
            "record_too_large",
            f"record of {line.length} bytes exceeds the limit of {max_record_bytes} bytes",
            "",
        )
    return parse_line(line.data, line.start)
