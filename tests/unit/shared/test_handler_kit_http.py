"""handler_kit: reading REST requests and answering the common client errors."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.retries import standard
from handler_kit import aws_failures, error_answers, headers, http_requests, responses
from handler_kit.errors import (
    AmbiguousIdempotencyKeyError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    PayloadTooLargeError,
)
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from tests.support.events import CALLER_ARN, HttpResponse, api_event
from tests.support.fakes import FakeLambdaContext

# --------------------------------------------------------------------------- bodies


def test_plain_and_base64_bodies_decode_to_the_same_bytes() -> None:
    # GIVEN a body sent as text and as base64 WHEN decoded THEN the same raw bytes
    text = '{"name":"café"}'
    encoded = base64.b64encode(text.encode()).decode()
    assert http_requests.decode_body(text, is_base64_encoded=False, max_bytes=64) == text.encode()
    assert http_requests.decode_body(encoded, is_base64_encoded=True, max_bytes=64) == text.encode()
    assert http_requests.decode_body(None, is_base64_encoded=False, max_bytes=64) == b""


def test_event_body_decodes_the_body_of_a_proxy_event() -> None:
    # GIVEN the same body as text and base64 in REST proxy events WHEN read THEN same bytes
    text = '{"name":"café"}'
    encoded = base64.b64encode(text.encode()).decode()
    plain_event = APIGatewayProxyEvent(api_event("POST", "/jobs", resource="/jobs", body=text))
    base64_event = APIGatewayProxyEvent(
        api_event("POST", "/jobs", resource="/jobs", body=encoded, is_base64_encoded=True)
    )
    assert http_requests.event_body(plain_event, max_bytes=64) == text.encode()
    assert http_requests.event_body(base64_event, max_bytes=64) == text.encode()
    # AND the size limit holds
    with pytest.raises(PayloadTooLargeError):
        http_requests.event_body(plain_event, max_bytes=4)


@pytest.mark.parametrize("is_base64_encoded", [False, True])
def test_bodies_over_the_limit_are_payload_too_large(is_base64_encoded: bool) -> None:
    # GIVEN a body one byte over the limit, plain or base64
    raw = b"x" * 17
    body = base64.b64encode(raw).decode() if is_base64_encoded else raw.decode()
    # WHEN decoded with a 16-byte limit THEN PayloadTooLargeError; at the limit it passes
    with pytest.raises(PayloadTooLargeError, match="exceeds 16 bytes"):
        http_requests.decode_body(body, is_base64_encoded=is_base64_encoded, max_bytes=16)
    assert http_requests.decode_body("x" * 16, is_base64_encoded=False, max_bytes=16) == b"x" * 16


def test_a_post_body_is_read_with_the_limit_its_route_declares() -> None:
    # GIVEN a route's body: a model and a limit of 8 bytes
    class Thing(BaseModel):
        name: str

    body = http_requests.PostBody(Thing, max_bytes=8)

    # WHEN declared and read THEN the contract gets that model and limit, and the
    # handler reads a body up to the limit and refuses a longer one
    assert body.declared() == {"body": Thing, "max_body_bytes": 8}
    assert body.read(APIGatewayProxyEvent({"body": "12345678"})) == b"12345678"
    with pytest.raises(PayloadTooLargeError):
        body.read(APIGatewayProxyEvent({"body": "123456789"}))


def test_huge_base64_bodies_are_refused_before_decoding() -> None:
    # GIVEN base64 text too long to decode within the limit, and not even valid base64
    # WHEN decoded THEN payload too large (not "invalid base64": it was never decoded)
    with pytest.raises(PayloadTooLargeError):
        http_requests.decode_body("!" * 100, is_base64_encoded=True, max_bytes=16)


def test_invalid_base64_and_stray_surrogates_are_client_errors() -> None:
    # GIVEN an undecodable base64 body WHEN decoded THEN an InvalidRequestError
    with pytest.raises(InvalidRequestError, match="not valid base64"):
        http_requests.decode_body("!!!not-base64!!!", is_base64_encoded=True, max_bytes=64)
    # GIVEN a lone surrogate in a text body WHEN decoded THEN bytes (invalid JSON later)
    assert http_requests.decode_body("\ud800", is_base64_encoded=False, max_bytes=64)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    a: int
    b: int
    c: int
    d: int


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{", "body is not valid JSON"),
        (b"[1]", "body must be a JSON object"),
        (b'{"a": "1", "b": 2, "c": 3, "d": 4}', "a: Input should be a valid integer"),
        (b"{}", "and 1 more error(s)"),
    ],
)
def test_validation_errors_name_the_fields_not_the_values(raw: bytes, expected: str) -> None:
    # GIVEN a body that does not validate WHEN described THEN one line naming the problem
    with pytest.raises(ValidationError) as raised:
        _Model.model_validate_json(raw)
    assert expected in http_requests.describe_validation_error(raised.value)


def test_an_unknown_member_with_an_empty_name_is_named_not_taken_for_the_body() -> None:
    # GIVEN an object whose only fault is a member named "" (not a field of the model)
    with pytest.raises(ValidationError) as raised:
        _Model.model_validate_json(b'{"a": 1, "b": 2, "c": 3, "d": 4, "": 5}')

    # WHEN described
    message = http_requests.describe_validation_error(raised.value)

    # THEN the member is named (as the empty string), not the body said to be no object
    assert "body must be a JSON object" not in message
    assert message == '"": Extra inputs are not permitted'


class _OneOf(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    a: int | None = None
    b: int | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _OneOf:
        if (self.a is None) == (self.b is None):
            raise ValueError("give exactly one of 'a' or 'b'")
        return self


def test_a_rule_of_the_whole_object_is_said_as_is_not_as_a_wrong_document() -> None:
    # GIVEN an object that breaks a rule of the model as a whole (not one field's)
    with pytest.raises(ValidationError) as raised:
        _OneOf.model_validate_json(b'{"a": 1, "b": 2}')

    # WHEN described
    message = http_requests.describe_validation_error(raised.value)

    # THEN the rule is the message, not "body must be a JSON object" (it is one)
    assert message == "give exactly one of 'a' or 'b'"


def test_a_validation_error_repeats_a_long_field_name_only_in_part() -> None:
    # GIVEN unknown fields whose names are 10,000 characters long
    names = [letter * 10_000 for letter in "xyz"]
    body = "{" + ", ".join(f'"{name}": 1' for name in names) + ', "a": 1, "b": 1, "c": 1, "d": 1}'
    with pytest.raises(ValidationError) as raised:
        _Model.model_validate_json(body)
    # WHEN described
    message = http_requests.describe_validation_error(raised.value)
    # THEN each name is cut to the limit, ending in an ellipsis, and the line stays short
    limit = http_requests.MAX_ECHOED_LOCATION
    assert f"{'x' * (limit - 1)}\u2026: Extra inputs are not permitted" in message
    assert "x" * limit not in message
    assert len(message) < 4 * (limit + 40)


# --------------------------------------------------------------------------- headers


def _event(**kwargs: Any) -> APIGatewayProxyEvent:
    return APIGatewayProxyEvent(api_event("POST", "/things", resource="/things", **kwargs))


def test_idempotency_keys_are_read_case_insensitively_and_validated() -> None:
    # GIVEN a key header in another case WHEN read THEN its value; none gives None
    assert http_requests.idempotency_key(_event(headers={"idempotency-key": "k-1"})) == "k-1"
    assert http_requests.idempotency_key(_event()) is None
    # GIVEN an over-long or non-ASCII key, or one with a space first or last (HTTP strips
    # those, so only a direct invocation can send them) WHEN read THEN an InvalidRequestError
    # (a line end last too: the pattern ends in "$", which a line end before the end of
    # the text also satisfies, so only a full match refuses it)
    for bad in ("x" * 129, "café", "", "a,b", " k-1", "k-1 ", " ", "\tk", "k-1\n", "k\r\n"):
        with pytest.raises(InvalidRequestError, match="printable ASCII"):
            http_requests.validate_idempotency_key(bad)
    # GIVEN keys of one and 128 characters, and one with a space inside WHEN read THEN kept
    for good in ("k", "x" * 128, "order 42", "~!"):
        assert http_requests.validate_idempotency_key(good) == good


def test_an_idempotency_key_sent_twice_is_ambiguous_even_with_one_value() -> None:
    # GIVEN a request whose multi-value header carries two keys, then the same key twice
    raw = api_event("POST", "/things", resource="/things", headers={"Idempotency-Key": "a"})
    for values in (["a", "b"], ["a", "a"]):
        raw["multiValueHeaders"]["Idempotency-Key"] = values
        # WHEN read THEN refused as ambiguous, a 400 of its own code
        with pytest.raises(AmbiguousIdempotencyKeyError, match="sent once"):
            http_requests.idempotency_key(APIGatewayProxyEvent(raw))


def test_header_values_fall_back_to_the_single_value_map() -> None:
    # GIVEN an event with only the single-value header map WHEN read THEN found
    raw = api_event("GET", "/things", resource="/things", headers={"X-Probe": "1"})
    raw["multiValueHeaders"] = None
    assert headers.header_values(APIGatewayProxyEvent(raw), "x-probe") == ["1"]


def test_the_caller_is_the_signing_identity() -> None:
    # GIVEN a signed and an unsigned request WHEN asked THEN the user ARN, else anonymous
    assert http_requests.caller(_event()) == CALLER_ARN
    assert http_requests.caller(_event(user_arn=None)) == "anonymous"
    assert http_requests.request_context(_event())["path"] == "/api/things"


@pytest.mark.parametrize(
    ("signer", "expected"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/Submitter/botocore-session-1700000000",
            "arn:aws:sts::123456789012:assumed-role/Submitter",
        ),
        (
            "arn:aws-cn:sts::123456789012:assumed-role/Submitter/alice@example.com",
            "arn:aws-cn:sts::123456789012:assumed-role/Submitter",
        ),
        ("arn:aws:iam::123456789012:user/ops/alice", "arn:aws:iam::123456789012:user/ops/alice"),
        ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
    ],
    ids=["botocore-session", "sso-user-other-partition", "iam-user-with-path", "root"],
)
def test_a_role_session_signs_as_its_role(signer: str, expected: str) -> None:
    # GIVEN a request signed by a role session (a name the client picks, and botocore's
    # assume-role provider changes per process) or by another principal
    # WHEN its caller is asked THEN a session is its role, any other signer itself
    assert http_requests.caller(_event(user_arn=signer)) == expected


# --------------------------------------------------------------------------- responses


class _InvalidTimeError(InvalidRequestError):
    """A subclass with its own answer."""


def _api(headers: dict[str, str] | None = None) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()
    responses.register_error_handlers(
        app, logger=Logger(service="handler-kit-test"), headers=headers
    )
    errors: dict[str, Exception] = {
        "invalid": InvalidRequestError("bad field"),
        "large": PayloadTooLargeError("too big"),
        "reused": IdempotencyKeyReusedError("key reused"),
        "ambiguous": AmbiguousIdempotencyKeyError("Idempotency-Key must be sent once"),
        "time": _InvalidTimeError("in the past"),
    }

    @app.get("/fail/<kind>")
    def fail(kind: str) -> Response[str]:
        raise errors[kind]

    @app.get("/ok")
    def ok() -> Response[str]:
        return responses.json_response(200, {"ok": True}, {"Location": "/ok"})

    @app.exception_handler(_InvalidTimeError)
    def _invalid_time(exc: _InvalidTimeError) -> Response[str]:
        return responses.error_response(400, "invalid_time", str(exc))

    return app


def _call(app: APIGatewayRestResolver, path: str, method: str = "GET") -> HttpResponse:
    event = api_event(method, path, resource=path)
    return HttpResponse.from_proxy(app.resolve(event, FakeLambdaContext()))


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("invalid", 400, "invalid_request"),
        ("large", 400, "payload_too_large"),
        ("reused", 422, "idempotency_key_reused"),
        ("ambiguous", 400, "ambiguous_idempotency_key"),
        ("time", 400, "invalid_time"),
    ],
)
def test_common_errors_are_json_4xx(kind: str, status: int, code: str) -> None:
    # GIVEN an API with the common handlers WHEN a route raises a client error
    response = _call(_api(), f"/fail/{kind}")
    # THEN the JSON error shape with the right status and code (subclass handler wins)
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    assert response.body["error"] == code and response.body["message"]


def test_unknown_routes_are_json_404_with_the_given_headers() -> None:
    # GIVEN an API whose errors must not be cached WHEN an unknown route is called
    response = _call(_api({"Cache-Control": "no-store"}), "/nowhere", "DELETE")
    # THEN 404 not_found naming the route, with the header
    assert response.status == 404
    assert response.body == {"error": "not_found", "message": "no route for DELETE /nowhere"}
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "parameters", "status", "code"),
    [
        ("/fail/invalid", None, 400, "invalid_request"),
        ("/fail/large", None, 400, "payload_too_large"),
        ("/fail/reused", None, 422, "idempotency_key_reused"),
        ("/fail/ambiguous", None, 400, "ambiguous_idempotency_key"),
        ('/fail/a"b', {"kind": 'a"b'}, 400, "invalid_request"),
        ("/ok\n", None, 400, "invalid_request"),
    ],
    ids=["invalid", "large", "reused", "ambiguous", "malformed-parameter", "control-character"],
)
def test_rejected_requests_carry_the_given_headers(
    path: str, parameters: dict[str, str] | None, status: int, code: str
) -> None:
    # GIVEN an API whose error answers must not be cached (the schedules API's no-store)
    app = _api({"Cache-Control": "no-store"})
    resource = "/fail/{kind}" if parameters else path
    event = api_event("GET", path, resource=resource, path_parameters=parameters)

    # WHEN a request is rejected: a client error a route raises, a malformed path
    # parameter, a control character in the path
    response = HttpResponse.from_proxy(app.resolve(event, FakeLambdaContext()))

    # THEN its JSON error carries the API's headers, as a 404 does
    assert (response.status, response.body["error"]) == (status, code)
    assert response.headers.get("cache-control") == "no-store"


_FAILED = error_answers.DEPENDENCY_FAILED_METRIC


def _refused(code: str, status: int) -> ClientError:
    error = {"Error": {"Code": code, "Message": "AWS's own text"}}
    return ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetItem")


def _cancelled(*reasons: str) -> ClientError:
    """A TransactWriteItems cancelled for ``reasons`` (one per item, "None" for no fault)."""
    error = _refused("TransactionCanceledException", 400)
    error.response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return error


class _QueueFullError(RuntimeError):
    """A service's own failure, answered with its own 503."""


