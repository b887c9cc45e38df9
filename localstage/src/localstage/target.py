"""Where scenarios and e2e tests run: a small interface over a stage, local or deployed.

Everything a scenario does goes through :class:`Target`: call an API (SigV4-signed),
put an object, send a message, read a table item or a queue's depth, read a stack
output, and wait for a condition with a bounded timeout. :class:`LocalTarget` runs
against a :class:`~localstage.stage.LocalStage`; a target for a deployed stage
implements the same methods with boto3 against AWS
(:class:`localstage.deployed.DeployedTarget`), so nothing written against this
interface may reach into moto.
"""

from __future__ import annotations

import datetime
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import botocore.credentials
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from localstage.cloud import REGION

if TYPE_CHECKING:
    from localstage.stage_view import StageView

T = TypeVar("T")

#: API Gateway answers 429 when a stage's or a method's throttle is exceeded, before the
#: integration runs, so the request may be sent again: a call that bursts past a limit
#: (e.g. 100 schedule creations against /schedules/POST's 10 per second) waits and
#: retries with capped exponential backoff and full jitter, at most this many times.
THROTTLE_RETRIES = 8
#: Observer rules and queues (:meth:`Target.subscribe_to_bus`) are named
#: ``bus-observer-<stage>-<UTC creation time>-<random>`` (at most 62 characters: rule
#: names take 64), so :meth:`AwsTarget.sweep_observers` finds those a killed run left.
OBSERVER_PREFIX = "bus-observer-"
_OBSERVER_TIME = "%Y%m%dT%H%M%S"
_OBSERVER_NAME = re.compile(r"-(?P<created>\d{8}T\d{6})-[0-9a-f]{8}$")
THROTTLE_BACKOFF_SECONDS = 0.25
THROTTLE_BACKOFF_CAP_SECONDS = 8.0


def observer_name(prefix: str, created: datetime.datetime) -> str:
    """A new bus observer's name: ``<prefix><UTC creation time>-<8 random hex digits>``.

    The CI roles allow these names only (``account/ci_policies.py``), so the form is
    part of the contract: ``bus-observer-pr-7-20261206T101500-0123abcd``.
    """
    return f"{prefix}{created.strftime(_OBSERVER_TIME)}-{uuid.uuid4().hex[:8]}"


def eventbridge_queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """The queue policy that lets one EventBridge rule send to a queue (as CDK writes it).

    EventBridge sends as ``events.amazonaws.com``, and only where the queue's policy
    allows it (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


class WaitTimeoutError(AssertionError):
    """A condition did not hold within its timeout."""


@dataclass
class HttpResponse:
    """An HTTP response: status, headers (lower-case names), body (JSON-decoded if JSON)."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: Any
    elapsed: float

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


