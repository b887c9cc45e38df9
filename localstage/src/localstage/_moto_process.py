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


def _resource_level_iam() -> None:
    """Make moto's IAM checks closer to AWS's for what the patterns use.

    moto authorizes DynamoDB requests against the resource ``*`` only, so a policy
    scoped to a table (every least-privilege grant) would deny everything. DynamoDB
    requests naming one table (and index) are checked against that table's ARN;
    requests for which moto knows no resource (batch and transact operations, most
    services other than SQS, S3 and IAM) are checked at action level.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMPolicyStatement

    def table_arn(handler: Any) -> str:
        params = getattr(handler, "params", None) or {}
        table = params.get("TableName")
        if not isinstance(table, str) or not table:
            return "*"
        arn = (
            table
            if table.startswith("arn:")
            else (f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}")
        )
        index = params.get("IndexName")
        return f"{arn}/index/{index}" if isinstance(index, str) and index else arn

    DynamoHandler._determine_resource = table_arn
    check_element = IAMPolicyStatement._check_element_matches

    def matches(statement: Any, element: str, value: str) -> bool:
        if element == "Resource" and value == "*":
            return True
        return bool(check_element(statement, element, value))

    IAMPolicyStatement._check_element_matches = matches

    # IAM has no permissions for SQS's batch actions: each is authorized by its
    # single-message action (SendMessageBatch needs sqs:SendMessage).
    from moto.iam.access_control import IAMRequestBase

    initialize = IAMRequestBase.__init__

    def init(request: Any, *args: Any, **kwargs: Any) -> None:
        initialize(request, *args, **kwargs)
        request._action = BATCH_ACTIONS.get(request._action, request._action)

    IAMRequestBase.__init__ = init

    # IAM has no TransactWriteItems/TransactGetItems actions either: each item is
    # authorized by its own action on its own table (Put -> dynamodb:PutItem, ...).
    check_action = IAMRequestBase.check_action_permitted

    def check_transaction(request: Any, resource: str) -> None:
        if request._action not in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            check_action(request, resource)
            return
        action = request._action
        try:
            for action_name, table in _transaction_items(
                request._body, request._region, request.account_id
            ):
                request._action = f"dynamodb:{action_name}"
                check_action(request, table)
        finally:
            request._action = action

    IAMRequestBase.check_action_permitted = check_transaction


TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _transaction_items(body: Any, region: str, account: str) -> list[tuple[str, str]]:
    """(IAM action, table ARN) of every item of a TransactWriteItems/TransactGetItems body."""
    try:
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
    except (TypeError, ValueError):
        return [("TransactWriteItems", "*")]
    checks: list[tuple[str, str]] = []
    for item in request.get("TransactItems") or []:
        for kind, operation in item.items():
            table = str(operation.get("TableName", "*"))
            arn = (
                table
                if table.startswith("arn:") or table == "*"
                else f"arn:aws:dynamodb:{region}:{account}:table/{table}"
            )
            checks.append((TRANSACTION_ACTIONS.get(kind, kind), arn))
    return checks or [("TransactWriteItems", "*")]


def _bodyless_signatures() -> None:
    """Verify SigV4 of GET/HEAD/DELETE requests of REST-JSON services as AWS does.

    moto rebuilds the signed request with its parsed query parameters (or, without
    any, the headers) as the body, so the payload hash differs from the client's
    empty one and every such request after ``enforce_iam`` fails with
    SignatureDoesNotMatch (Scheduler's GetSchedule, ListSchedules, DeleteSchedule, ...).
    S3 signs its payload hash in a header and is left alone.
    """
    from moto.iam.access_control import IAMRequestBase

    create = IAMRequestBase._create_aws_request

    def create_request(request: Any) -> Any:
        aws_request = create(request)
        if (
            request._method in ("GET", "HEAD", "DELETE")
            and not request._body
            and request._service != "s3"
        ):
            aws_request.data = b""
        return aws_request

    IAMRequestBase._create_aws_request = create_request


BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


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


def _listed_service_modules() -> None:
    """List moto's service packages once, not on every request.

    moto's server finds a request's backend with ``host in list_of_moto_modules()``,
    which lists moto's package folder and stats its ~180 entries each time: a seventh of
    the CPU time moto spent per request in a fan-out of 1,000 subtasks (cProfile). The
    folder does not change while the process runs.
    """
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def main() -> None:
    # Conditions, bucket policies and iam:PassRole as IAM evaluates them (_moto_iam.py);
    # installed first: the patches below wrap its check.
    from localstage import _moto_iam

    _moto_iam.install()
    _resource_level_iam()
    _bodyless_signatures()
    _listed_service_modules()
    # SQS sends in constant time whatever the queue's length (localstage/_moto_sqs.py).
    from localstage import _moto_sqs

    _moto_sqs.install()
    # Transactions in constant time whatever the table's size (localstage/_moto_dynamodb.py).
    from localstage import _moto_dynamodb

    _moto_dynamodb.install()
    # Stream reads without moto's per-member serializer (localstage/_moto_streams.py).
    from localstage import _moto_streams

    _moto_streams.install()
    # A missing key is 403 to a caller without s3:ListBucket, as on S3 (_moto_s3_access.py).
    from localstage import _moto_s3_access

    _moto_s3_access.install()
    app = serialized(DomainDispatcherApplication(create_backend_app))
    # localstage delivers EventBridge events itself (localstage/_moto_events.py).
    from localstage import _moto_events

    app = _moto_events.install().middleware(app)
    # localstage delivers S3 event notifications itself (localstage/_moto_s3.py).
    from localstage import _moto_s3

    app = _moto_s3.install().middleware(app)
    # Notes which services took a write, to wake the stage's pollers (localstage/activity.py).
    from localstage import _moto_activity

    app = _moto_activity.install().watching(app)
    # Outermost: counts every AWS request the stage makes (localstage/_moto_requests.py).
    from localstage import _moto_requests

    app = _moto_requests.install().middleware(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    _warm_up(f"http://127.0.0.1:{port}")
    print(json.dumps({"port": port}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