class _ConflictError(ClientError):
    """A ClientError subclass a service answers on its own (409)."""


@pytest.mark.parametrize(
    ("raised", "status", "code", "metric"),
    [
        (ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem"), 503, None, _FAILED),
        (EndpointConnectionError(endpoint_url="https://x.invalid"), 503, None, _FAILED),
        (_QueueFullError("queue full"), 503, "queue full", "QueueFull"),
        (_ConflictError({"Error": {"Code": "Conflict"}}, "PutItem"), 409, None, None),
        (_refused("AccessDeniedException", 400), 500, None, _FAILED),
        (_refused("ValidationException", 400), 500, None, _FAILED),
        (_refused("InternalServerError", 500), 503, None, _FAILED),
        (_refused("TooManyRequestsException", 429), 503, None, _FAILED),
        (_refused("RequestLimitExceeded", 400), 503, None, _FAILED),
        (_refused("TransactionConflictException", 400), 503, None, _FAILED),
        (_refused("BadGateway", 502), 503, None, _FAILED),
        (ConnectTimeoutError(endpoint_url="https://x.invalid"), 503, None, _FAILED),
        (_cancelled("None", "TransactionConflict"), 503, None, _FAILED),
        (_cancelled("None", "ConditionalCheckFailed"), 500, None, _FAILED),
        (ReadTimeoutError(endpoint_url="https://x.invalid"), 503, None, _FAILED),
        (ParamValidationError(report="Missing required parameter"), 500, None, _FAILED),
    ],
    ids=[
        "client-error",
        "botocore-error",
        "own-503",
        "own-client-error-subclass",
        "access-denied",
        "validation",
        "internal-error",
        "http-429",
        "request-limit",
        "conflict-with-a-transaction",
        "http-502",
        "connect-timeout",
        "transaction-conflict",
        "transaction-condition",
        "read-timeout",
        "not-sent",
    ],
)
def test_a_failed_aws_call_is_503_a_refused_one_500_and_a_more_specific_answer_wins(
    raised: Exception, status: int, code: str | None, metric: str | None
) -> None:
    # GIVEN an API answering AWS failures and its own errors, whichever comes first
    app = APIGatewayRestResolver()
    metrics = Metrics(namespace="HandlerKitTest", service="handler-kit-test")
    error_answers.answer_errors(
        app,
        {
            _QueueFullError: error_answers.unavailable(7, "QueueFull"),
            **error_answers.dependency_failures(7),
            _ConflictError: error_answers.ErrorAnswer(409, "conflict"),
        },
        logger=Logger(service="handler-kit-test"),
        metrics=metrics,
        headers={"Cache-Control": "no-store"},
    )

    @app.get("/fail")
    def fail() -> Response[str]:
        raise raised

    # WHEN a route raises
    response = _call(app, "/fail")

    # THEN a ClientError or BotoCoreError a retry may get past is 503 service_unavailable
    # with Retry-After, one AWS refused (or botocore never sent) is 500 server_error
    # without it, each with a message that tells nothing of AWS, counted; a closer class
    # keeps its own answer
    assert response.status == status and response.headers["cache-control"] == "no-store"
    if status == 500:
        assert response.body == {
            "error": "server_error",
            "message": "the request could not be completed",
        }
        assert "retry-after" not in response.headers
    if status == 503:
        assert response.body["error"] == "service_unavailable"
        assert response.headers["retry-after"] == "7"
        assert response.body["message"] == (
            code or "a service the API depends on is unavailable; try again later"
        )
    counted = set(metrics.metric_set)
    metrics.clear_metrics()
    assert counted == ({metric} if metric else set())


def test_the_transient_codes_hold_every_code_botocore_retries_without_a_model() -> None:
    # GIVEN the codes, statuses and exceptions botocore's standard mode retries (private
    # lists: handler_kit.aws_failures writes them out, since Lambda's runtime updates
    # its botocore)
    throttling_statuses = getattr(standard, "ThrottlingStatusCodeChecker", None)
    statuses = set(standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES)
    if throttling_statuses is not None:
        statuses |= set(throttling_statuses._THROTTLING_STATUS_CODES)

    # WHEN they are compared with the module's THEN it holds each of them
    assert set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES) <= (
        aws_failures.THROTTLING_CODES
    )
    assert set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES) <= (
        aws_failures.TRANSIENT_CODES
    )
    assert statuses <= aws_failures.TRANSIENT_STATUSES
    for exception_class in standard.TransientRetryableChecker._TRANSIENT_EXCEPTION_CLS:
        assert aws_failures.is_transient(exception_class(error="connection reset"))


