"""What the function of a REST API's Lambda proxy integration receives, as on AWS.

Header lines as sent (repeats, folded lines, the whitespace around a value), and a
body validated against the method's model for its media type (or ``$default``) before
the function runs, then handed on with its ``Content-Type`` as sent. Each docstring
states the AWS behaviour and cites its page.
"""

from __future__ import annotations

import gzip
import zlib

import pytest
from tiny_api_calls import call

from localstage.stage import LocalStage


def test_repeated_headers_and_query_parameters_reach_the_event_as_aws_builds_them(
    api_stage: LocalStage,
) -> None:
    """A REST proxy event has ``multiValueHeaders`` and ``multiValueQueryStringParameters``
    with every value in order, and ``headers`` and ``queryStringParameters`` with the
    last value of each name (values are never merged into one).

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#apigateway-multivalue-headers-and-parameters
    """
    answer = call(
        api_stage,
        "GET",
        "echo?tag=a&tag=b%2Cc&one=1",
        headers=[("X-Key", "first"), ("X-Key", "second, third"), ("X-Single", "only")],
    )

    assert answer.status == 200, answer.raw[:200]
    event = answer.json
    assert event["multiValueHeaders"]["X-Key"] == ["first", "second, third"]
    assert event["headers"]["X-Key"] == "second, third"
    assert event["headers"]["X-Single"] == "only"
    assert event["multiQuery"] == {"tag": ["a", "b,c"], "one": ["1"]}
    assert event["query"] == {"tag": "b,c", "one": "1"}


def test_a_header_repeated_with_one_value_keeps_each_line_and_a_folded_line_is_one_value(
    api_stage: LocalStage,
) -> None:
    """A header sent twice with the same value is two values in ``multiValueHeaders``
    (nothing de-duplicates them) and the value in ``headers``; a line holding a list
    (``k-1, k-1``, as an intermediary folds repeated lines, RFC 9110 section 5.3) is one
    value, not split at its comma. The functions tell a key sent twice from one sent
    once by this (``handler_kit.http_requests.idempotency_key``).

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
    """
    twice = call(
        api_stage, "GET", "echo", headers=[("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-1")]
    )
    folded = call(api_stage, "GET", "echo", headers=[("Idempotency-Key", "k-1, k-1")])

    assert twice.status == folded.status == 200, (twice.raw[:200], folded.raw[:200])
    assert twice.json["multiValueHeaders"]["Idempotency-Key"] == ["k-1", "k-1"]
    assert twice.json["headers"]["Idempotency-Key"] == "k-1"
    assert folded.json["multiValueHeaders"]["Idempotency-Key"] == ["k-1, k-1"]
    assert folded.json["headers"]["Idempotency-Key"] == "k-1, k-1"


def test_the_whitespace_around_a_header_value_is_not_part_of_it(api_stage: LocalStage) -> None:
    """HTTP does not count the whitespace around a field value as part of it (RFC 9110,
    section 5.5), so the function gets ``Idempotency-Key:   k-1  `` as ``k-1``, as a
    retry that spells the header without the spaces does.

    https://www.rfc-editor.org/rfc/rfc9110#section-5.5
    """
    answer = call(
        api_stage,
        "GET",
        "echo",
        headers=[("Idempotency-Key", "  k-1 \t"), ("X-Inner", "a  b")],
    )

    assert answer.status == 200, answer.raw[:200]
    event = answer.json
    assert event["headers"]["Idempotency-Key"] == "k-1"
    assert event["multiValueHeaders"]["Idempotency-Key"] == ["k-1"]
    assert event["headers"]["X-Inner"] == "a  b"  # inside the value, kept


def test_deeply_nested_json_gets_the_apis_json_400(api_stage: LocalStage) -> None:
    """A body the request validator cannot validate against the method's model is a 400
    ``BAD_REQUEST_BODY`` ("Invalid request body") in the API's gateway-response shape;
    the front door never answers with an HTML page or a 500 for a client's body.

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html
    and https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    """
    body = ("[" * 100_000 + "]" * 100_000).encode()

    answer = call(
        api_stage,
        "POST",
        "validated",
        body=body,
        headers=[("Content-Type", "application/json")],
    )

    assert answer.status == 400, answer.raw[:200]
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json == {"error": "invalid_request", "message": "Invalid request body"}


