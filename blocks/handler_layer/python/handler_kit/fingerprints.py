"""What "the same request" means for an Idempotency-Key: fingerprints of normalized requests.

A key reused with a request of the same *meaning* is a retry (replayed); only a
different meaning is refused (422). Spelling differences must therefore not reach the
fingerprint. Each request model declares, once, per field, how it is normalized:

- defaults are applied (``model_dump`` includes every field, defaults filled in);
- ``Annotated[str, Instant()]``: a timestamp is compared as the instant it names, so
  ``...T10:00:00Z``, ``...T10:00:00.000+00:00`` and ``...T11:00:00+01:00`` are one
  request (rendered in UTC with microseconds and ``Z``);
- ``Annotated[list[...], OrderFree()]``: a list whose order has no meaning is sorted
  (lists without the marker keep their order: it usually means something);
- a model may define ``fingerprint_view(self) -> dict`` to adjust what the markers
  cannot say (e.g. a default that depends on another field); it starts from
  :func:`normalized`.

Numbers and strings are compared as the strict models parsed them: the models refuse
``2.0`` for an integer field, and strings are compared code point by code point (no
Unicode normalization: ``"é"`` precomposed and decomposed are different requests,
since the service stores and passes on what it was sent).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from handler_kit.clock import InvalidTimestampError, parse_timestamp

if TYPE_CHECKING:  # only annotations: a function without models never imports pydantic
    from pydantic import BaseModel


@dataclass(frozen=True)
class OrderFree:
    """Field marker: the list's order has no meaning; it is sorted for the fingerprint.

    Duplicates are kept: whether a repeat means something (or is refused) is the
    model's rule, not the fingerprint's.
    """


@dataclass(frozen=True)
class Instant:
    """Field marker: the string is a timestamp (``clock.parse_timestamp``); the instant counts.

    A value that does not parse is kept as sent: its request is refused later (400),
    or it differs from every valid one.
    """


def canonical_instant(text: str) -> str:
    """The one spelling of a timestamp's instant: UTC, microseconds, ``Z``.

    Raises
    ------
    InvalidTimestampError
        If ``text`` is not in the accepted format.

    Examples
    --------
    >>> canonical_instant("2026-03-14T11:00:00+01:00")
    '2026-03-14T10:00:00.000000Z'
    >>> canonical_instant("2026-03-14T10:00:00.5Z")
    '2026-03-14T10:00:00.500000Z'
    """
    return parse_timestamp(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalize_field(value: Any, metadata: list[Any]) -> Any:
    for marker in metadata:
        if isinstance(marker, Instant) and isinstance(value, str):
            with contextlib.suppress(InvalidTimestampError):
                value = canonical_instant(value)
        elif isinstance(marker, OrderFree) and isinstance(value, list):
            # Sorted by canonical JSON, so lists of any JSON values have one order.
            value = sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def normalized(request: BaseModel) -> dict[str, Any]:
    """The request with defaults applied and every field marker's normalization done.

    Examples
    --------
    >>> from typing import Annotated
    >>> from pydantic import BaseModel
    >>> class Job(BaseModel):
    ...     at: Annotated[str, Instant()]
    ...     tags: Annotated[list[int], OrderFree()] = []
    >>> normalized(Job(at="2026-03-14T10:00:00+00:00", tags=[2, 1]))
    {'at': '2026-03-14T10:00:00.000000Z', 'tags': [1, 2]}
    """
    dumped = request.model_dump(mode="json")
    for name, field in type(request).model_fields.items():
        if name in dumped and field.metadata:
            dumped[name] = _normalize_field(dumped[name], field.metadata)
    return dumped


def fingerprint_view(request: BaseModel) -> dict[str, Any]:
    """What the fingerprint hashes: the model's ``fingerprint_view()``, else :func:`normalized`."""
    hook = getattr(request, "fingerprint_view", None)
    if callable(hook):
        view: dict[str, Any] = hook()
        return view
    return normalized(request)


def request_fingerprint(request: BaseModel) -> str:
    """SHA-256 of the canonical JSON of the normalized request (see the module docstring).

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class Job(BaseModel):
    ...     count: int
    ...     seed: int = 0
    >>> request_fingerprint(Job(count=1)) == request_fingerprint(Job(count=1, seed=0))
    True
    """
    # The same canonical form as before normalization existed (ASCII escapes, sorted
    # keys), so stored fingerprints of requests without markers stay valid.
    canonical = json.dumps(fingerprint_view(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def spelled_fingerprint(request: BaseModel) -> str:
    """The fingerprint as taken before normalization: over ``model_dump()`` as parsed.

    Records stored before normalization hold this one; comparing a retry with both keeps
    such a record's retries replays rather than 422s until the record expires.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class Job(BaseModel):
    ...     seed: int | None = None
    >>> spelled_fingerprint(Job()) == spelled_fingerprint(Job(seed=0))
    False
    """
    canonical = json.dumps(request.model_dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
