"""The moto server process: moto's WSGI app on loopback, one request at a time.

Run by :class:`localstage.cloud.MotoCloud` as ``python -m localstage._moto_process``.
It prints ``{"port": N}`` on its first line and exits when its stdin closes (the
parent went away), so it never outlives the stage.

On Linux the stage's process keeps one *zygote* (``python -m localstage._moto_process
--zygote <socket-fd>``): a process that has imported moto and installed the patches,
then forks a server per stage on request, with the stage's stdin, stdout, stderr and
environment (sent as file descriptors and JSON on a Unix ``SOCK_SEQPACKET`` socket,
answered with the child's pidfd). Each stage still gets a fresh process and fresh moto
state; what the fork saves is importing moto (seconds of CPU per stage).

moto is not thread-safe (two conditional writes at once can both succeed), while
every AWS request is atomic: a lock around the whole request, response body
included, gives the same guarantee.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
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

from localstage._forkserver import fork_per_request, take_request
from localstage._keep_alive import KeepAliveRequestHandler, whole_body

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
            body = whole_body(app(environ, capture))
        status, headers, exc_info = captured[-1]
        if status.startswith("403") and body.lstrip().startswith(b"<"):
            status, headers, body = _json_access_denied(environ, status, headers, body)
        start_response(status, headers, exc_info)
        return [body]

    return call


class QuietRequestHandler(KeepAliveRequestHandler, MotoRequestHandler):
    """moto's handler (headers with underscores kept), connections kept open between
    requests, no access log line per request (the stage prints what matters)."""

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


#: Read when their backend is created (``$MOTO_IAM_LOAD_MANAGED_POLICIES``, which the
#: stages set or not): warmed up by each server, never by the zygote.
SERVER_ONLY_WARM_UPS = frozenset({"iam", "sts"})


_warm_up_sessions: list[Any] = []


def _warm_up_session() -> Any:
    """The warm-ups' boto3 session: one per process, so a server forked from the zygote
    finds the service models already loaded."""
    if not _warm_up_sessions:
        import boto3

        _warm_up_sessions.append(
            boto3.session.Session(
                aws_access_key_id="warmup", aws_secret_access_key="warmup", region_name="us-east-1"
            )
        )
    return _warm_up_sessions[0]


def _warm_up(
    endpoint_url: str, services: Iterable[str] | None = None, *, call: bool = True
) -> None:
    session = _warm_up_session()
    for service, operation in WARM_UP_CALLS:
        if services is None or service in services:
            client = session.client(service, endpoint_url=endpoint_url)
            if call:
                getattr(client, operation)()
            client.close()


def build_app(installed: Any) -> WsgiApp:
    """moto's app with localstage's middleware, requests one at a time."""
    app: WsgiApp = installed.wrap(serialized(DomainDispatcherApplication(create_backend_app)))
    return app


def _warm_up_zygote(app: WsgiApp) -> None:
    """Build the backends and URL maps every server forked from here shares (all but
    :data:`SERVER_ONLY_WARM_UPS`), through a server stopped again before any fork."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        services = {name for name, _ in WARM_UP_CALLS} - SERVER_ONLY_WARM_UPS
        _warm_up(f"http://127.0.0.1:{server.server_address[1]}", services)
        # Their clients' models only: no request, so no backend.
        _warm_up(f"http://127.0.0.1:{server.server_address[1]}", SERVER_ONLY_WARM_UPS, call=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve(app: WsgiApp, warm_up: Iterable[str] | None = None) -> None:
    """Serve ``app`` until stdin closes, after the warm-up calls of ``warm_up`` (every
    service if None)."""
    # Ctrl-C reaches the terminal's whole process group: the stage stops, and this
    # process ends when the stage closes its stdin, not with a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    _warm_up(f"http://127.0.0.1:{port}", warm_up)
    print(json.dumps({"port": port}), flush=True)
    threading.Event().wait()


#: stdin, stdout and stderr of the server to fork.
ZYGOTE_FDS = 3


def _become_server(app: WsgiApp, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: take the stage's fds, environment and folder, serve moto."""
    # As if started with the stage's environment (moto reads its settings on use).
    take_request(request, fds)
    # The zygote warmed up the rest.
    serve(app, SERVER_ONLY_WARM_UPS)


def zygote(control: socket.socket, app: WsgiApp) -> None:
    """Fork a moto server per request until the stage's process closes the socket."""
    _warm_up_zygote(app)
    fork_per_request(
        control,
        fds_per_request=ZYGOTE_FDS,
        become=lambda request, fds: _become_server(app, request, fds),
    )


def main() -> None:
    # Every patch of moto's internals, after a check of moto's version (moto_patches.py).
    from localstage import moto_patches

    app = build_app(moto_patches.install())
    if sys.argv[1:2] == ["--zygote"]:
        zygote(socket.socket(fileno=int(sys.argv[2])), app)
        # No interpreter teardown of moto: the servers are processes of their own.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    else:
        serve(app)


if __name__ == "__main__":
    main()