@pytest.mark.parametrize(
    "body",
    [
        # A lone surrogate encoded as if it were UTF-8, in a member the model leaves open
        b'{"name": "x", "note": "\xed\xa0\x80"}',
        b'{"name": "\xed\xa0\xbd\xed\xb8\x80"}',  # an emoji in CESU-8, not UTF-8
        '{"name": "x"}'.encode("utf-16"),
        '{"name": "x"}'.encode("utf-32-le"),
        b'{"name": "\xff"}',
    ],
    ids=["lone-surrogate", "cesu-8", "utf-16", "utf-32", "invalid-byte"],
)
def test_a_body_that_is_not_utf_8_is_refused_by_the_validator(
    api_stage: LocalStage, body: bytes
) -> None:
    """A request validator reads the body as UTF-8 JSON (README: a JSON body that is not
    UTF-8 is a 400 here): bytes Python's ``json.loads`` would also take (UTF-16, UTF-32,
    surrogates written as UTF-8 bytes) are refused before the function runs, which
    would see them as U+FFFD text.
    """
    answer = call(
        api_stage, "POST", "validated", body=body, headers=[("Content-Type", "application/json")]
    )

    assert answer.status == 400, answer.raw[:200]
    assert answer.json == {"error": "invalid_request", "message": "Invalid request body"}


def _compressed(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    return zlib.compress(data)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "GZIP"])
def test_a_compressed_body_reaches_validator_and_function_decompressed(
    api_stage: LocalStage, coding: str
) -> None:
    """API Gateway decompresses a request body sent with ``Content-Encoding`` gzip or
    deflate by default (no ``minimumCompressionSize`` needed), validates the result and
    hands it on; the function still sees the header as sent (it must not decode again).

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-gzip-compression-decompression.html
    ("By default, API Gateway supports decompression of the method request payload");
    the header left on: dougmoscrop/serverless-http#194.
    """
    sent = [("Content-Type", "application/json"), ("Content-Encoding", coding)]
    document = b'{"name": "zipped"}'

    fits = call(
        api_stage, "POST", "validated", body=_compressed(coding.lower(), document), headers=sent
    )
    breaks_model = call(
        api_stage,
        "POST",
        "validated",
        body=_compressed(coding.lower(), b'{"name": 5}'),
        headers=sent,
    )

    assert fits.status == 200, fits.raw[:200]
    assert fits.json["body"] == document.decode()
    assert fits.json["isBase64Encoded"] is False
    assert fits.json["multiValueHeaders"]["Content-Encoding"] == [coding]
    # AND the model is checked against the decompressed body
    assert breaks_model.status == 400, breaks_model.raw[:200]


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", b'{"name": "plain, labelled gzip"}'),
        ("deflate", b'{"name": "plain, labelled deflate"}'),
        ("br", b'{"name": "x"}'),
        ("compress", b'{"name": "x"}'),
        ("gzip, deflate", b'{"name": "x"}'),
        ("gzip", gzip.compress(b'{"name": "cut short"}')[:-6]),
        ("deflate", zlib.compress(b'{"name": "x"}') + b"trailing"),
    ],
    ids=[
        "plain-as-gzip",
        "plain-as-deflate",
        "brotli",
        "compress",
        "two-codings",
        "truncated",
        "trailing-bytes",
    ],
)
def test_a_body_that_is_not_in_its_declared_coding_is_a_415(
    api_stage: LocalStage, coding: str, body: bytes
) -> None:
    """ "If the specified coding isn't supported or the supplied payload isn't compressed
    with specified coding, API Gateway returns the 415 Unsupported Media Type error
    response": the function never sees it. (Two codings applied one after the other are
    not documented either way: refused here, the stricter reading.)

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-make-request-with-compressed-payload.html
    """
    sent = [("Content-Type", "application/json"), ("Content-Encoding", coding)]

    answer = call(api_stage, "POST", "validated", body=body, headers=sent)

    assert answer.status == 415, answer.raw[:200]
    assert answer.json == {"error": "unsupported_media_type", "message": "Unsupported Media Type"}


