"""handler_kit: strict JSON, the one timestamp format and single-valued headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from handler_kit import http_requests, strict_json
from handler_kit.clock import InvalidTimestampError, parse_timestamp
from handler_kit.errors import AmbiguousIdempotencyKeyError, InvalidRequestError
from handler_kit.strict_json import MAX_DEPTH, InvalidJsonError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from tests.support.events import api_event

# --------------------------------------------------------------------------- strict JSON

#: Documents Python's json module (and pydantic) accept but that are not strict JSON.
HOSTILE = {
    "nan": '{"a": NaN}',
    "infinity": '{"a": Infinity}',
    "minus-infinity": '{"a": [-Infinity]}',
    "overflow": '{"a": 1e309}',
    "negative-overflow": '{"a": {"b": -1e400}}',
    "underflow": '{"a": 1e-400}',
    "negative-underflow": '{"a": [-0.0000001e-330]}',
    # Numbers a double cannot hold as written: 17 digits that read as 1.0, 16 that read
    # as 9007199254740992.0, the smallest normal double reached from below, and
    # subnormal doubles that keep fewer digits (these read as 5e-324 and 1.2347e-320).
    "17-digits-read-as-one": '{"a": 1.0000000000000001}',
    "16-digits-past-2-to-the-53": '{"a": [9007199254740993.0]}',
    "rounded-up-to-the-smallest-normal": '{"a": 2.2250738585072012e-308}',
    "subnormal-rounded-away": '{"a": 3e-324}',
    "subnormal-fifth-digit-lost": '{"a": [-1.2345e-320]}',
    "more-digits-than-a-double": '{"a": 1.00000000000000001}',
    "pi-to-21-digits": '{"a": [3.14159265358979323846]}',
    "huge-int": '{"a": ' + "9" * 10_000 + "}",
    "duplicate-top": '{"amount": 0, "amount": 5}',
    "duplicate-nested": '{"a": [{"b": 1, "b": 2}]}',
    "too-deep": "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    "far-too-deep": "[" * 100_000 + "]" * 100_000,
    "far-too-deep-unclosed": '{"a":' * 100_000,
    "not-utf8": b'{"a": "\xff"}',
}


def test_a_number_of_more_digits_than_a_double_keeps_is_refused_even_when_exact() -> None:
    # GIVEN 2**-60 written out in full: exact as a double, but with 43 significant digits,
    # more than a double's 17 (so no other rule refuses it)
    document = '{"a": 8.67361737988403547205962240695953369140625E-19}'
    assert float("8.67361737988403547205962240695953369140625E-19") == 2**-60
    # WHEN it is read strictly THEN it is refused for its digits
    with pytest.raises(InvalidJsonError, match="more significant digits than a double keeps"):
        strict_json.loads(document)


@pytest.mark.parametrize("document", HOSTILE.values(), ids=HOSTILE.keys())
def test_documents_that_are_not_strict_json_are_invalid_requests(document) -> None:
    # GIVEN a document the standard parser would accept, or crash on
    # WHEN it is read strictly
    # THEN an InvalidJsonError, which APIs answer as 400 invalid_request
    with pytest.raises(InvalidJsonError, match="not valid JSON") as caught:
        strict_json.loads(document)
    assert isinstance(caught.value, InvalidRequestError)


def test_the_standard_parser_accepts_what_the_strict_one_refuses() -> None:
    # GIVEN the documents above WHEN read by json.loads THEN silently accepted
    # (this is why the strict reader exists; the deep ones crash it instead)
    assert json.loads(HOSTILE["duplicate-top"]) == {"amount": 5}
    assert json.loads(HOSTILE["overflow"]) == {"a": float("inf")}
    with pytest.raises(RecursionError):
        json.loads(HOSTILE["far-too-deep"])


@pytest.mark.parametrize(
    "number",
    [
        "0.0",
        "-0e5",
        "0E-400",
        "5e-324",
        "4.9406564584124654e-324",  # C's %.17g of the smallest subnormal
        "-1.2347e-320",
        "2.2250738585072014e-308",
        "0.1",
        "19.99",
        "1.50",
        "1.5e3",
        "0.30000000000000004",
        "1.7976931348623157e308",
        "0.10000000000000001",  # C's %.17g of 0.1: 17 significant digits
        "0.29999999999999999",  # C's %.17g of 0.3
        "7.120236347223045e-307",  # repr at a power of two, not %.16g of its double
        "1.000e-320",
        "123456789.12345678",
        "100000000000000000000.0",  # trailing zeros are no significant digits
    ],
)
def test_zeros_and_the_smallest_doubles_read_as_numbers(number: str) -> None:
    # GIVEN a zero however spelled, or a number its double reads back as, to the digits
    # written (5e-324 is the smallest subnormal, 0.1 is its double's shortest form,
    # trailing zeros add no digit) WHEN read strictly THEN the value json.loads reads
    assert strict_json.loads(number) == json.loads(number)


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(max_value=1e-307, min_value=-1e-307)
)
def test_every_double_as_python_or_c_writes_it_reads_back_as_itself(value: float) -> None:
    # GIVEN any finite double, subnormals included, written as json.dumps writes it (the
    # shortest spelling that reads back as the same double) WHEN read strictly THEN the
    # same double: the digit rules refuse only numbers a double cannot hold as written
    assert strict_json.loads(json.dumps(value)) == value
    # AND as C's %.17g writes it (what many other serializers send)
    assert strict_json.loads(f"{value:.17g}") == value


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_fine() -> None:
    # GIVEN nesting exactly at the limit, and brackets and escapes inside strings
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    in_strings = json.dumps({"a": "[[[[" * 100, "b": '\\"{{{{' * 100})
    # WHEN read THEN parsed
    assert strict_json.loads(at_limit) is not None
    assert strict_json.loads(in_strings)["a"].startswith("[[[[")
    assert strict_json.nesting_depth(in_strings) == 1


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON_VALUES, max_depth=st.integers(min_value=0, max_value=8))
def test_a_document_is_refused_for_depth_exactly_when_it_nests_deeper_than_allowed(
    value: object, max_depth: int
) -> None:
    # GIVEN any JSON document (strings full of brackets, quotes and backslashes) and a limit
    text = json.dumps(value)
    deeper = strict_json.nesting_depth(text) > max_depth

    # WHEN read strictly with that limit THEN refused for depth exactly when it nests
    # deeper (the check strips bracket pairs level by level, not a Python step per bracket)
    if deeper:
        with pytest.raises(InvalidJsonError, match="nested deeper"):
            strict_json.loads(text, max_depth=max_depth)
    else:
        assert strict_json.loads(text, max_depth=max_depth) == value


def test_ordinary_documents_read_as_json_does() -> None:
    # GIVEN a document with every JSON type WHEN read strictly THEN as json.loads reads it
    document = '{"s": "x\\u00e9", "i": -12, "f": 1.5e3, "t": true, "n": null, "l": [1, {}]}'
    assert strict_json.loads(document) == json.loads(document)
    assert strict_json.loads(document.encode("utf-8")) == json.loads(document)


def test_models_are_validated_after_the_strict_check() -> None:
    # GIVEN a strict model (pydantic alone lets the last duplicate win)
    class Amount(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        amount: int

    assert Amount.model_validate_json('{"amount": 0, "amount": 5}').amount == 5
    # WHEN the same body goes through parse_model THEN refused; a good one validates
    with pytest.raises(InvalidJsonError, match="duplicate key 'amount'"):
        strict_json.parse_model(Amount, b'{"amount": 0, "amount": 5}')
    assert strict_json.parse_model(Amount, b'{"amount": 5}').amount == 5


def test_dumps_never_writes_nan() -> None:
    # GIVEN a value holding NaN WHEN dumped THEN refused; a normal one is compact
    with pytest.raises(InvalidJsonError):
        strict_json.dumps({"a": float("nan")})
    assert strict_json.dumps({"b": 1, "a": 2}) == '{"a":2,"b":1}'


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T18:46:14Z", datetime(2026, 12, 3, 18, 46, 14, tzinfo=UTC)),
        ("2026-12-03T18:46:14.5Z", datetime(2026, 12, 3, 18, 46, 14, 500_000, tzinfo=UTC)),
        (
            "2026-12-03T18:46:14.123456-05:30",
            datetime(2026, 12, 3, 18, 46, 14, 123_456, tzinfo=timezone(-timedelta(hours=5.5))),
        ),
    ],
)
def test_timestamps_in_the_documented_format_parse(text, expected) -> None:
    # GIVEN a timestamp in the documented format WHEN parsed THEN that moment
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T18:46:14Z\x00junk",  # fromisoformat stops at the NUL
        "2026-12-03T18:46:14Z\n",  # a regex "$" would let this through
        " 2026-12-03T18:46:14Z",
        "2026-12-03T18:46:14",  # no timezone
        "2026-12-03 18:46:14Z",  # space for T
        "2026-12-03T18:46Z",  # no seconds
        "2026-12-03T18:46:14+0100",  # offset without colon
        "2026-12-03T18:46:14.1234567Z",  # 7 fraction digits
        "2026-12-03T18:46:14+05:60",  # minute 60 in the offset
        "2026-12-03T18:46:14+24:00",  # offset out of range
        "2026-02-30T00:00:00Z",  # no such day
        "2026-12-03T24:00:00Z",  # no such hour
        "\uff12\uff10\uff12\uff16-12-03T18:46:14Z",  # full-width digits match \d without ASCII
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+00:01",  # year 0 in UTC
    ],
)
def test_timestamps_with_anything_else_are_refused(text) -> None:
    # GIVEN a timestamp that is not exactly the format WHEN parsed THEN refused
    with pytest.raises(InvalidTimestampError):
        parse_timestamp(text)


# --------------------------------------------------------------------------- headers


def _event(**kwargs) -> APIGatewayProxyEvent:
    return APIGatewayProxyEvent(api_event("POST", "/things", resource="/things", **kwargs))


@pytest.mark.parametrize(
    "options",
    [
        # as API Gateway delivers a header sent on two lines: every value, and the last
        {"multi_value_headers": {"Idempotency-Key": ["a", "b"]}},
        {"multi_value_headers": {"Idempotency-Key": ["a", "a"]}},
        {"multi_value_headers": {"Idempotency-Key": ["a"], "idempotency-key": ["a"]}},
        # as an intermediary folds two lines into one (RFC 9110, section 5.3)
        {"headers": {"Idempotency-Key": "a, a"}},
        {"headers": {"Idempotency-Key": "a,b"}},
        {"headers": {"Idempotency-Key": ","}},
    ],
    ids=["different", "same", "names-differ-in-case", "folded", "folded-tight", "comma"],
)
def test_more_than_one_idempotency_key_is_ambiguous(options) -> None:
    # GIVEN a key header on two lines, or one line holding a list
    event = _event(**options)
    # WHEN read THEN refused as ambiguous (a 400 of its own, naming the header)
    with pytest.raises(AmbiguousIdempotencyKeyError, match=r"^Idempotency-Key must be"):
        http_requests.idempotency_key(event)


def test_header_maps_that_disagree_are_two_lines() -> None:
    # GIVEN a hand-made event whose two header maps disagree WHEN read THEN refused
    raw = api_event("POST", "/things", resource="/things", headers={"Idempotency-Key": "a"})
    raw["headers"]["Idempotency-Key"] = "b"
    with pytest.raises(AmbiguousIdempotencyKeyError, match="2 header lines"):
        http_requests.idempotency_key(APIGatewayProxyEvent(raw))
    # GIVEN the maps of one line (the last value in headers) WHEN read THEN that key
    assert http_requests.idempotency_key(_event(headers={"Idempotency-Key": "a"})) == "a"
