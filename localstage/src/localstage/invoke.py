"""Lambda's Invoke API for handler code, with Lambda's asynchronous semantics.

Every function's environment gets ``AWS_ENDPOINT_URL_LAMBDA`` pointing at a small
HTTP server here, so ``boto3.client("lambda").invoke(...)`` in handler code reaches
localstage's runtime instead of moto (which only echoes the payload):

- The caller is identified by its access key and must be allowed
  ``lambda:InvokeFunction`` on the function by its role's policies (evaluated with
  IAM's rules, ``localstage/iam_policy.py``); otherwise 403 ``AccessDeniedException``.
- ``RequestResponse`` runs the function and answers its payload, or the error with
  ``X-Amz-Function-Error: Unhandled``; ``DryRun`` answers 204 after the permission
  check; ``Event`` answers 202 at once and queues the event.
- Queued events run with Lambda's asynchronous semantics (``AWS::Lambda::EventInvokeConfig``):
  ``MaximumRetryAttempts`` (default 2) with 1 and 2 minutes of stage time between
  attempts, ``MaximumEventAgeInSeconds`` (default 6 hours), on-success and on-failure
  destinations (SQS, SNS, Lambda, EventBridge) with AWS's destination record, and the
  function's ``DeadLetterConfig`` (SQS or SNS). The request id stays the same across
  retries. An event throttled by the function's reserved concurrency (all busy, or 0)
  goes back to the queue with back-off until it runs or its maximum age ends
  (:mod:`localstage.throttling`). Destinations and DLQs are written with the function's
  role, as on AWS.
- Recursive loop detection: each invocation carries a lineage (how often each
  function ran in the chain) in its X-Ray trace header, which botocore forwards from
  ``_X_AMZN_TRACE_ID``; an asynchronous invocation that would be the 17th of the same
  function in a chain is not run, unless the function has ``RecursiveLoop: Allow``.
  The event goes to the DLQ and on-failure destination (condition
  ``RecursiveInvocationDetected``, localstage's name).

Other services' modules (S3 notifications, schedules) queue asynchronous invocations
through :func:`lambda_service`.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import re
import threading
import time
import urllib.parse
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from localstage.cloud import ACCOUNT_ID, PARTITION, REGION
from localstage.runtime import FunctionRuntime, FunctionThrottledError, InvocationResult
from localstage.sources import EventSource, event_source
from localstage.throttling import throttle_backoff

if TYPE_CHECKING:
    from localstage.stage_view import StageView

DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 6 * 60 * 60
#: Stage seconds Lambda waits before the second and the third attempt.
RETRY_DELAYS_SECONDS = (60.0, 120.0)
#: A chain may run the same function this often; the next asynchronous one is stopped.
RECURSION_LIMIT = 16
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
ASYNC_WORKERS = 32
#: How often the Lambda API server's loop checks whether it is being stopped.
SERVER_POLL_SECONDS = 0.05
#: Finished asynchronous events kept for a look (``LambdaService.events``).
MAX_REMEMBERED_EVENTS = 10_000
RECURSION_CONDITION = "RecursiveInvocationDetected"

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/")
_SERVICES: weakref.WeakKeyDictionary[StageView, LambdaService] = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def limit_sync_response(result: InvocationResult) -> InvocationResult:
    """A synchronous response over 6 MB becomes the function error Lambda reports instead."""
    if result.error is None and len(json.dumps(result.payload).encode()) > SYNC_PAYLOAD_LIMIT:
        result.payload = None
        result.error = {
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            f"({SYNC_PAYLOAD_LIMIT} bytes).",
        }
    return result


def lambda_service(stage: StageView) -> LambdaService:
    """The stage's Lambda service (created and started on first use)."""
    with _SERVICES_LOCK:
        service = _SERVICES.get(stage)
        if service is None:
            service = LambdaService(stage)
            _SERVICES[stage] = service
        return service


@event_source()
def lambda_api(stage: StageView) -> list[EventSource]:
    return [lambda_service(stage)]


