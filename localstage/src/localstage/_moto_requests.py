"""Inside the moto process: count every AWS request by caller, service and action.

Every request of the stage reaches moto through this process, so counting here sees
them all: what handler code sends, what localstage's pollers send on Lambda's behalf
(with the function's role), and what localstage itself and the test target send (the
admin). A request is keyed by its access key (from the SigV4 ``Credential`` scope), the
service of that scope, the action and whether it came from handler code (botocore puts
``exec-env/AWS_Lambda_...`` in the User-Agent when ``AWS_EXECUTION_ENV`` is set, as it
is in every function environment and nowhere else). The parent reads the counts at
``GET /_localstage/requests`` and clears them with ``POST /_localstage/requests/reset``;
neither path reaches moto.

The action is ``X-Amz-Target``'s operation (JSON protocols: DynamoDB, SQS, EventBridge,
...), the ``Action`` parameter (query protocols: SNS, STS, IAM), or for REST protocols
a name derived from method and path (S3: ``GetObject``, ``PutObject``,
``ListObjectsV2``...; others ``<METHOD> /<first path segment>``).
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

COUNTS_PATH = "/_localstage/requests"
RESET_PATH = "/_localstage/requests/reset"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/")
_FUNCTION_USER_AGENT = "exec-env/AWS_Lambda"
#: localstage's own plumbing (journals, moto's admin API): not AWS requests.
_NOT_COUNTED = ("/_localstage/", "/moto-api")


class RequestCounter:
    """Counts and time (seconds, lock wait included) per (key, service, action, origin)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str, bool], list[float]] = {}

    def add(self, key: tuple[str, str, str, bool], seconds: float) -> None:
        with self._lock:
            entry = self._counts.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += seconds

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "access_key_id": access_key,
                    "service": service,
                    "action": action,
                    "from_function_code": from_code,
                    "count": int(count),
                    "seconds": round(seconds, 6),
                }
                for (access_key, service, action, from_code), (count, seconds) in sorted(
                    self._counts.items()
                )
            ]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def middleware(self, app: WsgiApp) -> WsgiApp:
        """Serve the counter's paths; count (and pass on) everything else."""

        def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path in (COUNTS_PATH, RESET_PATH):
                if path == RESET_PATH:
                    self.reset()
                body = json.dumps(self.snapshot() if path == COUNTS_PATH else []).encode()
                start_response(
                    "200 OK",
                    [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                )
                return [body]
            if path.startswith(_NOT_COUNTED):
                return app(environ, start_response)
            began = time.perf_counter()
            key = request_key(environ)
            result = app(environ, start_response)
            # The serializing app below has already produced the whole body.
            self.add(key, time.perf_counter() - began)
            return result

        return call


def request_key(environ: dict[str, Any]) -> tuple[str, str, str, bool]:
    """(access key, service, action, from function code) of a WSGI request."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    access_key, service = match.groups() if match else ("anonymous", "unknown")
    from_code = _FUNCTION_USER_AGENT in environ.get("HTTP_USER_AGENT", "")
    return access_key, service, _action(environ, service), from_code


def _action(environ: dict[str, Any], service: str) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    method = str(environ.get("REQUEST_METHOD", "GET"))
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = urllib.parse.parse_qs(_peek_body(environ).decode("utf-8", errors="replace"))
        if "Action" in form:
            return form["Action"][0]
    segments = [part for part in str(environ.get("PATH_INFO", "/")).split("/") if part]
    if service == "s3":
        return _s3_action(method, segments, query)
    return f"{method} /{segments[0]}" if segments else f"{method} /"


def _s3_action(method: str, segments: list[str], query: dict[str, list[str]]) -> str:
    if len(segments) >= 2:
        return {
            "GET": "GetObject",
            "PUT": "PutObject" if "partNumber" not in query else "UploadPart",
            "HEAD": "HeadObject",
            "DELETE": "DeleteObject",
            "POST": "CreateMultipartUpload" if "uploads" in query else "PostObject",
        }.get(method, f"{method} object")
    if not segments:
        return "ListBuckets"
    if method == "GET":
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "GET bucket"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
        method, f"{method} bucket"
    )


def _peek_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for the app."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


def install() -> RequestCounter:
    """The process's counter (the moto process wraps its app with its middleware)."""
    return RequestCounter()
