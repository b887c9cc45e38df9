"""Conformance of the API Gateway front door (REST API, Lambda proxy integration).

One test per emulated rule; each docstring states the AWS behaviour and cites its page.
Requests go over raw HTTP (``tiny_api_calls``); what the function receives (header
lines, bodies against their model) is in ``test_apigateway_requests.py``.
"""

from __future__ import annotations

import base64
import datetime
import json

import boto3
import pytest
from tiny_api_calls import call

from localstage.apigateway_proxy import GatewayError
from localstage.apigateway_sigv4 import check_signing_time
from localstage.invoke import lambda_service
from localstage.stage import LocalStage
from localstage.target import LocalTarget

MB = 1024 * 1024


@pytest.mark.parametrize(
    "shape",
    [
        "status_word",
        "status_bool",
        "extra_field",
        "body_object",
        "header_number",
        "multi_header_string",
        "base64_string",
        "not_an_object",
        "unserializable",
        "raises",
    ],
)
def test_a_malformed_proxy_response_is_a_502(api_stage: LocalStage, shape: str) -> None:
    """A Lambda proxy integration returns an object of ``statusCode`` (a number),
    ``headers`` ({name: string}), ``multiValueHeaders`` ({name: [string]}), ``body`` (a
    string) and ``isBase64Encoded`` (a boolean). If the function fails, or returns
    anything else (another field, a field of another type), API Gateway answers 502
    ``{"message": "Internal server error"}`` (through the API's 5XX gateway response).

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format
    and https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
    """
    answer = call(api_stage, "GET", f"shape/{shape}")

    assert answer.status == 502, answer.raw[:200]
    assert answer.json == {"error": "server_error", "message": "Internal server error"}


@pytest.mark.parametrize(
    ("shape", "status", "header"),
    [("no_status", 200, None), ("status_string", 201, None), ("header_bool", 200, "true")],
)
def test_every_field_of_a_proxy_response_is_optional(
    api_stage: LocalStage, shape: str, status: int, header: str | None
) -> None:
    """No field of the proxy response is required: without ``statusCode`` API Gateway
    answers 200; a ``statusCode`` string of digits is that status; a boolean header
    value is written ``true``/``false``. (The output format page lists the fields;
    that none is mandatory and what AWS does with these values is what LocalStack's
    AWS-validated tests record: localstack/localstack#10312, #11199, #11856.)

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format
    """
    answer = call(api_stage, "GET", f"shape/{shape}")

    assert answer.status == status, answer.raw[:200]
    assert answer.headers.get("x-flag") == header


def test_the_integration_timeout_answers_504(api_stage: LocalStage) -> None:
    """API Gateway waits for the integration at most its ``TimeoutInMillis`` (50 ms to
    29,000 ms, the default); past it the client gets 504 ``INTEGRATION_TIMEOUT``
    ("Endpoint request timed out") while the function may still run.

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html
    and https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    """
    # GIVEN GET /slow has a 300 ms integration timeout and its function sleeps 3 s
    answer = call(api_stage, "GET", "slow")

    assert answer.status == 504, answer.raw[:200]
    assert answer.json == {"error": "server_error", "message": "Endpoint request timed out"}


def test_a_function_lambda_throttles_is_a_500(api_stage: LocalStage) -> None:
    """API Gateway calls Lambda synchronously: a function with no concurrency left is
    throttled at once, and "If the Lambda API rejects the invocation request, API
    Gateway returns a 500 error code" (its DEFAULT_5XX response), without waiting for
    an environment to come free.

    AWS: https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
    """
    # GIVEN GET /throttled proxies to a function whose reserved concurrency is 0
    answer = call(api_stage, "GET", "throttled")

    # THEN the gateway's own 500, and the function never ran
    assert answer.status == 500, answer.raw[:200]
    assert answer.json == {"error": "server_error", "message": "Internal server error"}
    assert api_stage.function("Throttled").invocations == 0


def test_a_request_over_10_mb_is_refused_with_413(api_stage: LocalStage) -> None:
    """A REST API's payload is at most 10 MB; a larger request gets 413
    ``REQUEST_TOO_LARGE`` before any authorization or integration.

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html
    and https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    """
    # WHEN an unsigned-for-the-route request (no such resource) carries 10 MB + 1 byte
    answer = call(api_stage, "PUT", "nothing/here", body=b"x" * (10 * MB + 1))

    assert answer.status == 413, answer.raw[:200]
    assert answer.json == {"error": "client_error", "message": "Request Too Long"}


