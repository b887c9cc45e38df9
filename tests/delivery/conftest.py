"""Stand-ins for AWS: a moto server on loopback, and an HTTP server that checks SigV4.

The deployed target (:class:`localstage.deployed.DeployedTarget`) is tested against
them with the same boto3 calls it makes to AWS, so its plumbing (discovery, signing,
waiting, the queue, bucket, table and function helpers) is checked offline.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.credentials
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from localstage.deployed import DeployedTarget
from moto.server import ThreadedMotoServer

#: Credentials and region of the stand-in account (moto accepts any credentials).
ACCESS_KEY = "AKIDDELIVERYTESTS"
SECRET_KEY = "delivery-tests-secret"
REGION = "eu-west-1"


@pytest.fixture(scope="package")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port, standing in for AWS's API endpoints."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # Lambda without Docker: Invoke answers with the payload it was given.
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    yield endpoint
    server.stop()


@pytest.fixture(scope="package")
def aws_session() -> boto3.Session:
    """A session with the stand-in account's credentials and region."""
    return boto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )


@dataclass
class Exchange:
    """One request the signature-checking server received, and its verdict."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool
    valid: bool
    reason: str


@dataclass
class SigV4Checker:
    """An HTTP server that recomputes each request's SigV4 signature.

    It answers 200 with ``{"valid": true}`` when the ``Authorization`` header is a
    SigV4 signature, for ``execute-api`` in ``region``, that botocore computes the same
    from ``credentials`` and the signed headers; 403 otherwise (as API Gateway would).
    """

    credentials: botocore.credentials.Credentials
    region: str
    exchanges: list[Exchange] = field(default_factory=list)
    url: str = ""
    #: Answer this many of the next requests with API Gateway's throttling 429.
    throttle_next: int = 0

    def check(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[bool, str]:
        authorization = headers.get("authorization", "")
        if not authorization:
            return False, "Missing Authentication Token"
        algorithm, _, fields = authorization.partition(" ")
        parts = dict(part.strip().split("=", 1) for part in fields.split(","))
        if algorithm != "AWS4-HMAC-SHA256" or set(parts) != {
            "Credential",
            "SignedHeaders",
            "Signature",
        }:
            return False, f"malformed Authorization header: {authorization}"
        key, date, region, service, terminator = parts["Credential"].split("/")
        if (key, region, service, terminator) != (
            self.credentials.access_key,
            self.region,
            "execute-api",
            "aws4_request",
        ):
            return False, f"wrong credential scope: {parts['Credential']}"
        signed = parts["SignedHeaders"].split(";")
        if not {"host", "x-amz-date"} <= set(signed):
            return False, f"host and x-amz-date must be signed: {signed}"
        request = AWSRequest(
            method=method, url=url, data=body, headers={name: headers[name] for name in signed}
        )
        request.context["timestamp"] = headers["x-amz-date"]
        if not headers["x-amz-date"].startswith(date):
            return False, "the credential date is not the request's date"
        signer = SigV4Auth(self.credentials, "execute-api", self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if expected != parts["Signature"]:
            return False, "The request signature we calculated does not match"
        return True, "ok"


@pytest.fixture(scope="package")
def sigv4_checker() -> Iterator[SigV4Checker]:
    """A :class:`SigV4Checker` serving on a free loopback port."""
    checker = SigV4Checker(
        credentials=botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), region=REGION
    )

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            url = f"http://{headers['host']}{self.path}"
            valid, reason = checker.check(self.command, url, headers, body)
            checker.exchanges.append(
                Exchange(
                    self.command,
                    self.path,
                    headers,
                    body,
                    "authorization" in headers,
                    valid,
                    reason,
                )
            )
            payload = json.dumps({"valid": valid, "message": reason}).encode()
            status = 200 if valid else 403
            if checker.throttle_next > 0:
                checker.throttle_next -= 1
                status, payload = 429, b'{"message": "Too Many Requests"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    checker.url = f"http://{host!s}:{port}/api/"
    yield checker
    server.shutdown()
    thread.join()


# ------------------------------------------------------------- a deployed stage on the stand-in

STAGE = "pr-42"
STACK = "DecoupledInvocation"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _template(api_url: str) -> dict[str, Any]:
    """A small stand-in of a pattern stack: a queue, a bucket, a table and their outputs."""
    return {
        "Resources": {
            "TaskQueue": {"Type": "AWS::SQS::Queue"},
            "InputBucket": {"Type": "AWS::S3::Bucket"},
            "JobTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "job_id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
                },
            },
        },
        "Outputs": {
            "ApiUrl": {"Value": api_url},
            "TaskQueueUrl": {"Value": {"Ref": "TaskQueue"}},
            "InputBucketName": {"Value": {"Ref": "InputBucket"}},
            "JobTableName": {"Value": {"Ref": "JobTable"}},
        },
    }


@pytest.fixture(scope="package")
def deployed(
    moto_endpoint: str, aws_session: boto3.Session, sigv4_checker: SigV4Checker
) -> dict[str, str]:
    """Stage pr-42's stack on the stand-in (and another stage's, which must not be used)."""
    cloudformation = aws_session.client("cloudformation", endpoint_url=moto_endpoint)
    for stage, api_url in ((STAGE, sigv4_checker.url), ("pr-7", "http://127.0.0.1:9/other/")):
        cloudformation.create_stack(
            StackName=f"{stage}-{STACK}", TemplateBody=json.dumps(_template(api_url))
        )
    (stack,) = cloudformation.describe_stacks(StackName=f"{STAGE}-{STACK}")["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


@pytest.fixture
def target(
    moto_endpoint: str, aws_session: boto3.Session, deployed: dict[str, str]
) -> DeployedTarget:
    return DeployedTarget(
        STAGE, session=aws_session, endpoint_url=moto_endpoint, wait_scale=1.0, min_interval=0
    )
