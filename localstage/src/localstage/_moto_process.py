"""The moto server process: moto's WSGI app on loopback, one request at a time.

Run by :class:`localstage.cloud.MotoCloud` as ``python -m localstage._moto_process``.
It prints ``{"port": N}`` on its first line and exits when its stdin closes (the
parent went away), so it never outlives the stage.

moto is not thread-safe (two conditional writes at once can both succeed), while
every AWS request is atomic: a lock around the whole request, response body
included, gives the same guarantee.
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialized(app: WsgiApp) -> WsgiApp:
    """Wrap a WSGI app so that requests run one at a time, body included."""
    lock = threading.Lock()

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: list[tuple[Any, ...]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.append((status, headers, exc_info))
            return lambda _data: None

        with lock:
            result = app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        status, headers, exc_info = captured[-1]
        if status.startswith("403") and body.lstrip().startswith(b"<"):
            status, headers, body = _json_access_denied(environ, status, headers, body)
        start_response(status, headers, exc_info)
        return [body]

    return call


class QuietRequestHandler(MotoRequestHandler):
    """No access log line per request (the stage prints what matters)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


_XML_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.S)


def _json_access_denied(
    environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[str, list[tuple[str, str]], bytes]:
    """moto answers IAM denials in XML; JSON-protocol clients expect AWS's JSON error."""
    content_type = environ.get("CONTENT_TYPE", "")
    if "json" not in content_type or not environ.get("HTTP_X_AMZ_TARGET"):
        return status, headers, body
    match = _XML_MESSAGE.search(body)
    message = html.unescape(match.group(1).decode()) if match else "Access denied"
    payload = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
    new_headers = [
        (name, value)
        for name, value in headers
        if name.lower() not in {"content-type", "content-length"}
    ]
    new_headers += [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", str(len(payload))),
        # SQS's JSON protocol reports the query-protocol code through this header.
        ("x-amzn-query-error", "AccessDenied;Sender"),
    ]
    return status, new_headers, payload


def _exit_when_parent_goes() -> None:
    sys.stdin.read()
    os._exit(0)


#: One cheap call per service the stages use: moto builds a service's backend and
#: URL map on its first request (seconds in all), which happens here while the parent
#: is still synthesizing.
WARM_UP_CALLS = (
    ("iam", "list_users"),
    ("sts", "get_caller_identity"),
    ("dynamodb", "list_tables"),
    ("dynamodbstreams", "list_streams"),
    ("sqs", "list_queues"),
    ("sns", "list_topics"),
    ("s3", "list_buckets"),
    ("logs", "describe_log_groups"),
    ("events", "list_event_buses"),
    ("scheduler", "list_schedule_groups"),
)


def _warm_up(endpoint_url: str) -> None:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="warmup", aws_secret_access_key="warmup", region_name="us-east-1"
    )
    for service, operation in WARM_UP_CALLS:
        getattr(session.client(service, endpoint_url=endpoint_url), operation)()  # type: ignore[call-overload]


def main() -> None:
    # Every patch of moto's internals, after a check of moto's version (moto_patches.py).
    from localstage import moto_patches

    installed = moto_patches.install()
    app = installed.wrap(serialized(DomainDispatcherApplication(create_backend_app)))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    _warm_up(f"http://127.0.0.1:{port}")
    print(json.dumps({"port": port}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