class Target(Protocol):
    """What scenarios and e2e tests may do to a stage."""

    name: str
    #: Called with every HTTP exchange (a transcript, for example).
    observer: Callable[[HttpResponse, Any], None] | None

    def output(self, stack: str, name: str) -> str:
        """A stack output, e.g. ``output("DecoupledInvocation", "ApiUrl")``."""
        ...

    def call_api(
        self,
        api_url: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
    ) -> HttpResponse:
        """Call an API; ``path`` is relative to ``api_url`` unless it starts with ``/``.

        A call API Gateway throttles (429) is sent again after a backoff, at most
        ``THROTTLE_RETRIES`` times; the last answer is returned.
        """
        ...

    def send_message(self, queue_url: str, body: str) -> str: ...

    def put_object(self, bucket: str, key: str, body: bytes) -> None: ...

    def delete_object(self, bucket: str, key: str) -> None: ...

    def get_item(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def queue_depth(self, queue_url: str) -> int:
        """Messages in the queue: visible, in flight and delayed."""
        ...

    def wait_for(
        self,
        description: str,
        condition: Callable[[], T | None],
        *,
        timeout: float,
        interval: float = 0.2,
    ) -> T: ...

    def receive_messages(self, queue_url: str, *, max_messages: int = 10) -> list[str]:
        """Bodies of up to ``max_messages`` messages available now; deleted once read."""
        ...

    def subscribe_to_bus(self, bus_name: str, pattern: Mapping[str, Any]) -> str:
        """A new queue receiving the bus's events that match ``pattern``; its URL.

        For tests that observe what a stack publishes on a bus it has no consumer on:
        a rule on the bus with the queue as target (and a queue policy for
        EventBridge). Remove both with :meth:`unsubscribe_from_bus`.
        """
        ...

    def unsubscribe_from_bus(self, bus_name: str, queue_url: str) -> None: ...

    def physical_id(self, stack: str, logical_id_prefix: str) -> str:
        """Physical id of the stack's one resource whose logical id starts with the prefix."""
        ...

    def physical_ids(self, stack: str, resource_type: str) -> list[str]:
        """Physical ids of the stack's resources of one type (``AWS::DynamoDB::Table``)."""
        ...

    def invoke_function(self, function_name: str, payload: Any) -> Any:
        """Invoke a function synchronously; its payload (raises if the function failed)."""
        ...

    def get_object(self, bucket: str, key: str) -> bytes | None:
        """An object's content, or None if there is no such key."""
        ...

    def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, in key order."""
        ...

    def scan_items(self, table: str) -> list[dict[str, Any]]:
        """Every item of a (small, test-sized) table."""
        ...

    def list_schedules(self, group: str) -> list[str]:
        """Names of the EventBridge Scheduler schedules in ``group``."""
        ...

    def function_configuration(self, function_name: str) -> dict[str, Any]:
        """``{"Timeout": seconds, "Environment": {"Variables": {...}}}`` of a function."""
        ...

    def set_queue_consumers_enabled(self, queue_url: str, enabled: bool) -> None:
        """Pause or resume the event source mappings that consume a queue.

        Lambda's ``UpdateEventSourceMapping(Enabled=...)``: while paused, messages stay
        in the queue (batches already in flight finish first). Tests use it to stage
        what a consumer will receive, e.g. with :meth:`duplicate_messages`.
        """
        ...

    def duplicate_messages(self, queue_url: str) -> int:
        """Send a copy of every message visible in the queue now; how many were copied.

        SQS delivers at least once; this makes every message arrive twice. The originals
        stay (received once, then made visible again), so pause the queue's consumers
        first (:meth:`set_queue_consumers_enabled`) for the copies to cover them all.
        """
        ...


class AwsTarget:
    """A target that talks to AWS APIs through boto3 clients (subclasses choose them)."""

    name = "aws"
    #: The stage the target reaches, as observer names carry it.
    stage_label = "local"

    def __init__(self) -> None:
        self.observer: Callable[[HttpResponse, Any], None] | None = None
        #: Retries of a call API Gateway throttled (429); 0 shows every 429.
        self.throttle_retries = THROTTLE_RETRIES
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    @property
    def observer_prefix(self) -> str:
        """How the names of this stage's bus observers start (see ``OBSERVER_PREFIX``)."""
        return f"{OBSERVER_PREFIX}{self.stage_label}-"

    # subclasses --------------------------------------------------------------
    def client(self, service: str) -> Any:
        raise NotImplementedError

    def caller_credentials(self) -> botocore.credentials.Credentials:
        raise NotImplementedError

    def output(self, stack: str, name: str) -> str:
        raise NotImplementedError

    def resolve_url(self, url: str) -> str:
        """Where a public URL is served (identity for a deployed stage)."""
        return url

    @property
    def signing_region(self) -> str:
        """The region SigV4 signatures for the stage's APIs name."""
        return REGION

    def wait_budget(self, timeout: float, interval: float) -> tuple[float, float]:
        """The timeout and polling interval a :meth:`wait_for` really gets: as asked here;
        a deployed stage, slower than a local one, scales them."""
        return timeout, interval

    def wait_hint(self) -> str:
        """What a timed-out wait's message adds, pointing at where to look next."""
        return ""

    # interface ---------------------------------------------------------------
    def call_api(
        self,
        api_url: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
    ) -> HttpResponse:
        base = self.resolve_url(api_url if api_url.endswith("/") else api_url + "/")
        url = urllib.parse.urljoin(base, path)
        data: bytes | None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        else:
            data = body.encode() if isinstance(body, str) else body
        for attempt in range(self.throttle_retries + 1):
            response = self._send(method, url, data, all_headers, signed=signed)
            if response.status != 429 or attempt == self.throttle_retries:
                break
            ceiling = THROTTLE_BACKOFF_SECONDS * 2**attempt
            time.sleep(random.uniform(0, min(THROTTLE_BACKOFF_CAP_SECONDS, ceiling)))
        if self.observer is not None:
            self.observer(response, json_body if json_body is not None else body)
        return response

    def _send(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str],
        *,
        signed: bool,
    ) -> HttpResponse:
        all_headers = dict(headers)
        if signed:  # signed anew on every attempt: a signature carries its time
            request = AWSRequest(method=method, url=url, data=data or b"", headers=all_headers)
            SigV4Auth(self.caller_credentials(), "execute-api", self.signing_region).add_auth(
                request
            )
            all_headers = dict(request.headers.items())
        started = time.monotonic()
        http_request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(http_request, timeout=60) as raw:
                status, raw_headers, payload = raw.status, raw.headers, raw.read()
        except urllib.error.HTTPError as error:
            status, raw_headers, payload = error.code, error.headers, error.read()
        return HttpResponse(
            method=method,
            url=url,
            status=status,
            headers={name.lower(): value for name, value in raw_headers.items()},
            body=_decode(payload),
            elapsed=time.monotonic() - started,
        )

    def send_message(self, queue_url: str, body: str) -> str:
        response = self.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)
        return str(response["MessageId"])

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

    def delete_object(self, bucket: str, key: str) -> None:
        self.client("s3").delete_object(Bucket=bucket, Key=key)

    def get_item(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        response = self.client("dynamodb").get_item(
            TableName=table,
            Key={name: self._serializer.serialize(value) for name, value in key.items()},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        return {name: self._deserializer.deserialize(value) for name, value in item.items()}

    def queue_depth(self, queue_url: str) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=names
        )["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def receive_messages(self, queue_url: str, *, max_messages: int = 10) -> list[str]:
        sqs = self.client("sqs")
        bodies: list[str] = []
        while len(bodies) < max_messages:
            received = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(bodies)),
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not received:
                break
            for message in received:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def subscribe_to_bus(self, bus_name: str, pattern: Mapping[str, Any]) -> str:
        sqs, events = self.client("sqs"), self.client("events")
        name = observer_name(self.observer_prefix, datetime.datetime.now(datetime.UTC))
        queue_url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_arn = events.put_rule(
            Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED"
        )["RuleArn"]
        policy = eventbridge_queue_policy(queue_arn, rule_arn)
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        events.put_targets(
            Rule=name, EventBusName=bus_name, Targets=[{"Id": "observer", "Arn": queue_arn}]
        )
        return queue_url

    def unsubscribe_from_bus(self, bus_name: str, queue_url: str) -> None:
        sqs, events = self.client("sqs"), self.client("events")
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        events.remove_targets(Rule=name, EventBusName=bus_name, Ids=["observer"])
        events.delete_rule(Name=name, EventBusName=bus_name)
        sqs.delete_queue(QueueUrl=queue_url)

    def sweep_observers(self, *, older_than: float) -> list[str]:
        """Delete this stage's observer rules and queues older than ``older_than`` seconds.

        A run that is killed cannot unsubscribe; its rule and queue would outlive the
        stage (a queue belongs to no stack). The e2e suite sweeps at its start (anything
        older than a run), and a stage's destroy sweeps everything first. The stage's
        buses are those named ``<stage>-...``. Returns the names deleted.
        """
        sqs, events = self.client("sqs"), self.client("events")
        bus_names = [
            bus["Name"]
            for bus in events.list_event_buses(NamePrefix=f"{self.stage_label}-")["EventBuses"]
        ]
        now = datetime.datetime.now(datetime.UTC)

        def stale(name: str) -> bool:
            # Exactly <prefix><time>-<hex>: stage pr-4's prefix also starts the names of
            # stage pr-4-hotfix's observers, which are not this stage's to delete.
            match = _OBSERVER_NAME.search(name)
            if not name.startswith(self.observer_prefix) or match is None:
                return False
            if match.start() != len(self.observer_prefix) - 1:
                return False
            created = datetime.datetime.strptime(match["created"], _OBSERVER_TIME)
            age = now - created.replace(tzinfo=datetime.UTC)
            return age.total_seconds() >= older_than

        deleted: list[str] = []
        for bus_name in bus_names:
            pages = events.get_paginator("list_rules").paginate(
                EventBusName=bus_name, NamePrefix=self.observer_prefix
            )
            rules = [rule["Name"] for page in pages for rule in page.get("Rules", [])]
            for rule in filter(stale, rules):
                events.remove_targets(Rule=rule, EventBusName=bus_name, Ids=["observer"])
                events.delete_rule(Name=rule, EventBusName=bus_name)
                deleted.append(rule)
        pages = sqs.get_paginator("list_queues").paginate(QueueNamePrefix=self.observer_prefix)
        for url in (url for page in pages for url in page.get("QueueUrls", [])):
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if stale(name):
                sqs.delete_queue(QueueUrl=url)
                deleted.append(name)
        return deleted

    def physical_id(self, stack: str, logical_id_prefix: str) -> str:
        resources = self.client("cloudformation").describe_stack_resources(StackName=stack)
        return only_one(
            [
                str(resource["PhysicalResourceId"])
                for resource in resources["StackResources"]
                if str(resource["LogicalResourceId"]).startswith(logical_id_prefix)
            ],
            f"{stack}/{logical_id_prefix}*",
        )

    def physical_ids(self, stack: str, resource_type: str) -> list[str]:
        paginator = self.client("cloudformation").get_paginator("list_stack_resources")
        return sorted(
            str(resource["PhysicalResourceId"])
            for page in paginator.paginate(StackName=stack)
            for resource in page["StackResourceSummaries"]
            if resource["ResourceType"] == resource_type
        )

    def invoke_function(self, function_name: str, payload: Any) -> Any:
        response = self.client("lambda").invoke(
            FunctionName=function_name, Payload=json.dumps(payload).encode()
        )
        result = _decode(response["Payload"].read())
        if response.get("FunctionError"):
            raise FunctionFailedError(f"{function_name} failed: {result}")
        return result

    def get_object(self, bucket: str, key: str) -> bytes | None:
        s3 = self.client("s3")
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client("s3").get_paginator("list_objects_v2")
        return [
            str(item["Key"])
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def scan_items(self, table: str) -> list[dict[str, Any]]:
        paginator = self.client("dynamodb").get_paginator("scan")
        return [
            {name: self._deserializer.deserialize(value) for name, value in item.items()}
            for page in paginator.paginate(TableName=table, ConsistentRead=True)
            for item in page.get("Items", [])
        ]

    def list_schedules(self, group: str) -> list[str]:
        paginator = self.client("scheduler").get_paginator("list_schedules")
        return [
            str(schedule["Name"])
            for page in paginator.paginate(GroupName=group)
            for schedule in page.get("Schedules", [])
        ]

    def function_configuration(self, function_name: str) -> dict[str, Any]:
        configuration = self.client("lambda").get_function_configuration(FunctionName=function_name)
        return {
            "Timeout": configuration["Timeout"],
            "Environment": {
                "Variables": dict((configuration.get("Environment") or {}).get("Variables") or {})
            },
        }

    def set_queue_consumers_enabled(self, queue_url: str, enabled: bool) -> None:
        lambda_ = self.client("lambda")
        queue_arn = self._queue_arn(queue_url)
        mappings = lambda_.list_event_source_mappings(EventSourceArn=queue_arn)
        uuids = [str(mapping["UUID"]) for mapping in mappings["EventSourceMappings"]]
        if not uuids:
            raise LookupError(f"no event source mapping consumes {queue_url}")
        for mapping_id in uuids:
            lambda_.update_event_source_mapping(UUID=mapping_id, Enabled=enabled)
        wanted = "Enabled" if enabled else "Disabled"
        self.wait_for(
            f"the consumers of {queue_url} to be {wanted.lower()}",
            lambda: all(
                lambda_.get_event_source_mapping(UUID=mapping_id)["State"] == wanted
                for mapping_id in uuids
            ),
            timeout=120,
            interval=2,
        )

    #: Long polling asks every SQS server, so an empty answer means an empty queue.
    copy_receive_wait_seconds = 1

    def duplicate_messages(self, queue_url: str) -> int:
        sqs = self.client("sqs")
        received: dict[str, dict[str, Any]] = {}
        while True:
            # Hidden while being copied, so each message is read once.
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=120,
                WaitTimeSeconds=self.copy_receive_wait_seconds,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            received.update({message["MessageId"]: message for message in batch})
        messages = list(received.values())
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            sent = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {
                        "Id": str(index),
                        "MessageBody": message["Body"],
                        **(
                            {"MessageAttributes": message["MessageAttributes"]}
                            if message.get("MessageAttributes")
                            else {}
                        ),
                    }
                    for index, message in enumerate(chunk)
                ],
            )
            if sent.get("Failed"):
                raise RuntimeError(f"copies not sent: {sent['Failed']}")
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": 0,
                    }
                    for index, message in enumerate(chunk)
                ],
            )
        return len(messages)

    def _queue_arn(self, queue_url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]
        return str(attributes["QueueArn"])

    def wait_for(
        self,
        description: str,
        condition: Callable[[], T | None],
        *,
        timeout: float,
        interval: float = 0.2,
    ) -> T:
        timeout, interval = self.wait_budget(timeout, interval)
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = condition()
            if last is not None and last is not False:
                return last
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:g} s waiting for {description} "
                    f"(last value: {last!r}); is the event source that should make it "
                    f"happen missing or failing? See the function logs.{self.wait_hint()}"
                )
            time.sleep(interval)


