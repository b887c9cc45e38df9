"""Building a deployed target: no AWS unless asked, and usage errors for options that do not fit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from localstage.deployed import DeployedTarget, TargetConfigurationError

from tests.delivery.conftest import REGION, REPO_ROOT, STAGE
from tests.support.e2e_target import deployed_target_from_options


# no AWS unless asked ---------------------------------------------------------------
class _NoAws:
    """Stands in for boto3.Session: building one means something tried to reach AWS."""

    built: list[tuple[Any, ...]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _NoAws.built.append(args)
        raise AssertionError("a boto3 session was built")


def test_the_local_target_builds_no_aws_session(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN boto3 sessions that record being built
    monkeypatch.setattr(boto3, "Session", _NoAws)

    # WHEN the options ask for the local stage (the default)
    deployed = deployed_target_from_options("local", None, None)

    # THEN there is no deployed target and no session was built
    assert deployed is None
    assert _NoAws.built == []


@pytest.mark.parametrize(
    ("target", "stage", "wait_scale", "message"),
    [
        ("aws", None, None, "--target aws needs --stage NAME (e.g. --stage pr-42)"),
        ("local", "pr-42", None, "--stage and --wait-scale need --target aws"),
        ("aws", "Bad Name", None, "invalid stage name 'Bad Name'"),
        ("aws", "pr-42", 0.0, "the wait scale must be positive, got 0"),
    ],
)
def test_options_that_do_not_fit_are_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    stage: str | None,
    wait_scale: float | None,
    message: str,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDDELIVERYTESTS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_REGION", REGION)
    with pytest.raises(pytest.UsageError) as raised:
        deployed_target_from_options(target, stage, wait_scale)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def _no_aws_environment(home: Path) -> dict[str, str]:
    """This process's environment without any AWS credentials, config or metadata."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_a_session_without_credentials_cannot_build_a_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an environment without AWS credentials, config files or instance metadata
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in _no_aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    session = boto3.Session(region_name=REGION)

    # WHEN a target is built THEN it fails at once with what to set
    with pytest.raises(TargetConfigurationError, match=r"^no AWS credentials for --target aws"):
        DeployedTarget(STAGE, session=session)


def test_pytest_with_target_aws_and_no_credentials_stops_with_one_line(tmp_path: Path) -> None:
    # GIVEN an environment with no AWS credentials at all
    env = _no_aws_environment(tmp_path)

    # WHEN the e2e suite is started against a deployed stage
    started = time.monotonic()
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "tests/e2e", "--target", "aws", "--stage", STAGE),
            *("--collect-only", "-p", "no:cacheprovider", "-p", "no:xdist"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # THEN pytest stops with a usage error of one line, before collecting anything,
    # without waiting on the network
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert errors == [
        "ERROR: no AWS credentials for --target aws: set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (in CI: aws-actions/configure-aws-credentials)"
    ]
    assert time.monotonic() - started < 60