@pytest.mark.parametrize("value", ["\U0001f600", 'a"b', "a\\b", "a`b", "a#b", "a?b"])
def test_a_path_parameter_no_route_takes_is_400_not_404(value: str) -> None:
    # GIVEN the path of an existing route (API Gateway matched /fail/{kind}) whose
    # parameter holds a character Powertools' route patterns do not take
    event = api_event(
        "GET", f"/fail/{value}", resource="/fail/{kind}", path_parameters={"kind": value}
    )
    # WHEN it is called
    response = HttpResponse.from_proxy(_api().resolve(event, FakeLambdaContext()))
    # THEN 400 invalid_request naming the parameter, without echoing the value
    assert response.status == 400
    assert response.body == {
        "error": "invalid_request",
        "message": "malformed path parameter: kind",
    }


@pytest.mark.parametrize("path", ["/ok\n", "/ok\r\n", "/ok\x00", "/fail/invalid\x7f"])
def test_paths_with_control_characters_are_400(path: str) -> None:
    # GIVEN a route's path with a final control character (Powertools' "$" matches
    # before a final newline, so "/ok\n" would be served as "/ok")
    # WHEN it is called
    response = _call(_api(), path)
    # THEN 400 invalid_request: neither the route's answer nor a 404
    assert response.status == 400
    assert response.body == {
        "error": "invalid_request",
        "message": "the path must not contain control characters",
    }


