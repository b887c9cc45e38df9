"""Conformance: Scheduler refuses a request that does not fit its API model.

Each test states one rule of the EventBridge Scheduler API Reference (CreateSchedule,
Target, RetryPolicy, FlexibleTimeWindow; the constraints are those of the model
botocore ships) and checks localstage's moto (``localstage/_moto_scheduler.py``) against
it: moto alone stores any schedule it is given.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from in_process_moto import in_process_moto

from localstage import moto_patches

REGION = "us-east-1"
TARGET = {
    "Arn": "arn:aws:lambda:us-east-1:123456789012:function:executor",
    "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
    "Input": "{}",
}


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Scheduler client of moto in this process, with localstage's checks installed."""
    with in_process_moto(monkeypatch, moto_patches.install_scheduler_validation):
        client = boto3.client("scheduler", region_name=REGION)
        client.create_schedule_group(Name="group")
        yield client


def _create(scheduler: Any, **overrides: Any) -> Any:
    request: dict[str, Any] = {
        "Name": "0f8c5d7e-2b1a-4c3d-9e8f-0a1b2c3d4e5f",
        "GroupName": "group",
        "ScheduleExpression": "at(2030-01-01T00:00:00)",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": TARGET,
        **overrides,
    }
    return scheduler.create_schedule(**request)


def _refusal(scheduler: Any, **overrides: Any) -> str:
    with pytest.raises(ClientError) as refused:
        _create(scheduler, **overrides)
    error = refused.value.response["Error"]
    assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ValidationException",
        400,
    )
    return str(error["Message"])


def test_a_schedule_that_fits_the_model_is_created(scheduler: Any) -> None:
    # GIVEN a one-time schedule as the pattern creates it WHEN it is created THEN it is
    retry = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400}
    _create(scheduler, Target={**TARGET, "RetryPolicy": retry}, ActionAfterCompletion="DELETE")
    found = scheduler.get_schedule(Name="0f8c5d7e-2b1a-4c3d-9e8f-0a1b2c3d4e5f", GroupName="group")
    assert found["ScheduleExpression"] == "at(2030-01-01T00:00:00)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"Name": "tenant/0f8c"},
            "1 validation error detected: Value 'tenant/0f8c' at 'name' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+",
        ),
        (
            {"Name": "n" * 65},
            f"Value '{'n' * 65}' at 'name' failed to satisfy constraint: Member must have "
            "length less than or equal to 64",
        ),
        (
            {"Target": {**TARGET, "RetryPolicy": {"MaximumRetryAttempts": 186}}},
            "Value '186' at 'target.retryPolicy.maximumRetryAttempts' failed to satisfy "
            "constraint: Member must have value less than or equal to 185",
        ),
        (
            {"Target": {**TARGET, "RetryPolicy": {"MaximumEventAgeInSeconds": 86_401}}},
            "at 'target.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: "
            "Member must have value less than or equal to 86400",
        ),
        (
            {"ActionAfterCompletion": "delete"},
            "Value 'delete' at 'actionAfterCompletion' failed to satisfy constraint: Member "
            "must satisfy enum value set: [NONE, DELETE]",
        ),
        ({"ScheduleExpression": "at(2030-02-30T00:00:00)"}, "Invalid Schedule Expression"),
        ({"ScheduleExpression": "at(2030-01-01 00:00:00)"}, "Invalid Schedule Expression"),
        ({"ScheduleExpression": "at(2030-01-01T00:00:00Z)"}, "Invalid Schedule Expression"),
        ({"ScheduleExpression": "rate(0 minutes)"}, "Invalid Schedule Expression"),
        ({"ScheduleExpressionTimezone": "Mars/Olympus"}, "Invalid ScheduleExpressionTimezone"),
        ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}, "MaximumWindowInMinutes is required"),
    ],
    ids=[
        "name-pattern",
        "name-length",
        "retry-attempts",
        "event-age",
        "completion-enum",
        "at-no-such-day",
        "at-space",
        "at-zone-suffix",
        "rate-zero",
        "time-zone",
        "flexible-window",
    ],
)
def test_a_request_outside_the_model_is_refused_and_stores_nothing(
    scheduler: Any, overrides: dict[str, Any], message: str
) -> None:
    # GIVEN a CreateSchedule request that breaks one rule of the API
    # WHEN it is sent THEN it is a 400 ValidationException saying which rule
    assert message in _refusal(scheduler, **overrides)
    # AND no schedule was stored
    assert scheduler.list_schedules(GroupName="group")["Schedules"] == []


def test_a_one_time_schedule_already_past_is_accepted_as_aws_accepts_it(scheduler: Any) -> None:
    """CreateSchedule does not refuse an ``at()`` in the past: neither the API Reference
    nor the User Guide names such a rule, and LocalStack's AWS-validated test
    ``tests_create_schedule_with_valid_schedule_expression`` (validated against AWS on
    2025-02-02) creates ``at(2022-12-31T23:59:59)`` and records a 200 with its ARN
    (localstack/localstack, tests/aws/services/scheduler/test_scheduler.snapshot.json).
    What the Scheduler then does with it is not documented (see the Scheduler source).
    """
    _create(scheduler, ScheduleExpression="at(2022-12-31T23:59:59)")
    [summary] = scheduler.list_schedules(GroupName="group")["Schedules"]
    assert summary["State"] == "ENABLED"


def test_every_broken_rule_is_listed(scheduler: Any) -> None:
    message = _refusal(scheduler, Name="a b", Description="d" * 513)
    assert message.startswith("2 validation errors detected: Value 'a b' at 'name'")
    assert "at 'description' failed to satisfy constraint" in message


def test_lookups_by_a_name_outside_the_model_are_refused(scheduler: Any) -> None:
    for call in (scheduler.get_schedule, scheduler.delete_schedule):
        with pytest.raises(ClientError) as refused:
            call(Name="a:b", GroupName="group")
        assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_time_zones_do_not_depend_on_the_hosts_zone_database() -> None:
    """Scheduler accepts any IANA time zone name ("ScheduleExpressionTimezone: The
    timezone in which the scheduling expression is evaluated", CreateSchedule). zoneinfo
    reads the host's database, which a slim container or Windows lacks, and then falls
    back to the ``tzdata`` package, a dependency of localstage: without either, every
    zone but UTC would be refused as invalid. Checked in a process with no zone path.
    """
    code = (
        "import zoneinfo; zoneinfo.reset_tzpath(to=[]);"
        "from localstage._moto_scheduler import request_problems;"
        "zones = ['America/New_York', 'Europe/Paris', 'Asia/Kolkata'];"
        "problems = [p for z in zones for p in request_problems("
        "'CreateSchedule', {'Name': 'n', 'ScheduleExpressionTimezone': z})];"
        "assert not problems, problems"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
