"""handler_kit: settings, clock and DynamoDB helpers shared by every pattern."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from handler_kit import clock, config, dynamodb


def test_require_env_returns_the_value_or_names_the_missing_variable() -> None:
    # GIVEN an environment with one variable set and one empty
    env = {"TABLE_NAME": "jobs", "QUEUE_URL": ""}
    # WHEN read THEN the value, and a KeyError naming the variable otherwise
    assert config.require_env("TABLE_NAME", env) == "jobs"
    for name in ("QUEUE_URL", "MISSING"):
        with pytest.raises(KeyError) as raised:
            config.require_env(name, env)
        assert str(raised.value) == f"required environment variable {name} is not set"
        assert isinstance(raised.value, config.SettingError)


def test_require_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a variable in the process environment WHEN read without a mapping THEN found
    monkeypatch.setenv("HANDLER_KIT_PROBE", "yes")
    assert config.require_env("HANDLER_KIT_PROBE") == "yes"


@pytest.mark.parametrize(
    ("env", "minimum", "expected"),
    [({}, 1, 7), ({"N": ""}, 1, 7), ({"N": "3"}, 1, 3), ({"N": "0"}, 0, 0)],
)
def test_int_env_reads_integers_with_a_default(
    env: dict[str, str], minimum: int, expected: int
) -> None:
    # GIVEN a missing, empty or set variable WHEN read THEN the default or its value
    assert config.int_env(env, "N", 7, minimum=minimum) == expected


@pytest.mark.parametrize(
    ("raw", "minimum", "message"),
    [("x", 1, "must be an integer, got 'x'"), ("0", 1, "must be > 0"), ("1", 2, "must be >= 2")],
)
def test_int_env_refuses_bad_values_with_a_clear_message(
    raw: str, minimum: int, message: str
) -> None:
    # GIVEN a non-integer or too small value WHEN read THEN a ValueError that says why
    with pytest.raises(ValueError, match=message) as raised:
        config.int_env({"N": raw}, "N", 7, minimum=minimum)
    assert isinstance(raised.value, config.SettingError)


def test_timestamps_are_utc_with_milliseconds_and_whole_epoch_seconds() -> None:
    # GIVEN a moment in another timezone, with microseconds
    moment = datetime(2025, 3, 14, 11, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=2)))
    # WHEN formatted THEN UTC, milliseconds truncated, Z suffix; epoch seconds floored
    assert clock.iso_timestamp(moment) == "2025-03-14T09:00:00.123Z"
    assert clock.epoch_seconds(moment) == 1741942800
    assert clock.epoch_seconds(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)) == -1


def test_utc_now_is_aware_utc() -> None:
    # GIVEN the production clock WHEN asked THEN an aware UTC datetime
    assert clock.utc_now().utcoffset() == timedelta(0)


def test_plain_makes_dynamodb_values_json_ready() -> None:
    # GIVEN values as boto3 deserializes them WHEN converted THEN ints, floats and lists
    value = {"n": Decimal("3"), "f": Decimal("0.25"), "l": (Decimal("1"),), "s": {"b", "a"}}
    assert dynamodb.plain(value) == {"n": 3, "f": 0.25, "l": [1], "s": ["a", "b"]}


def test_attribute_values_round_trip() -> None:
    # GIVEN plain values WHEN serialized for DynamoDB and read back THEN the same values
    values = {"status": "DONE", "count": 3, "ratio": Decimal("0.5"), "tags": {"x"}, "m": {"k": 1}}
    serialized = dynamodb.to_attribute_values(values)
    assert serialized["status"] == {"S": "DONE"} and serialized["count"] == {"N": "3"}
    assert dynamodb.from_attribute_values(serialized) == {
        "status": "DONE",
        "count": 3,
        "ratio": 0.5,
        "tags": ["x"],
        "m": {"k": 1},
    }


def test_error_codes_are_read_from_client_errors() -> None:
    # GIVEN a failed condition and another error WHEN inspected THEN told apart
    failed = ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "PutItem")
    assert dynamodb.is_condition_failure(failed) and not dynamodb.is_condition_failure(throttled)
    assert dynamodb.error_code(throttled) == "ThrottlingException"
    assert dynamodb.error_code(ClientError({}, "PutItem")) == ""


@dataclass(frozen=True, kw_only=True)
class _Settings(config.EnvSettings):
    name: str
    timeout_seconds: int = config.env_int(300, "TIMEOUT_SECONDS")
    margin_ms: int = config.env_int(1000, "MARGIN_MS", minimum=0)


def test_env_fields_take_their_defaults_unless_the_environment_sets_them() -> None:
    # GIVEN a settings dataclass WHEN read from an environment setting one field
    settings = _Settings.from_env({"MARGIN_MS": "0"}, name="jobs")
    # THEN the other field keeps its default, and the field not read is passed on
    assert settings == _Settings(name="jobs", timeout_seconds=300, margin_ms=0)


def test_an_env_field_given_explicitly_overrides_its_variable() -> None:
    # GIVEN a variable set WHEN the field is also given THEN the given value is kept
    settings = _Settings.from_env({"MARGIN_MS": "5"}, name="jobs", margin_ms=0)
    assert settings.margin_ms == 0


def test_env_fields_below_their_minimum_are_refused() -> None:
    # GIVEN a zero where the minimum is 1, and -1 where it is 0
    # WHEN read THEN an InvalidSettingError (a ValueError) naming the variable
    with pytest.raises(config.InvalidSettingError, match="TIMEOUT_SECONDS must be > 0"):
        _Settings.from_env({"TIMEOUT_SECONDS": "0"}, name="jobs")
    with pytest.raises(ValueError, match="MARGIN_MS must be >= 0"):
        _Settings.from_env({"MARGIN_MS": "-1"}, name="jobs")
