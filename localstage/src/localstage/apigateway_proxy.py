"""What the API Gateway front door sends to and accepts from a Lambda proxy integration.

Kept apart from ``apigateway.py`` (routing, SigV4, validation, gateway responses): the
raw request as AWS sees it (repeated headers, the path and query as sent, the body
decompressed from its content coding), the limits
between API Gateway and Lambda (10 MB request, Lambda's 6 MB synchronous payloads, the
integration timeout) and the strict reading of the function's proxy response.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from typing import Any

from werkzeug.wrappers import Response

from localstage.invoke import SYNC_PAYLOAD_LIMIT, limit_sync_response
from localstage.runtime import FunctionRuntime, FunctionThrottledError, InvocationResult

#: A REST API's payload quota (10 MB, not increasable).
MAX_REQUEST_BYTES = 10 * 1024 * 1024
#: ``Integration.TimeoutInMillis`` when the template does not set it (29 s).
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000
#: The WSGI environ key where the request handler keeps the headers as received.
RAW_HEADERS_KEY = "localstage.raw_headers"
#: Headers API Gateway does not pass on to the proxy event.
_DROPPED_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
INTERNAL_ERROR = "Internal server error"
#: The content codings API Gateway decompresses a REST API's request body from, by
#: default ("Content codings supported by API Gateway"), with zlib's window bits for each.
#: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-enable-compression.html
_DECOMPRESSED_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
UNSUPPORTED_MEDIA_TYPE = "Unsupported Media Type"


class GatewayError(Exception):
    """A request API Gateway answers itself (a gateway response)."""

    def __init__(self, response_type: str, message: str, status: int | None = None, **extra: str):
        super().__init__(message)
        self.response_type = response_type
        self.message = message
        self.status = status
        self.extra = extra


def event_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers in the order and case received, repeats kept.

    A WSGI environ joins a repeated header into one ``a,b`` value, which is not what
    API Gateway hands the function (``multiValueHeaders`` keeps each value), so the
    request handler stores the raw list under :data:`RAW_HEADERS_KEY`. A value is
    handed over without the whitespace around it, which HTTP does not count as part of
    it (RFC 9110, section 5.5): ``Idempotency-Key:  k `` is the key ``k``.
    """
    raw = environ.get(RAW_HEADERS_KEY)
    if raw is None:  # not served by our handler (a test's WSGI call): the merged view
        raw = [
            (key[5:].replace("_", "-").title(), value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]
    headers = [
        (name, value.strip(" \t")) for name, value in raw if name.lower() not in _DROPPED_HEADERS
    ]
    headers.append(("X-Forwarded-For", environ.get("REMOTE_ADDR") or "127.0.0.1"))
    headers.append(("X-Forwarded-Port", str(environ.get("SERVER_PORT", ""))))
    headers.append(("X-Forwarded-Proto", str(environ.get("wsgi.url_scheme", "http"))))
    return headers


def raw_url(environ: dict[str, Any]) -> str:
    """The URL exactly as the client sent it (path and query still percent-encoded).

    SigV4 signs the path and query the client sent; a URL rebuilt from the decoded
    path re-encodes non-ASCII and reserved characters its own way and the signature
    no longer matches. WSGI strings carry the raw bytes as latin-1.
    """
    uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
    uri = uri.encode("latin-1").decode("utf-8", errors="surrogateescape")
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{uri}"


def decompressed_body(body: bytes, content_encoding: list[str]) -> bytes:
    """The body as API Gateway hands it on: decompressed from its ``Content-Encoding``.

    AWS: "By default, API Gateway supports decompression of the method request payload"
    (gzip, deflate, identity); "If the specified coding isn't supported or the supplied
    payload isn't compressed with specified coding, API Gateway returns the 415
    Unsupported Media Type error response"
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-make-request-with-compressed-payload.html).
    The function gets the decompressed body with the ``Content-Encoding`` header still on
    (dougmoscrop/serverless-http#194, on AWS), which it must not decode again. Not
    documented, so refused here as the stricter reading: more than one coding applied
    (``gzip, deflate``), and a body that decompresses beyond the 10 MB payload quota (413).
    """
    codings = [
        coding
        for line in content_encoding
        for coding in (part.strip(" \t").lower() for part in line.split(","))
        if coding and coding != "identity"
    ]
    if not codings or not body:
        return body
    if len(codings) > 1 or codings[0] not in _DECOMPRESSED_CODINGS:
        raise GatewayError("UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE)
    is_gzip = codings[0] == "gzip"
    out, rest = bytearray(), body
    try:
        while rest:  # a gzip body may be several members, one after the other
            member = zlib.decompressobj(_DECOMPRESSED_CODINGS[codings[0]])
            out += member.decompress(rest, MAX_REQUEST_BYTES + 1 - len(out))
            if len(out) > MAX_REQUEST_BYTES or member.unconsumed_tail:
                raise GatewayError("REQUEST_TOO_LARGE", "Request Too Long")
            if not member.eof or (member.unused_data and not is_gzip):
                raise GatewayError("UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE)
            rest = member.unused_data
    except zlib.error:
        raise GatewayError("UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE) from None
    return bytes(out)


def parse_json_body(body: bytes) -> Any:
    """The request body as JSON for model validation; a body that is not is a 400.

    The bytes must be UTF-8 (a leading byte order mark aside): ``json.loads`` of bytes
    would also take UTF-16 and UTF-32 and let surrogates encoded as UTF-8 bytes through
    (``b"\\xed\\xa0\\x80"``), which are no UTF-8, and the function would then see
    U+FFFD where the validator saw a string. A decoding error is a ``ValueError``. A
    deeply nested document makes Python's parser raise ``RecursionError`` (not a
    ``ValueError``): it is as unusable to the validator as any other bad JSON.
    """
    try:
        return json.loads((body or b"null").decode("utf-8-sig"))
    except (ValueError, RecursionError):
        raise GatewayError(
            "BAD_REQUEST_BODY", "Invalid request body", validation="Invalid JSON"
        ) from None


def check_event_size(event: dict[str, Any]) -> None:
    """Lambda refuses a synchronous payload over 6 MB; API Gateway then answers 500."""
    if len(json.dumps(event).encode()) > SYNC_PAYLOAD_LIMIT:
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=500)


def invoke_within(
    function: FunctionRuntime, event: dict[str, Any], timeout_ms: int
) -> InvocationResult:
    """Invoke synchronously, giving up after the integration timeout (504).

    As on AWS, the invocation itself carries on (to its own Lambda timeout); only the
    client stops waiting.
    """
    results: list[InvocationResult | None] = []  # None: Lambda throttled the call
    done = threading.Event()

    def run() -> None:
        try:
            # Throttled at once, as Lambda answers a synchronous caller with no
            # concurrency left: API Gateway then answers 500 (not a wait, not 504).
            results.append(limit_sync_response(function.invoke(event, throttle=True)))
        except FunctionThrottledError:
            results.append(None)
        finally:
            done.set()

    threading.Thread(target=run, name="apigw-integration", daemon=True).start()
    if not done.wait(timeout_ms / 1000) or not results:
        raise GatewayError("INTEGRATION_TIMEOUT", "Endpoint request timed out", status=504)
    result = results[0]
    if result is None:
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=500)
    return result


def proxy_response(result: InvocationResult) -> Response:
    """The HTTP response of a Lambda proxy integration, or a 502 as on AWS.

    AWS reads ``{"statusCode", "headers", "multiValueHeaders", "body",
    "isBase64Encoded"}``, every field optional (no ``statusCode`` is a 200, a numeric
    string is a status). A function error, any other field, or a field of the wrong
    type is a "Malformed Lambda proxy response": 502.
    """
    payload = result.payload
    status = _status(payload) if result.error is None and _well_formed(payload) else None
    if status is None:
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=502)
    body = payload.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if payload.get("isBase64Encoded") else None
    except ValueError:
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=502) from None
    response = Response(raw if raw is not None else body.encode(), status=status)
    response.headers.remove("Content-Type")
    for name, values in (payload.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, _header_value(value))
    for name, value in (payload.get("headers") or {}).items():
        response.headers[name] = _header_value(value)
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = "application/json"
    return response


_PROXY_FIELDS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


def _status(payload: dict[str, Any]) -> int | None:
    status = payload.get("statusCode")
    if status is None:
        return 200
    # bool is an int in Python but not a status code in JSON.
    if isinstance(status, bool) or not isinstance(status, int | str):
        return None
    try:
        code = int(status)
    except ValueError:
        return None
    return code if 100 <= code <= 599 else None


def _header_value(value: str | bool) -> str:
    # API Gateway writes a JSON boolean header value as true/false.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _is_header_value(value: Any) -> bool:
    return isinstance(value, str | bool)


def _well_formed(payload: Any) -> bool:
    if not isinstance(payload, dict) or not set(payload) <= _PROXY_FIELDS:
        return False
    if payload.get("body") is not None and not isinstance(payload["body"], str):
        return False
    if payload.get("isBase64Encoded") is not None and not isinstance(
        payload["isBase64Encoded"], bool
    ):
        return False
    headers = payload.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(_is_header_value(v) for v in headers.values())
    ):
        return False
    multi = payload.get("multiValueHeaders")
    return multi is None or (
        isinstance(multi, dict)
        and all(
            isinstance(values, list) and all(_is_header_value(v) for v in values)
            for values in multi.values()
        )
    )
