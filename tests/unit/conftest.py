"""Shared fixtures for the handler unit tests.

Every pattern folder under ``functions/`` is one Lambda code root whose modules import
each other at top level (``import jobs``), so each folder goes on ``sys.path`` here, the
way the Lambda runtime puts the code root on its path. Handler module names are
unique across folders, so the folders cannot shadow each other. ``functions/shared``
is not a code root but the handler_kit layer: its ``python/`` folder goes on the path
after the code roots, as Lambda puts ``/opt/python`` after the function's code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from tests.support.fakes import FakeClock

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
SHARED_DIR = FUNCTIONS_DIR / "shared"
LAYER_PYTHON_DIR = SHARED_DIR / "python"

if str(LAYER_PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_PYTHON_DIR))
for _code_root in sorted(path for path in FUNCTIONS_DIR.iterdir() if path.is_dir()):
    if _code_root == SHARED_DIR or _code_root.name.startswith((".", "_")):
        continue
    if str(_code_root) not in sys.path:
        sys.path.insert(0, str(_code_root))

FAKE_REGION = "us-east-1"
# moto resets boto3's default session on every start, which throws away botocore's
# parsed service models (~80 ms a client): share one loader across tests instead.
_SHARED_LOADER = botocore.loaders.create_loader()


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


@pytest.fixture
def aws() -> Iterator[None]:
    """An in-process moto AWS for the duration of one test.

    Clients created inside (including at handler module import) talk to moto.
    """
    with mock_aws():
        session = botocore.session.get_session()
        session.register_component("data_loader", _SHARED_LOADER)
        boto3.setup_default_session(botocore_session=session)
        yield
        boto3.DEFAULT_SESSION = None


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at ``tests.support.fakes.START`` that only moves when told to."""
    return FakeClock()
