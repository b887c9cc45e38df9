"""One strict JSON reader for every untrusted document (API bodies, queue messages, lines).

Python's ``json`` (and pydantic's ``model_validate_json``) accept documents that other
parsers read differently or that cannot be written back as JSON:

- ``NaN``, ``Infinity``, ``-Infinity`` and numbers that overflow a double (``1e309``,
  read as ``inf``) are not JSON (RFC 8259, section 6); stored and sent on, they make
  invalid JSON downstream. A non-zero number too small for a double (``1e-400``) reads
  as ``0.0``: a payload stored and delivered later would say something else than the
  client sent, so it is refused as out of range too. So is a number a double cannot
  hold as written: one of more than 17 significant digits (``1.00000000000000001``
  reads as ``1.0``), and one of 16 or 17 digits, or below 2.2250738585072014e-308
  (subnormal doubles keep fewer digits, down to one), whose double, rounded to the
  digits written, is another number (``1.0000000000000001`` reads as ``1.0``,
  ``3e-324`` as ``5e-324``) and is not the double's shortest spelling either. Every
  number of 15 digits or fewer in a double's normal range reads back as written; so
  does every double as ``repr``, JavaScript or C's ``%.17g`` writes it (``0.1``,
  ``0.30000000000000004``, ``0.10000000000000001``). Two bodies that differ in such a
  number would otherwise be stored alike and replay as one request.
- Duplicate member names: the last one wins here, the first one in other parsers, so
  ``{"amount":0,"amount":5}`` means different things to different readers.
- Deep nesting: ``json.loads`` recurses per level and raises ``RecursionError`` (a 500)
  around 1,000 levels; the depth is therefore measured on the raw text first, without
  recursion.
- Huge integers: converting one beyond ``sys.get_int_max_str_digits()`` raises a plain
  ``ValueError``; long ones are refused up front with a clear message.

Every refusal is an :class:`InvalidJsonError`, a subclass of ``InvalidRequestError``,
so an API answers it as 400 ``invalid_request`` and a message consumer treats it as
poison.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from handler_kit.errors import InvalidRequestError

if TYPE_CHECKING:  # only annotations: a function without models never imports pydantic
    from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound="BaseModel")

#: Deepest accepted nesting of arrays and objects. No document of these APIs needs more
#: than a handful of levels; 32 leaves room for client payloads and stays far below the
#: recursion limits of ``json`` and pydantic.
MAX_DEPTH = 32

#: Longest accepted integer literal, in digits (sign excluded). 1,000 digits is far above
#: any amount or count here and below Python's 4,300-digit conversion limit.
MAX_INT_DIGITS = 1000

# A JSON string (escapes included) or one bracket. Strings are matched whole so brackets
# inside them are not counted. Possessive quantifiers and the optional closing quote make
# every match succeed where it starts: an unterminated string ends the scan instead of
# being retried from each later quote, so the scan stays linear on hostile text.
_DEPTH_TOKEN_RE = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)
# The same strings, and everything that is no bracket: removed in C by ``re.sub``.
_STRING_RE = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]++")
_ONE_BRACKET_KIND = str.maketrans("{}", "[]")


#: The most significant digits that always survive a round trip through a double.
_DOUBLE_DIGITS = 17
#: A normal double holds every decimal of this many significant digits (C's DBL_DIG).
_EXACT_DIGITS = 15
_EXPONENT_RE = re.compile(r"[eE].*")
# A JSON number whose digits before the exponent are not all zero (0.0, -0e5 are zeros).
_MANTISSA_NOT_ZERO_RE = re.compile(r"-?[0-9.]*[1-9]")


class InvalidJsonError(InvalidRequestError):
    """A document is not strict JSON (HTTP 400 ``invalid_request``; poison for messages)."""


def _refuse_constant(name: str) -> Any:
    raise InvalidJsonError(f"body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or (value == 0.0 and _MANTISSA_NOT_ZERO_RE.match(text)):
        raise InvalidJsonError(f"body is not valid JSON: number {text[:32]} is out of range")
    mantissa = _EXPONENT_RE.sub("", text).lstrip("-").replace(".", "")
    digits = len(mantissa.strip("0"))
    if digits > _DOUBLE_DIGITS:
        raise InvalidJsonError(
            f"body is not valid JSON: number {text[:32]} has more significant digits than "
            f"a double keeps ({_DOUBLE_DIGITS})"
        )
    # The checks above come first: they leave only texts of at most 17 digits whose
    # exponent a double can hold, so Decimal below never meets a huge exponent.
    inexact = digits > _EXACT_DIGITS or abs(value) <= sys.float_info.min
    if value != 0.0 and inexact and not _reads_as_written(text, value):
        raise InvalidJsonError(
            f"body is not valid JSON: number {text[:32]} cannot be held by a double as "
            f"written (it would read as {value!r})"
        )
    return value


def _reads_as_written(text: str, value: float) -> bool:
    """Whether ``value`` is ``text``: rounded to the significant digits ``text`` writes,
    or as its shortest spelling (``repr``; at a power of two the two can differ)."""
    # Imported here: only numbers of 16 or 17 digits or subnormal ones get this far, and
    # no function's cold start should pay for decimal.
    from decimal import Context, Decimal

    written = Decimal(text).normalize()
    digits = len(written.as_tuple().digits)
    rounded = Context(prec=digits).create_decimal(Decimal(value))
    return rounded == written or Decimal(repr(value)) == written


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidJsonError(
            f"body is not valid JSON: integer longer than {MAX_INT_DIGITS} digits"
        )
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJsonError(f"body is not valid JSON: duplicate key {key[:64]!r}")
        result[key] = value
    return result


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets in strings ignored.

    Iterative, so any depth is measured without recursion. On text that is not JSON the
    result is only an estimate (the parser refuses such text anyway).

    Examples
    --------
    >>> nesting_depth('{"a": [1, {"b": "[[["}]}')
    3
    >>> nesting_depth("1")
    0
    """
    depth = deepest = 0
    for match in _DEPTH_TOKEN_RE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _deeper_than(text: str, max_depth: int) -> bool:
    """Whether ``text`` nests deeper than ``max_depth`` (or its brackets do not pair up).

    Each ``str.replace`` pass removes the innermost pairs, one level: ``max_depth`` passes
    at C speed instead of a Python step per bracket (about 80 ms on 256 KiB of ``[]``).
    """
    brackets = _NOT_BRACKET_RE.sub("", _STRING_RE.sub("", text)).translate(_ONE_BRACKET_KIND)
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = brackets.replace("[]", "")
    return bool(brackets)


