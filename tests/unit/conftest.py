"""Shared fixtures for the handler unit tests.

Every pattern's ``patterns/<name>/runtime/`` folder is one Lambda code root whose modules
import each other at top level (``import job_models``), so each goes on ``sys.path`` here,
the way the Lambda runtime puts the code root on its path. Handler module names are
unique across patterns, so the code roots cannot shadow each other. The handler_kit
layer (``blocks/handler_layer``) has its ``python/`` folder on the path after the code
roots, as Lambda puts ``/opt/python`` after the function's code.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from localstage import moto_patches
from moto import mock_aws
from moto.moto_api._internal.models import moto_api_backend

from tests.support.fakes import FakeClock
from tests.support.handlers import keep_compiled_code
from tests.support.reused_clients import ReusedClients

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAYER_PYTHON_DIR = PROJECT_ROOT / "blocks" / "handler_layer" / "python"

if str(LAYER_PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_PYTHON_DIR))
for _code_root in sorted((PROJECT_ROOT / "patterns").glob("*/runtime")):
    if str(_code_root) not in sys.path:
        sys.path.insert(0, str(_code_root))

# Handler modules are imported anew for each test: compile each file once per process.
keep_compiled_code(PROJECT_ROOT)

FAKE_REGION = "us-east-1"
#: moto serves DynamoDB Streams only with account-id endpoints off (toolchain.md).
STREAMS_CONFIG = Config(account_id_endpoint_mode="disabled")


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region for every unit test, so nothing can reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", FAKE_REGION)
    monkeypatch.setenv("AWS_REGION", FAKE_REGION)


#: The services the handlers and the tests call, each with a read-only call on it.
_SERVICES_CALLED = {
    "dynamodb": "list_tables",
    "dynamodbstreams": "list_streams",
    "events": "list_event_buses",
    "lambda": "list_functions",
    "s3": "list_buckets",
    "scheduler": "list_schedules",
    "sqs": "list_queues",
}


@dataclass
class MotoSession:
    """The unit tests' one in-process moto, the boto3 session on it and the tests' clients."""

    session: boto3.Session
    #: The session's clients, made once and handed to every handler import that asks.
    reused: ReusedClients
    clients: dict[tuple[str, Config | None], Any] = field(default_factory=dict)


@pytest.fixture(scope="package")
def moto_session() -> Iterator[MotoSession]:
    """One in-process moto for all unit tests, started once and stopped after the last.

    Starting moto registers ~1,300 URL callbacks; with a new session per test that cost
    ~40 ms a test. Each test empties moto instead (see ``aws``).
    """
    # localstage's speed-ups of moto (the same answers: localstage/tests/
    # test_moto_speedups.py): about a ninth of this suite's CPU.
    with moto_patches.speed_ups_installed(), mock_aws():
        # One boto3 session for all: each new one would register boto3's customizations
        # again, and a new botocore session parses every service model anew.
        boto3_session = boto3.Session()
        reused = ReusedClients(boto3_session.client)
        # An instance attribute: boto3.client(...), as handler modules call it, comes here.
        boto3_session.client = reused.client  # type: ignore[method-assign]
        session = MotoSession(session=boto3_session, reused=reused)
        # The services' botocore models and moto backends load on their first call: one
        # read-only call each loads them now, so they are frozen with the rest (below).
        for service, list_call in _SERVICES_CALLED.items():
            client = session.session.client(service, region_name=FAKE_REGION, config=STREAMS_CONFIG)
            getattr(client, list_call)()
        # What is loaded by now (boto3, botocore, moto, hypothesis, the test modules) lives
        # as long as the tests: frozen, the garbage collector no longer walks it on each
        # full collection (~0.6 s each, some fifty in a run of the suite). Tests' objects
        # are still collected as before.
        gc.collect()
        gc.freeze()
        try:
            yield session
        finally:
            gc.unfreeze()


@pytest.fixture
def aws(moto_session: MotoSession) -> Iterator[None]:
    """An empty in-process moto AWS for one test.

    Clients created inside (including at handler module import) talk to moto. Nothing an
    earlier test made is left: moto's reset API empties every backend.
    """
    moto_api_backend.reset()
    boto3.DEFAULT_SESSION = moto_session.session
    yield
    boto3.DEFAULT_SESSION = None
    moto_session.reused.forget_test_hooks()


@pytest.fixture
def aws_client(aws: None, moto_session: MotoSession) -> Callable[..., Any]:
    """``aws_client(service, config=None)``: a client for the test to set up and inspect moto.

    Made once per service and config and reused, as creating one costs ~10 ms. Handler
    modules call ``boto3.client`` at each fresh import, as a cold start does, and get the
    session's reused client for the same settings (:class:`ReusedClients`).
    """

    def client(service: str, config: Config | None = None) -> Any:
        key = (service, config)
        if key not in moto_session.clients:
            moto_session.clients[key] = boto3.client(
                service, region_name=FAKE_REGION, config=config
            )
        return moto_session.clients[key]

    return client


@dataclass(frozen=True)
class StreamClients:
    """The moto clients of a pattern whose table has a stream that feeds a function."""

    dynamodb: Any
    streams: Any
    sqs: Any


@pytest.fixture
def stream_clients(
    aws_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> StreamClients:
    """DynamoDB, DynamoDB Streams and SQS clients for a pattern whose table has a stream.

    Account-id endpoints are off for them and, through the environment, for the
    handlers' own clients: moto answers DynamoDB Streams only that way.
    """
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    return StreamClients(
        dynamodb=aws_client("dynamodb", STREAMS_CONFIG),
        streams=aws_client("dynamodbstreams", STREAMS_CONFIG),
        sqs=aws_client("sqs"),
    )


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at ``tests.support.fakes.START`` that only moves when told to."""
    return FakeClock()
