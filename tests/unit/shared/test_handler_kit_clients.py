"""handler_kit.clients: how many times a call is attempted, and how long one may stall."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from handler_kit.clients import (
    api_client_config,
    client_config,
    one_attempt_client_config,
    worker_client_config,
)

#: Nothing listens here: every attempt is refused at once.
CLOSED_ENDPOINT = "http://127.0.0.1:9"


def _attempts_against_a_closed_port(config: Config) -> int:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=CLOSED_ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )
    sent: list[Any] = []
    client.meta.events.register("before-send.dynamodb.GetItem", lambda **_: sent.append(1))
    with pytest.raises(EndpointConnectionError):
        client.get_item(TableName="t", Key={"k": {"S": "a"}})
    return len(sent)


@pytest.mark.parametrize("attempts", [3, 5])
def test_a_call_is_attempted_as_many_times_as_configured_in_all(attempts: int) -> None:
    # GIVEN a client of client_config(max_attempts=N) WHEN every attempt fails to connect
    # THEN the call was sent N times: N in all, not N retries (botocore's max_attempts
    # key counts retries, which made every count one too many)
    assert _attempts_against_a_closed_port(client_config(max_attempts=attempts)) == attempts


def test_an_api_client_fits_a_stalled_attempt_and_its_retry_in_ten_seconds() -> None:
    # GIVEN an API function's client settings
    config = api_client_config()
    # THEN three attempts in all, and two stalled attempts take under the function's 10 s
    assert _attempts_against_a_closed_port(config) == 3
    assert 2 * (config.connect_timeout + config.read_timeout) < 10


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (api_client_config(max_pool_connections=16), (1, 3, 3, 16)),
        (worker_client_config(), (1, 2, 5, 10)),
        (one_attempt_client_config(max_pool_connections=16), (1, 2, 1, 16)),
    ],
    ids=["api", "worker", "one-attempt"],
)
def test_each_client_profile_has_its_timeouts_attempts_and_connections(
    config: Config, expected: tuple[int, int, int, int]
) -> None:
    # GIVEN a client profile WHEN its settings are read THEN its connect and read
    # timeouts, attempts in all and pooled connections are the documented ones
    retries: Any = config.retries
    assert (
        config.connect_timeout,
        config.read_timeout,
        retries["total_max_attempts"],
        config.max_pool_connections,
    ) == expected