def test_a_method_arn_over_1600_bytes_is_refused_with_414(api_stage: LocalStage) -> None:
    """ "When authorization is enabled on a method, the maximum length of the method's
    ARN (for example,
    arn:aws:execute-api:{region-id}:{account-id}:{api-id}/{stage-id}/{method}/{resource}/{path})
    is 1600 bytes. The path parameter values (whose size is determined at runtime) can
    cause the ARN length to exceed the limit. When this happens, the API client receives
    a 414 Request URI too long response."

    AWS: https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
    (no body given: localstage answers with the API's DEFAULT_4XX template)
    """
    # GIVEN the ARN of GET /{proxy+} (AWS_IAM) up to its path
    target = LocalTarget(api_stage)
    api_id = target.output("test-Tiny", "ApiUrl").split("//")[1].split(".")[0]
    prefix = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/test/GET/"
    fits = "p" * (1600 - len(prefix))

    # WHEN the path makes the method's ARN exactly 1600 bytes, and then 1601
    at_limit = call(api_stage, "GET", fits)
    over = call(api_stage, "GET", fits + "p")

    # THEN the first reaches the function, the second is a 414 from the gateway
    assert at_limit.status == 200, at_limit.raw[:200]
    assert over.status == 414, over.raw[:200]
    assert over.json == {"error": "client_error", "message": "Request URI too long"}


def test_an_event_over_lambdas_6_mb_sync_limit_is_a_500(api_stage: LocalStage) -> None:
    """Lambda refuses a synchronous invocation whose payload exceeds 6 MB
    (``RequestTooLargeException``); when the Lambda API rejects the invocation, API
    Gateway answers 500 ``{"message": "Internal server error"}``. A 7 MB body is under
    API Gateway's 10 MB but its proxy event is over Lambda's 6 MB.

    AWS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    and https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
    """
    answer = call(api_stage, "POST", "echo", body=b"x" * (7 * MB))

    assert answer.status == 500, answer.raw[:200]
    assert answer.json == {"error": "server_error", "message": "Internal server error"}


def test_a_response_over_lambdas_6_mb_sync_limit_is_a_502(api_stage: LocalStage) -> None:
    """A synchronous invocation's response is at most 6 MB; over it Lambda reports the
    function error ``Function.ResponseSizeTooLarge``, which API Gateway answers with 502.

    AWS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    and https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
    """
    answer = call(api_stage, "GET", "big")

    assert answer.status == 502, answer.raw[:200]
    assert answer.json == {"error": "server_error", "message": "Internal server error"}


