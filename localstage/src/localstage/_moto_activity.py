"""Inside the moto process: which services just took a write that may give a poller work.

An SQS send, a DynamoDB write (a stream record) or a schedule created or changed is
noted here by service, once until the parent reads it. The parent long-polls
``GET /_localstage/activity?wait=<seconds>`` (see :mod:`localstage.activity`) and wakes
the pollers of those services, so they can idle between polls for seconds without
answering late. The path never reaches moto.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from localstage._moto_journal import Journal
from localstage._moto_requests import request_key

ACTIVITY_PATH = "/_localstage/activity"

#: Actions after which a poller may find work, by the service of the request's signature.
_WORK_ACTIONS = {
    "sqs": {
        "SendMessage",
        "SendMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    },
    "dynamodb": {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    },
}
#: Scheduler is a REST protocol: CreateSchedule is a POST, UpdateSchedule a PUT. A
#: deletion needs no wake: the source looks a schedule up again before firing it.
_SCHEDULE_WRITE_METHODS = ("POST", "PUT")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Activity(Journal):
    """A journal holding each service at most once until it is read.

    Examples
    --------
    >>> activity = Activity()
    >>> for service in ("sqs", "dynamodb", "sqs"):
    ...     activity.append({"service": service})
    >>> activity.take(0)
    [{'service': 'sqs'}, {'service': 'dynamodb'}]
    """

    def __init__(self) -> None:
        super().__init__(ACTIVITY_PATH, max_entries=16)

    def append(self, entry: dict[str, Any]) -> None:
        with self._ready:
            if entry in self._entries:
                return
        super().append(entry)

    def watching(self, app: WsgiApp) -> WsgiApp:
        """Note the service of each request that may give a poller work, once ``app`` ran it."""

        def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            service = work_for(environ)
            result = app(environ, start_response)
            # The serializing app below has produced the whole body: the write is done.
            if service:
                self.append({"service": service})
            return result

        return self.middleware(call)


def work_for(environ: dict[str, Any]) -> str | None:
    """The service whose pollers may find work after this request, if any.

    Examples
    --------
    >>> work_for({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/"
    ...           "sqs/aws4_request", "HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"})
    'sqs'
    """
    if str(environ.get("PATH_INFO", "")).startswith(("/_localstage/", "/moto-api")):
        return None
    _, service, action, _ = request_key(environ)
    if service == "scheduler":
        return service if environ.get("REQUEST_METHOD") in _SCHEDULE_WRITE_METHODS else None
    return service if action in _WORK_ACTIONS.get(service, ()) else None


def install() -> Activity:
    """The process's activity journal (the moto process wraps its app with ``watching``)."""
    return Activity()