class InvokeError(Exception):
    """An Invoke request AWS would refuse: the HTTP status and Lambda's error type."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


# ---------------------------------------------------------------------- lineage


Lineage = dict[str, int]


def function_hash(function_arn: str) -> str:
    return hashlib.sha1(function_arn.encode(), usedforsecurity=False).hexdigest()[:8]


def next_lineage(parent: Lineage | None, function_arn: str) -> Lineage:
    """The lineage of an invocation of ``function_arn`` made with ``parent``'s: one more
    run of that function in the chain (what Lambda's recursion detection counts)."""
    lineage = dict(parent or {})
    key = function_hash(function_arn)
    lineage[key] = lineage.get(key, 0) + 1
    return lineage


def parse_trace_header(header: str | None) -> tuple[str | None, Lineage]:
    """The trace ``Root`` and the lineage carried by an ``X-Amzn-Trace-Id`` header."""
    root: str | None = None
    lineage: Lineage = {}
    for part in urllib.parse.unquote(header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "Root":
            root = value
        elif name == "Lineage":
            for entry in value.split(","):
                key, _, count = entry.partition(":")
                if key and count.isdigit():
                    lineage[key] = int(count)
    return root, lineage


def trace_header(root: str | None, lineage: Lineage) -> str:
    root = root or f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    header = f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"
    if lineage:
        header += ";Lineage=" + ",".join(f"{key}:{count}" for key, count in lineage.items())
    return header


# ---------------------------------------------------------------------- records


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def destination_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: Any,
    result: InvocationResult | None,
) -> dict[str, Any]:
    """What Lambda sends an asynchronous invocation's destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_now(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
    }
    if result is not None:
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if result.error is not None:
            response_context["functionError"] = "Unhandled"
        record["responseContext"] = response_context
        record["responsePayload"] = result.error if result.error is not None else result.payload
    return record


# ---------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AsyncConfig:
    """A function's asynchronous invocation settings, from its template."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age: float = DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
    on_success: str | None = None
    on_failure: str | None = None
    dead_letter: str | None = None
    recursion_allowed: bool = False


@dataclass(order=True)
class _Queued:
    due: float
    sequence: int
    event: AsyncEvent = field(compare=False)


@dataclass
class AsyncEvent:
    """One event in a function's asynchronous queue."""

    function: FunctionRuntime
    payload: Any
    request_id: str
    received_at: float
    lineage: Lineage
    trace_root: str | None = None
    attempts: int = 0
    #: Throttles since the last attempt (the reserved concurrency was all busy, or 0).
    throttles: int = 0
    last: InvocationResult | None = None
    #: Set when it reached its end (success, or failure after retries / age / recursion).
    outcome: str | None = None


# ---------------------------------------------------------------------- the service


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LambdaService:
    """The Invoke endpoint for handler code and every function's asynchronous queue."""

    description = "Lambda Invoke API for handler code (sync, async, destinations)"

    def __init__(self, stage: StageView) -> None:
        self.stage = stage
        self._configs: dict[str, AsyncConfig] = {}
        self._policies: dict[str, list[Any]] = {}
        self._policies_lock = threading.Lock()
        self._trust: dict[str, Any] = {}
        self._queue: list[_Queued] = []
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(ASYNC_WORKERS, thread_name_prefix="lambda-async")
        self._dispatcher: threading.Thread | None = None
        #: Every asynchronous event by request id (tests and the demo read outcomes).
        self.events: dict[str, AsyncEvent] = {}
        self._events_lock = threading.Lock()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        for function in stage.functions.values():
            function.extra_environment["AWS_ENDPOINT_URL_LAMBDA"] = self.url
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            # How long a stop waits for the loop (not how fast a request is served).
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            daemon=True,
            name="lambda-api",
        )
        self._server_thread.start()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(
                target=self._dispatch, daemon=True, name="lambda-async-dispatcher"
            )
            self._dispatcher.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ configuration

    def config(self, function: FunctionRuntime) -> AsyncConfig:
        """The function's ``EventInvokeConfig``, ``DeadLetterConfig`` and ``RecursiveLoop``."""
        cached = self._configs.get(function.spec.name)
        if cached is not None:
            return cached
        deployment = self.stage.deployment
        settings: dict[str, Any] = {}
        for resource in deployment.resources("AWS::Lambda::EventInvokeConfig"):
            props = resource.properties
            if _function_name(str(props.get("FunctionName", ""))) != function.spec.name:
                continue
            if props.get("Qualifier", "$LATEST") != "$LATEST":
                continue
            if "MaximumRetryAttempts" in props:
                settings["maximum_retry_attempts"] = int(props["MaximumRetryAttempts"])
            if "MaximumEventAgeInSeconds" in props:
                settings["maximum_event_age"] = float(props["MaximumEventAgeInSeconds"])
            destinations = props.get("DestinationConfig") or {}
            settings["on_success"] = (destinations.get("OnSuccess") or {}).get("Destination")
            settings["on_failure"] = (destinations.get("OnFailure") or {}).get("Destination")
        try:
            resource = deployment.find("AWS::Lambda::Function", physical_id=function.spec.name)
        except KeyError:
            pass
        else:
            props = resource.properties
            settings["dead_letter"] = (props.get("DeadLetterConfig") or {}).get("TargetArn")
            settings["recursion_allowed"] = str(props.get("RecursiveLoop", "")).lower() == "allow"
        config = AsyncConfig(**settings)
        self._configs[function.spec.name] = config
        return config

    # ------------------------------------------------------------------ IAM

    def allowed(
        self,
        principal_arn: str,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> bool:
        """Whether the identity policies of ``principal_arn`` (a role) allow ``action``.

        Evaluated with IAM's rules (``localstage/iam_policy.py``) over ``context`` plus
        what every SDK call carries (``aws:SecureTransport`` true: HTTPS).
        """
        from localstage.iam_policy import Decision, evaluate

        admin = self.stage.cloud.admin
        if admin is not None and principal_arn == admin.principal_arn:
            return True
        role = _role_name(principal_arn)
        if role is None:
            return False
        request = {
            "aws:SecureTransport": True,
            "aws:PrincipalAccount": ACCOUNT_ID,
            "aws:RequestedRegion": REGION,
            **(context or {}),
        }
        return evaluate(self._role_policies(role), action, resource, request) is Decision.ALLOW

    def may_assume(self, role_arn: str, service: str, context: dict[str, Any]) -> bool:
        """Whether ``role_arn``'s trust policy lets ``service`` assume it, with ``context``
        (``aws:SourceAccount``, ``aws:SourceArn``) as the service sends it."""
        from localstage.iam_policy import Decision, Principal, evaluate

        role = _role_name(role_arn)
        if role is None:
            return False
        with self._policies_lock:
            trust = self._trust.get(role)
            if trust is None:
                try:
                    got = self.stage.cloud.client("iam").get_role(RoleName=role)
                except Exception:
                    return False  # no such role: nothing to assume
                trust = self._trust[role] = _document(got["Role"]["AssumeRolePolicyDocument"])
        decision = evaluate(
            [trust], "sts:AssumeRole", role_arn, context, principal=Principal(service=service)
        )
        return decision is Decision.ALLOW

    def _role_policies(self, role: str) -> list[Any]:
        with self._policies_lock:
            if role in self._policies:
                return self._policies[role]
            iam = self.stage.cloud.client("iam")
            documents: list[Any] = []
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                documents.append(
                    _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
                )
            for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                version = iam.get_policy_version(
                    PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
                )
                documents.append(_document(version["PolicyVersion"]["Document"]))
            # Role policies do not change after deployment.
            self._policies[role] = documents
            return documents

    # ------------------------------------------------------------------ invoking

    def function(self, name_or_arn: str) -> FunctionRuntime:
        name = _function_name(name_or_arn)
        try:
            return self.stage.function(name)
        except KeyError:
            raise InvokeError(
                404,
                "ResourceNotFoundException",
                f"Function not found: {_function_arn(name)}",
            ) from None

    def invoke_async(
        self,
        function: FunctionRuntime,
        payload: Any,
        *,
        parent_lineage: Lineage | None = None,
        trace_root: str | None = None,
        request_id: str | None = None,
        duplicates: bool = True,
        delay: float = 0.0,
    ) -> str:
        """Queue an asynchronous invocation; answers its request id at once.

        In ``duplicate`` delivery mode the event runs twice (same request id, each copy
        with its own retries and destinations), as Lambda may run an asynchronous event
        more than once. Sources that already deliver each event twice themselves (S3,
        EventBridge, the Scheduler) pass ``duplicates=False`` and a ``delay`` (stage
        seconds) for their second copy.
        """
        lineage = next_lineage(parent_lineage, function.spec.arn)
        event = AsyncEvent(
            function=function,
            payload=payload,
            request_id=request_id or str(uuid.uuid4()),
            received_at=self.stage.clock.time(),
            lineage=lineage,
            trace_root=trace_root,
        )
        with self._events_lock:
            self.events[event.request_id] = event
            if len(self.events) > MAX_REMEMBERED_EVENTS:
                del self.events[next(iter(self.events))]
        now = self.stage.clock.time()
        self._schedule(event, now + delay)
        if duplicates:
            # ``events`` keeps the first copy: tests read one outcome per request id.
            for extra in self.stage.delivery.redelivery_delays():
                self._schedule(replace(event, lineage=dict(lineage)), now + delay + extra)
        return event.request_id

    def invoke_sync(
        self,
        function: FunctionRuntime,
        payload: Any,
        *,
        parent_lineage: Lineage | None = None,
        trace_root: str | None = None,
        client_context: Any = None,
    ) -> InvocationResult:
        lineage = next_lineage(parent_lineage, function.spec.arn)
        try:
            return function.invoke(
                payload,
                client_context=client_context,
                trace_id=trace_header(trace_root, lineage),
                throttle=True,
            )
        except FunctionThrottledError:
            # A synchronous caller is refused at once when the reserved concurrency is
            # all in use (asynchronous events and event source mappings retry later).
            raise InvokeError(429, "TooManyRequestsException", "Rate Exceeded.") from None

    def _schedule(self, event: AsyncEvent, due: float) -> None:
        with self._wake:
            heapq.heappush(self._queue, _Queued(due, next(self._sequence), event))
            self._wake.notify()

    def _dispatch(self) -> None:
        clock = self.stage.clock
        while True:
            with self._wake:
                while not self._stopped:
                    now = clock.time()
                    if self._queue and self._queue[0].due <= now:
                        break
                    wait = clock.real_seconds(self._queue[0].due - now) if self._queue else 1.0
                    self._wake.wait(min(max(wait, 0.005), 0.5))
                if self._stopped:
                    return
                queued = heapq.heappop(self._queue)
            try:
                self._pool.submit(self._attempt, queued.event)
            except RuntimeError:
                return

    def _attempt(self, event: AsyncEvent) -> None:
        try:
            self._run_attempt(event)
        except Exception as error:
            self._log(event.function, {"requestId": event.request_id, "error": repr(error)})

    def _run_attempt(self, event: AsyncEvent) -> None:
        config = self.config(event.function)
        key = function_hash(event.function.spec.arn)
        if event.lineage.get(key, 0) > RECURSION_LIMIT and not config.recursion_allowed:
            self._log(
                event.function,
                {
                    "requestId": event.request_id,
                    "status": "recursiveLoopDetected",
                    "message": f"the function ran {RECURSION_LIMIT} times in this chain of "
                    "requests; Lambda stopped the next invocation",
                },
            )
            self._fail(event, config, RECURSION_CONDITION)
            return
        if self.stage.clock.time() - event.received_at > config.maximum_event_age:
            self._fail(event, config, "EventAgeExceeded")
            return
        try:
            result = event.function.invoke(
                event.payload,
                request_id=event.request_id,
                trace_id=trace_header(event.trace_root, event.lineage),
                throttle=True,
            )
        except FunctionThrottledError:
            self._throttled(event)
            return
        event.attempts += 1
        event.throttles = 0
        event.last = result
        if result.error is None:
            event.outcome = "Success"
            if config.on_success:
                self._deliver(event, config.on_success, "Success")
            return
        if event.attempts <= config.maximum_retry_attempts:
            delay = RETRY_DELAYS_SECONDS[min(event.attempts, len(RETRY_DELAYS_SECONDS)) - 1]
            self._log(
                event.function,
                {
                    "requestId": event.request_id,
                    "status": "retryScheduled",
                    "attempt": event.attempts,
                    "retryInSeconds": delay,
                },
            )
            self._schedule(event, self.stage.clock.time() + delay)
            return
        self._fail(event, config, "RetriesExhausted")

    def _throttled(self, event: AsyncEvent) -> None:
        # Back to the queue, retried with back-off (localstage/throttling.py); the age
        # check before the next attempt ends it. Not an attempt: no retry is used up.
        event.throttles += 1
        delay = throttle_backoff(event.throttles)
        self._log(
            event.function,
            {"requestId": event.request_id, "status": "throttled", "retryInSeconds": delay},
        )
        self._schedule(event, self.stage.clock.time() + delay)

    def _fail(self, event: AsyncEvent, config: AsyncConfig, condition: str) -> None:
        event.outcome = condition
        if config.on_failure:
            self._deliver(event, config.on_failure, condition)
        if config.dead_letter:
            self._dead_letter(event, config.dead_letter, condition)
        if not config.on_failure and not config.dead_letter:
            self._log(
                event.function,
                {"requestId": event.request_id, "status": "discarded", "condition": condition},
            )

    # ------------------------------------------------------------------ destinations

    def _deliver(self, event: AsyncEvent, destination: str, condition: str) -> None:
        function = event.function
        record = destination_record(
            request_id=event.request_id,
            function_arn=function.spec.arn,
            condition=condition,
            invoke_count=event.attempts,
            request_payload=event.payload,
            result=event.last,
        )
        try:
            self._send(function, destination, record, condition == "Success")
        except Exception as error:
            self._log(
                function,
                {
                    "requestId": event.request_id,
                    "status": "destinationDeliveryFailed",
                    "destination": destination,
                    "error": str(error),
                },
            )

    def _send(
        self, function: FunctionRuntime, destination: str, record: dict[str, Any], success: bool
    ) -> None:
        service = destination.split(":")[2]
        credentials = function.spec.credentials
        body = json.dumps(record)
        if service == "sqs":
            self.stage.cloud.client("sqs", credentials).send_message(
                QueueUrl=self._queue_url(destination), MessageBody=body
            )
        elif service == "sns":
            self.stage.cloud.client("sns", credentials).publish(TopicArn=destination, Message=body)
        elif service == "lambda":
            target = self.function(destination)
            if not self.allowed(credentials.principal_arn, "lambda:InvokeFunction", destination):
                raise PermissionError(
                    f"{credentials.principal_arn} is not authorized to perform "
                    f"lambda:InvokeFunction on resource: {destination}"
                )
            # localstage starts a new chain here: no lineage is carried through destinations.
            # Each copy of a duplicated event already sends its own record.
            self.invoke_async(target, record, duplicates=False)
        elif service == "events":
            result = self.stage.cloud.client("events", credentials).put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": "Lambda Function Invocation Result - "
                        + ("Success" if success else "Failure"),
                        "Detail": body,
                        "Resources": [function.spec.arn],
                        "EventBusName": destination,
                    }
                ]
            )
            if result.get("FailedEntryCount"):
                raise RuntimeError(f"PutEvents failed: {result['Entries']}")
        else:
            raise ValueError(f"destination service {service} is not supported")

    def _dead_letter(self, event: AsyncEvent, target: str, condition: str) -> None:
        function = event.function
        error = (event.last.error or {}) if event.last is not None else {}
        message = error.get("errorMessage") or condition
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": event.request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": str(message)[:1024]},
        }
        body = json.dumps(event.payload)
        credentials = function.spec.credentials
        try:
            if target.split(":")[2] == "sns":
                self.stage.cloud.client("sns", credentials).publish(
                    TopicArn=target, Message=body, MessageAttributes=attributes
                )
            else:
                self.stage.cloud.client("sqs", credentials).send_message(
                    QueueUrl=self._queue_url(target), MessageBody=body, MessageAttributes=attributes
                )
        except Exception as failure:
            self._log(
                function,
                {
                    "requestId": event.request_id,
                    "status": "deadLetterDeliveryFailed",
                    "target": target,
                    "error": str(failure),
                },
            )

    def _queue_url(self, queue_arn: str) -> str:
        try:
            queue = self.stage.deployment.find("AWS::SQS::Queue", arn=queue_arn)
        except KeyError:
            account, name = queue_arn.split(":")[4:6]
            return f"{self.stage.cloud.endpoint_url}/{account}/{name}"
        return str(queue.attributes["QueueUrl"])

    def _log(self, function: FunctionRuntime, record: dict[str, Any]) -> None:
        self.stage.logs.write(
            function.spec.label,
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "type": "localstage.asyncInvoke",
                    **record,
                }
            ),
        )

    # ------------------------------------------------------------------ HTTP

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        try:
            response = self._handle(request, request_id)
        except InvokeError as error:
            response = Response(
                json.dumps({"Type": "User", "message": error.message}),
                status=error.status,
                content_type="application/json",
            )
            response.headers["x-amzn-ErrorType"] = error.error_type
        response.headers["x-amzn-RequestId"] = request_id
        return response(environ, start_response)

    def _handle(self, request: Request, request_id: str) -> Response:
        match = _INVOKE_PATH.match(request.path)
        if request.method != "POST" or match is None:
            raise InvokeError(
                501,
                "ServiceException",
                f"localstage emulates only Lambda's Invoke API, not {request.method} "
                f"{request.path}",
            )
        principal = self._caller(request)
        name = urllib.parse.unquote(match.group("name"))
        qualifier = request.args.get("Qualifier") or _qualifier(name)
        if qualifier not in (None, "$LATEST"):
            raise InvokeError(
                404,
                "ResourceNotFoundException",
                f"Function not found: {_function_arn(_function_name(name))}:{qualifier} "
                "(localstage runs $LATEST only)",
            )
        function = self.function(name)
        resource = function.spec.arn + (f":{qualifier}" if qualifier else "")
        if not self.allowed(principal, "lambda:InvokeFunction", resource):
            raise InvokeError(
                403,
                "AccessDeniedException",
                f"User: {principal} is not authorized to perform: lambda:InvokeFunction on "
                f"resource: {resource} because no identity-based policy allows the "
                "lambda:InvokeFunction action",
            )
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        body = request.get_data()
        limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            raise InvokeError(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            )
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            raise InvokeError(
                400, "InvalidRequestContentException", "Could not parse request body into json"
            ) from None
        root, lineage = parse_trace_header(request.headers.get("X-Amzn-Trace-Id"))
        caller = self._caller_function(request)
        if caller is not None:
            # The caller's own invocation counts once even if no lineage reached it yet.
            key = function_hash(caller.spec.arn)
            lineage[key] = max(lineage.get(key, 0), 1)
        if invocation_type == "DryRun":
            return Response(status=204)
        if invocation_type == "Event":
            self.invoke_async(
                function, payload, parent_lineage=lineage, trace_root=root, request_id=request_id
            )
            return Response(status=202)
        if invocation_type != "RequestResponse":
            raise InvokeError(
                400, "InvalidParameterValueException", f"invalid InvocationType {invocation_type}"
            )
        client_context = None
        if request.headers.get("X-Amz-Client-Context"):
            try:
                client_context = json.loads(
                    base64.b64decode(request.headers["X-Amz-Client-Context"])
                )
            except ValueError:
                raise InvokeError(
                    400, "InvalidRequestContentException", "Client context must be base64 JSON"
                ) from None
        result = limit_sync_response(
            self.invoke_sync(
                function,
                payload,
                parent_lineage=lineage,
                trace_root=root,
                client_context=client_context,
            )
        )
        response = Response(
            json.dumps(result.error if result.error is not None else result.payload),
            status=200,
            content_type="application/json",
        )
        response.headers["X-Amz-Executed-Version"] = "$LATEST"
        if result.error is not None:
            response.headers["X-Amz-Function-Error"] = "Unhandled"
        return response

    def _caller(self, request: Request) -> str:
        match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        identity = self.stage.identity(match.group("key")) if match else None
        if identity is None:
            raise InvokeError(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        return identity.principal_arn

    def _caller_function(self, request: Request) -> FunctionRuntime | None:
        match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        if match is None:
            return None
        for function in self.stage.functions.values():
            if function.spec.credentials.access_key_id == match.group("key"):
                return function
        return None


def _document(document: Any) -> Any:
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def _role_name(principal_arn: str) -> str | None:
    if ":assumed-role/" in principal_arn:
        return principal_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    if ":role/" in principal_arn:
        return principal_arn.rsplit("/", 1)[-1]
    return None


def _function_name(name_or_arn: str) -> str:
    """``name``, ``name:qualifier``, a partial or a full ARN: the function's name."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        return parts[6] if len(parts) > 6 else name_or_arn
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


def _qualifier(name_or_arn: str) -> str | None:
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        return parts[7] if len(parts) > 7 else None
    if len(parts) >= 3 and parts[1] == "function":
        return parts[3] if len(parts) > 3 else None
    return parts[1] if len(parts) == 2 else None


def _function_arn(name: str) -> str:
    return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