def loads(document: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON: UTF-8, finite numbers, unique keys, bounded depth.

    Parameters
    ----------
    document : bytes or str
        The raw document; bytes must be UTF-8 (other encodings are refused, where
        ``json.loads`` would guess UTF-16 or UTF-32).
    max_depth : int, optional
        Deepest accepted nesting of arrays and objects.

    Returns
    -------
    Any
        The parsed value (objects as dicts, arrays as lists).

    Raises
    ------
    InvalidJsonError
        If the document is not UTF-8 or not JSON, has ``NaN``/``Infinity`` or a number
        out of a double's range (too large, or non-zero and too small) or with more
        digits than a double keeps, an integer over
        ``MAX_INT_DIGITS`` digits, a duplicate key at any depth, or nesting deeper than
        ``max_depth``.

    Examples
    --------
    >>> loads(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> loads('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    handler_kit.strict_json.InvalidJsonError: body is not valid JSON: duplicate key 'a'
    """
    if isinstance(document, bytes):
        try:
            text = document.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJsonError("body is not valid JSON: not UTF-8") from None
    else:
        text = document
    if _deeper_than(text, max_depth):
        raise InvalidJsonError(f"body is not valid JSON: nested deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except InvalidJsonError:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidJsonError(f"body is not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError):
        # Belt and braces: a conversion limit or a depth the scan underestimated on
        # text that is not JSON anyway; never a 500.
        raise InvalidJsonError("body is not valid JSON") from None


def parse_model(model: type[ModelT], document: bytes | str) -> ModelT:
    """Validate a strict JSON document as ``model``.

    The document is checked with :func:`loads` first (pydantic's own JSON parser lets
    duplicate keys through, last one winning), then validated by pydantic in JSON mode
    from the same text, so the models' strict JSON-mode rules stay what they were
    (strict Python-mode validation of the parsed dict would refuse e.g. a UUID string).

    Raises
    ------
    InvalidJsonError
        If the document is not strict JSON (see :func:`loads`).
    pydantic.ValidationError
        If it is, but does not fit ``model``.
    """
    loads(document)
    return model.model_validate_json(document)


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys that refuses to write ``NaN`` or ``Infinity``.

    Raises
    ------
    InvalidJsonError
        If ``value`` holds a non-finite float.

    Examples
    --------
    >>> dumps({"b": 1, "a": [True, None]})
    '{"a":[true,null],"b":1}'
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidJsonError("value holds a number that is not valid JSON") from None
