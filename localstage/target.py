"""Where scenarios and e2e tests run: a small interface over a stage, local or deployed.

Everything a scenario does goes through :class:`Target`: call an API (SigV4-signed),
put an object, send a message, read a table item or a queue's depth, read a stack
output, and wait for a condition with a bounded timeout. :class:`LocalTarget` runs
against a :class:`~localstage.stage.LocalStage`; a target for a deployed stage
implements the same methods with boto3 against AWS (the delivery issue adds it), so
nothing written against this interface may reach into moto.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import botocore.credentials
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from localstage.cloud import REGION

if TYPE_CHECKING:
    from localstage.stage import LocalStage

T = TypeVar("T")


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
        """Call an API; ``path`` is relative to ``api_url`` unless it starts with ``/``."""
        ...

    def send_message(self, queue_url: str, body: str) -> str: ...

    def put_object(self, bucket: str, key: str, body: bytes) -> None: ...

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


class AwsTarget:
    """A target that talks to AWS APIs through boto3 clients (subclasses choose them)."""

    name = "aws"

    def __init__(self) -> None:
        self.observer: Callable[[HttpResponse, Any], None] | None = None
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

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
        if signed:
            request = AWSRequest(method=method, url=url, data=data or b"", headers=all_headers)
            SigV4Auth(self.caller_credentials(), "execute-api", REGION).add_auth(request)
            all_headers = dict(request.headers.items())
        started = time.monotonic()
        http_request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(http_request, timeout=60) as raw:
                status, raw_headers, payload = raw.status, raw.headers, raw.read()
        except urllib.error.HTTPError as error:
            status, raw_headers, payload = error.code, error.headers, error.read()
        response = HttpResponse(
            method=method,
            url=url,
            status=status,
            headers={name.lower(): value for name, value in raw_headers.items()},
            body=_decode(payload),
            elapsed=time.monotonic() - started,
        )
        if self.observer is not None:
            self.observer(response, json_body if json_body is not None else body)
        return response

    def send_message(self, queue_url: str, body: str) -> str:
        response = self.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)
        return str(response["MessageId"])

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

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

    def wait_for(
        self,
        description: str,
        condition: Callable[[], T | None],
        *,
        timeout: float,
        interval: float = 0.2,
    ) -> T:
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
                    "happen missing or failing? See the function logs."
                )
            time.sleep(interval)


class LocalTarget(AwsTarget):
    """The default target: a stage booted by localstage."""

    name = "local"

    def __init__(self, stage: LocalStage) -> None:
        super().__init__()
        self.stage = stage

    def client(self, service: str) -> Any:
        return self.stage.cloud.client(service)

    def caller_credentials(self) -> botocore.credentials.Credentials:
        admin = self.stage.cloud.admin
        assert admin is not None
        return botocore.credentials.Credentials(admin.access_key_id, admin.secret_access_key)

    def output(self, stack: str, name: str) -> str:
        return str(self.stage.output(stack, name))

    def wait_for(
        self,
        description: str,
        condition: Callable[[], T | None],
        *,
        timeout: float,
        interval: float = 0.2,
    ) -> T:
        try:
            return super().wait_for(description, condition, timeout=timeout, interval=interval)
        except WaitTimeoutError as error:
            raise WaitTimeoutError(
                f"{error} (function logs: {self.stage.logs.directory})"
            ) from None

    def resolve_url(self, url: str) -> str:
        for public, local in self.stage.api_urls().items():
            if url.startswith(public):
                return local + url[len(public) :]
        return url


def _decode(payload: bytes) -> Any:
    if not payload:
        return None
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