def test_a_response_over_6_mb_is_a_function_error_of_the_invoke_api(
    api_stage: LocalStage,
) -> None:
    """Invoke (``RequestResponse``): a response over 6 MB is not returned; the call
    succeeds with ``FunctionError: Unhandled`` and the error ``Function.ResponseSizeTooLarge``.

    AWS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    and https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html
    """
    credentials = LocalTarget(api_stage).caller_credentials()
    client = boto3.client(
        "lambda",
        endpoint_url=lambda_service(api_stage).url,
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
    )

    response = client.invoke(FunctionName=api_stage.function("Big").spec.name, Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "Function.ResponseSizeTooLarge"


def test_a_trailing_slash_reaches_the_resource_without_it(api_stage: LocalStage) -> None:
    """A REST API routes ``POST /items/`` to the ``/items`` resource exactly as ``POST
    /items`` and invokes its function, whose permission CDK's ``LambdaIntegration``
    grants for ``.../POST/items`` only; the event's ``path`` keeps the slash as sent.

    AWS: Powertools' end-to-end test against a deployed REST API (a CDK ``RestApi`` with
    ``todos`` ``POST`` and ``LambdaIntegration``) expects 200 for ``POST todos/``
    (aws-powertools/powertools-lambda-python, tests/e2e/event_handler/
    test_paths_ending_with_slash.py; issue #1552: REST APIs route ``/hello`` and
    ``/hello/`` to the same integration), and its REST resolver ignores a trailing slash
    because the event's path has it (PR #1609).
    """
    plain = call(api_stage, "POST", "items", body=b"{}")
    slashed = call(api_stage, "POST", "items/", body=b"{}")

    assert (plain.status, slashed.status) == (200, 200), slashed.raw[:200]
    event = slashed.json
    assert (event["path"], event["resource"]) == ("/items/", "/items")
    assert event["requestPath"] == "/test/items/"
    # AND a method the resource lacks is the same 403 with or without the slash
    missing = [call(api_stage, "GET", path) for path in ("items", "items/")]
    assert [answer.status for answer in missing] == [403, 403]
    assert missing[0].json == missing[1].json


@pytest.mark.parametrize("path", ["/items", "items//", "items//x"])
def test_a_path_with_an_empty_segment_reaches_no_function(api_stage: LocalStage, path: str) -> None:
    """Only a trailing slash is ignored; a path with an empty segment anywhere else
    (``//items``, ``items//``) is no resource's, not even the greedy ``/{proxy+}``'s: 403
    Missing Authentication Token, as for any path no resource matches.

    AWS: how a REST API routes an empty segment is not documented (what a trailing
    slash does is known from Powertools' tests against a deployed API: the test above),
    so this refuses what AWS may refuse rather than invoke a function AWS may not: a
    function's permission names the path without the empty segment (``.../POST/items``),
    and matching while ignoring it used to reach the permission check and answer 500.
    Not verified on AWS.
    """
    answer = call(api_stage, "POST", path, body=b"{}")

    assert answer.status == 403, answer.raw[:200]
    # (the answer of a method the resource lacks, a path no resource matches)
    assert answer.json == call(api_stage, "GET", "items").json


def test_a_body_not_in_utf_8_reaches_the_function_as_text_unless_its_type_is_binary(
    api_stage: LocalStage,
) -> None:
    """Without a matching binary media type API Gateway hands a Lambda proxy integration
    the body as text, ``isBase64Encoded`` false, whatever its bytes; only a request whose
    ``Content-Type`` matches the API's ``binaryMediaTypes`` arrives base64-encoded with
    ``isBase64Encoded`` true.

    AWS: "To handle binary payloads for AWS Lambda proxy integrations ... You must also
    configure the binaryMediaTypes for your API"
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html);
    an AWS maintainer in aws/aws-lambda-dotnet#417: once that is set "requests have
    IsBase64Encoded set to true and the body is a base64 encoded string", where before
    the reporter's binary body came with IsBase64Encoded false. What the text is made of
    is not documented; the one byte-level report found (a copy of a Stack Overflow
    answer) saw the bytes that are not UTF-8 replaced by U+FFFD, as here.
    """
    raw = b'{"name": "caf\xe9 \xff"}'

    text = call(api_stage, "POST", "echo", body=raw, headers=[("Content-Type", "application/json")])
    binary = call(
        api_stage, "POST", "echo", body=raw, headers=[("Content-Type", "application/octet-stream")]
    )

    assert (text.status, binary.status) == (200, 200), text.raw[:200]
    assert (text.json["body"], text.json["isBase64Encoded"]) == (
        '{"name": "caf\ufffd \ufffd"}',
        False,
    )
    assert binary.json["isBase64Encoded"] is True
    assert base64.b64decode(binary.json["body"]) == raw


def test_a_signed_request_with_non_ascii_in_path_and_query_is_accepted(
    api_stage: LocalStage,
) -> None:
    """API Gateway verifies SigV4 over the canonical request built from the path and query
    string as sent (URI-encoded; for services other than S3 the path is encoded once
    more), so a request a client signed correctly is accepted whatever characters its
    path and query carry, and one changed after signing is refused (403).

    AWS: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
    """
    path = "caf%C3%A9/%E2%82%AC?name=J%C3%BCrgen&q=a%20b"

    answer = call(api_stage, "GET", path)

    assert answer.status == 200, answer.raw[:300]
    assert answer.json["path"] == "/café/€"
    assert answer.json["query"] == {"name": "Jürgen", "q": "a b"}

    # AND the same signature on another path is refused
    tampered = call(api_stage, "GET", path, tamper="caf%C3%A9/%E2%82%AD?name=J%C3%BCrgen&q=a%20b")
    assert tampered.status == 403
    assert tampered.json["message"].startswith("The request signature we calculated")


@pytest.mark.parametrize(
    ("offset", "accepted", "message"),
    [
        (datetime.timedelta(minutes=-4), True, None),
        (datetime.timedelta(minutes=4), True, None),
        (datetime.timedelta(minutes=-6), False, "Signature expired: "),
        (datetime.timedelta(minutes=6), False, "Signature not yet current: "),
        (datetime.timedelta(days=-1), False, "Signature expired: "),
    ],
    ids=["4-min-old", "4-min-ahead", "6-min-old", "6-min-ahead", "a-day-old"],
)
def test_a_signature_made_over_five_minutes_away_from_now_is_refused(
    api_stage: LocalStage, offset: datetime.timedelta, accepted: bool, message: str | None
) -> None:
    """SigV4 protects against replays: a request must reach AWS within five minutes of
    its X-Amz-Date, so a correctly signed request that was signed (or claims to be
    signed) further away from now is refused with 403 however valid its signature.

    AWS: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
    """
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)

    answer = call(api_stage, "GET", "hello", signed_at=now + offset)

    if accepted:
        assert answer.status == 200, answer.raw[:300]
    else:
        assert answer.status == 403, answer.raw[:300]
        assert answer.json["message"].startswith(message)
        assert answer.headers["x-amzn-errortype"] == "InvalidSignatureException"


@pytest.mark.parametrize(
    "amz_date",
    [
        "20261301T000000Z",
        "2026-12-06T18:00:00Z",
        "\u0662\u0660\u0662\u0666\u0661\u0662\u0660\u0666T180000Z",  # Arabic-Indic digits
    ],
    ids=["month-13", "extended-format", "non-ascii-digits"],
)
def test_an_x_amz_date_not_in_basic_iso_8601_is_refused(amz_date: str) -> None:
    """X-Amz-Date is ISO 8601 basic format, YYYYMMDD'T'HHMMSS'Z'; anything else (a
    month 13, the extended format, non-ASCII digits) is refused before the signature is
    checked.

    AWS: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-elements.html
    """
    with pytest.raises(GatewayError, match="ISO-8601 'basic format'") as refused:
        check_signing_time(amz_date)
    assert refused.value.response_type == "INCOMPLETE_SIGNATURE"