class LocalTarget(AwsTarget):
    """The default target: a stage booted by localstage."""

    name = "local"
    #: moto answers from every message at once; a long poll would hold its lock.
    copy_receive_wait_seconds = 0

    def __init__(self, stage: StageView) -> None:
        super().__init__()
        self.stage = stage
        #: Pollers stopped by :meth:`set_queue_consumers_enabled`, by queue URL.
        self._paused: dict[str, list[Any]] = {}

    def client(self, service: str) -> Any:
        return self.stage.cloud.client(service)

    def caller_credentials(self) -> botocore.credentials.Credentials:
        admin = self.stage.cloud.admin
        assert admin is not None
        return botocore.credentials.Credentials(admin.access_key_id, admin.secret_access_key)

    def output(self, stack: str, name: str) -> str:
        return str(self.stage.output(stack, name))

    def wait_hint(self) -> str:
        return f" (function logs: {self.stage.logs.directory})"

    def physical_id(self, stack: str, logical_id_prefix: str) -> str:
        deployment = self.stage.deployment
        deployed = deployment.stacks[deployment.assembly.stack(stack).stack_name]
        return only_one(
            [
                str(resource.physical_id)
                for logical_id, resource in deployed.resources.items()
                if logical_id.startswith(logical_id_prefix)
            ],
            f"{stack}/{logical_id_prefix}*",
        )

    def physical_ids(self, stack: str, resource_type: str) -> list[str]:
        deployment = self.stage.deployment
        deployed = deployment.stacks[deployment.assembly.stack(stack).stack_name]
        return sorted(
            str(resource.physical_id)
            for resource in deployed.resources.values()
            if resource.resource_type == resource_type
        )

    def invoke_function(self, function_name: str, payload: Any) -> Any:
        result = self.stage.function(function_name).invoke(payload)
        if result.error is not None:
            raise FunctionFailedError(f"{function_name} failed: {result.error}")
        return result.payload

    def function_configuration(self, function_name: str) -> dict[str, Any]:
        # The functions run in localstage, not on moto: answer from the template.
        spec = self.stage.function(function_name).spec
        return {
            "Timeout": spec.timeout_seconds,
            "Environment": {"Variables": dict(spec.environment)},
        }

    def set_queue_consumers_enabled(self, queue_url: str, enabled: bool) -> None:
        # localstage's pollers stand for the mappings: stopping one waits for its
        # batches in flight; resuming starts a fresh poller for the same mapping.
        from localstage.sources.sqs import SqsEventSourceMapping

        stage = self.stage
        if not enabled:
            pollers = [
                source
                for source in stage.sources
                if isinstance(source, SqsEventSourceMapping) and source.queue_url == queue_url
            ]
            if not pollers and queue_url not in self._paused:
                raise LookupError(f"no event source mapping consumes {queue_url}")
            for poller in pollers:
                poller.stop()
                stage.sources.remove(poller)
            self._paused.setdefault(queue_url, []).extend(pollers)
            return
        for poller in self._paused.pop(queue_url, []):
            mapping = next(
                resource
                for resource in stage.deployment.resources("AWS::Lambda::EventSourceMapping")
                if resource.properties.get("EventSourceArn") == poller.queue_arn
                and stage.function(resource.properties["FunctionName"]) is poller.function
            )
            queue = stage.deployment.find("AWS::SQS::Queue", arn=poller.queue_arn)
            fresh = SqsEventSourceMapping(stage, mapping, queue, poller.function)
            stage.sources.append(fresh)
            fresh.start()

    def resolve_url(self, url: str) -> str:
        for public, local in self.stage.api_urls().items():
            if url.startswith(public):
                return local + url[len(public) :]
        return url


class FunctionFailedError(AssertionError):
    """A function invoked through the target answered with an error."""


def only_one(found: list[str], description: str) -> str:
    """The one resource id ``found`` for ``description``; a ``LookupError`` otherwise."""
    if len(found) != 1:
        raise LookupError(f"expected one resource {description}, found {len(found)}")
    return found[0]


def _decode(payload: bytes) -> Any:
    if not payload:
        return None
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