def test_a_body_that_decompresses_beyond_the_payload_quota_is_a_413(api_stage: LocalStage) -> None:
    """A small body that decompresses beyond the 10 MB payload quota is refused (413, as
    a body that large sent plain), not expanded without limit. (Whether AWS counts the
    quota before or after decompressing is not documented: after, here, the stricter.)"""
    bomb = gzip.compress(b" " * (10 * 1024 * 1024 + 1))
    sent = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]

    answer = call(api_stage, "POST", "validated", body=bomb, headers=sent)

    assert len(bomb) < 64 * 1024
    assert answer.status == 413, answer.raw[:200]


@pytest.mark.parametrize(
    ("content_type", "validated"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        (None, True),
        ("text/plain", False),
    ],
    ids=["json", "json-with-parameter", "no-content-type", "text-plain"],
)
def test_a_body_is_validated_only_against_the_model_of_its_content_type(
    api_stage: LocalStage, content_type: str | None, validated: bool
) -> None:
    """API Gateway validates a body against the method's model for the request's media
    type; with no matching model (and no ``$default`` one) the body is not validated and
    reaches the function. A request without ``Content-Type`` counts as
    ``application/json``. (The patterns key their models ``$default`` for this reason.)

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html
    """
    headers = [("Content-Type", content_type)] if content_type else []

    answer = call(api_stage, "POST", "validated", body=b'{"name": 5}', headers=headers)

    if validated:
        assert answer.status == 400, answer.raw[:200]
        assert answer.json == {"error": "invalid_request", "message": "Invalid request body"}
    else:
        assert answer.status == 200, answer.raw[:200]
        assert answer.json["path"] == "/validated"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        None,
        "text/plain",
        "application/xml",
        "application/json; charset=latin-1",
        "Application/JSON",
    ],
    ids=["json", "no-content-type", "text-plain", "xml", "charset-latin-1", "upper-case"],
)
def test_a_default_model_validates_every_media_type_and_hands_it_on_as_sent(
    api_stage: LocalStage, content_type: str | None
) -> None:
    """A method whose model is keyed ``$default`` (as the patterns key theirs) has its
    body validated against that model whatever the request's ``Content-Type``: a JSON
    body that breaks the model, or a body that is no JSON at all, is a 400 before the
    function runs. A JSON body that fits reaches the function with its
    ``Content-Type`` as sent (no ``Content-Type`` stays none): the integration is a
    proxy, with no mapping template, so no passthrough rule (415 ``NEVER`` /
    ``WHEN_NO_TEMPLATES``) applies and the function decides what media types it takes.

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html
    ("To use the same model regardless of the content type, set the content type for
    your data model to $default") and
    https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html
    """
    headers = [("Content-Type", content_type)] if content_type else []

    breaks_model = call(api_stage, "POST", "anytype", body=b'{"name": 5}', headers=headers)
    not_json = call(api_stage, "POST", "anytype", body=b"<name>x</name>", headers=headers)
    fits = call(api_stage, "POST", "anytype", body=b'{"name": "x"}', headers=headers)

    refused = {"error": "invalid_request", "message": "Invalid request body"}
    assert breaks_model.status == not_json.status == 400, breaks_model.raw[:200]
    assert breaks_model.json == not_json.json == refused
    assert fits.status == 200, fits.raw[:200]
    sent = {k: v for k, v in fits.json["multiValueHeaders"].items() if k.lower() == "content-type"}
    assert sent == ({"Content-Type": [content_type]} if content_type else {})
    assert fits.json["bodyLength"] == len(b'{"name": "x"}')
