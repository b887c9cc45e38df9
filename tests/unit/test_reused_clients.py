"""The unit suite's reused boto3 clients: one per settings, and no test sees another's hooks."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.reused_clients import ReusedClients


class HookRanError(Exception):
    pass


def _refuse(**_: Any) -> None:
    raise HookRanError


def test_the_same_settings_get_the_same_client_and_other_settings_another(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the reused clients of a boto3 session
    reused = ReusedClients(boto3.Session().client)

    # WHEN clients are asked for with the same and with other settings or environment
    first = reused.client("sqs", config=Config(retries={"mode": "standard"}))
    again = reused.client("sqs", config=Config(retries={"mode": "standard"}))
    other_config = reused.client("sqs", config=Config(retries={"mode": "legacy"}))
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    other_environment = reused.client("sqs", config=Config(retries={"mode": "standard"}))

    # THEN equal settings share one client, and any difference makes its own
    assert again is first
    assert other_config is not first
    assert other_environment is not first


def test_a_hook_a_test_registered_is_gone_after_it(aws: None) -> None:
    # GIVEN a reused client on which a test registered a hook that refuses every call
    reused = ReusedClients(boto3.Session().client)
    sqs = reused.client("sqs", region_name="us-east-1")
    sqs.meta.events.register("before-call.sqs.ListQueues", _refuse)
    with pytest.raises(HookRanError):
        sqs.list_queues()

    # WHEN the test ends
    reused.forget_test_hooks()

    # THEN the next test gets the same client, without the hook
    assert reused.client("sqs", region_name="us-east-1") is sqs
    assert sqs.list_queues().get("QueueUrls", []) == []
    # AND forgetting twice (or a hook the test removed itself) is harmless
    reused.forget_test_hooks()