def test_json_responses_are_compact_with_their_headers() -> None:
    # GIVEN a route answering JSON WHEN called THEN the body and headers as given
    response = _call(_api(), "/ok")
    assert response.status == 200 and response.body == {"ok": True}
    assert response.headers["location"] == "/ok"
    assert responses.json_response(201, {"a": [1, 2]}).body == '{"a":[1,2]}'


@pytest.mark.parametrize("with_metrics", [False, True])
def test_rest_api_handler_resolves_with_the_request_id_as_correlation_id(
    with_metrics: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an API's entry point, with or without metrics, whose route counts a metric
    logger = Logger(service="handler-kit-test")
    metrics = Metrics(namespace="HandlerKitTest", service="handler-kit-test")
    app = APIGatewayRestResolver()

    @app.get("/ok")
    def ok() -> Response[str]:
        metrics.add_metric(name="OkServed", unit=MetricUnit.Count, value=1)
        return responses.json_response(200, {"ok": True})

    handler = responses.rest_api_handler(
        app, logger=logger, metrics=metrics if with_metrics else None
    )
    event = api_event("GET", "/ok", resource="/ok")
    # WHEN invoked
    response = HttpResponse.from_proxy(handler(event, FakeLambdaContext()))
    # THEN the app answered and the logs carry the request id as correlation id
    assert response.status == 200 and response.body == {"ok": True}
    assert logger.get_correlation_id() == event["requestContext"]["requestId"]
    # AND with metrics, the invocation's metrics were flushed (as EMF) at its end
    assert ('"OkServed"' in capsys.readouterr().out) is with_metrics
    metrics.clear_metrics()


def test_keyed_ids_are_stable_per_caller_and_key_and_random_without_a_key() -> None:
    # GIVEN a namespace WHEN ids are derived
    namespace = uuid.UUID("6f0c4c1e-3a7d-5b8e-9f51-2d7c0b4a9e63")
    first = http_requests.resource_id_for(namespace, "alice", "k-1")

    # THEN the same caller and key give the same id, anything else another one
    assert http_requests.resource_id_for(namespace, "alice", "k-1") == first
    assert http_requests.resource_id_for(namespace, "bob", "k-1") != first
    assert http_requests.resource_id_for(namespace, "alice", "k-2") != first
    assert http_requests.resource_id_for(namespace, "alice", None) != http_requests.resource_id_for(
        namespace, "alice", None
    )


def test_request_fingerprints_compare_validated_requests_not_their_spelling() -> None:
    # GIVEN a request model with a default
    class Job(BaseModel):
        model_config = ConfigDict(extra="forbid")
        count: int
        seed: int = 0

    # WHEN the same request is spelled differently, or another is made
    same = Job.model_validate_json('{"count": 2}'), Job.model_validate_json('{"seed":0,"count":2}')
    other = Job(count=3)

    # THEN only the meaning counts
    assert http_requests.request_fingerprint(same[0]) == http_requests.request_fingerprint(same[1])
    assert http_requests.request_fingerprint(other) != http_requests.request_fingerprint(same[0])


# --------------------------------------------------------------------------- query strings


def _listing_api() -> Any:
    from handler_kit import contract

    app = APIGatewayRestResolver()
    api = contract.ContractRoutes(app)
    responses.register_error_handlers(app, logger=Logger(service="test"))

    @api.get("/items", query={"limit": {"type": "integer"}}, responses={200: contract.ok("x")})
    def list_items() -> Response[str]:
        return responses.json_response(
            200, {"limit": app.current_event.get_query_string_value("limit")}
        )

    @api.post("/items/<item_id>", responses={200: contract.ok("x")})
    def change_item(item_id: str) -> Response[str]:
        return responses.json_response(200, {"item_id": item_id})

    return responses.rest_api_handler(app, logger=Logger(service="test"))


def test_a_query_parameter_the_route_does_not_declare_is_400() -> None:
    # GIVEN routes with and without declared query parameters
    handler = _listing_api()

    def call(method: str, path: str, resource: str, **kwargs: Any) -> HttpResponse:
        event = api_event(method, path, resource=resource, **kwargs)
        return HttpResponse.from_proxy(handler(event, FakeLambdaContext()))

    # WHEN a declared parameter is sent THEN it is read
    listed = call("GET", "/items", "/items", query={"limit": "5"})
    assert (listed.status, listed.body) == (200, {"limit": "5"})
    # WHEN a parameter the route does not read is sent (a body field in the query, a
    # typo) THEN 400 naming it, and the route's code does not run
    for method, path, resource, query, extra in (
        ("GET", "/items", "/items", {"limit": "5", "limt": "1"}, {}),
        (
            "POST",
            "/items/7",
            "/items/{item_id}",
            {"amount": "999"},
            {"path_parameters": {"item_id": "7"}},
        ),
    ):
        refused = call(method, path, resource, query=query, **extra)
        assert refused.status == 400
        assert refused.body["error"] == "invalid_request"
        assert "unknown query parameter" in refused.body["message"]
