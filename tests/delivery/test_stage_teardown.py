"""Deleting a pull request's stage by its stacks' names and tags (no synth of the app),
against moto standing in for CloudFormation and STS."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from localstage.deployed import main
from localstage.teardown import _wait_for_deletion, destroy_stage

APP = "serverless-patterns"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: A stack with one resource and nothing to wait for.
TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def _tags(app: str, stage: str) -> list[dict[str, str]]:
    return [{"Key": "app", "Value": app}, {"Key": "stage", "Value": stage}]


@pytest.fixture
def cloudformation(aws_session: boto3.Session, moto_endpoint: str) -> Any:
    return aws_session.client("cloudformation", endpoint_url=moto_endpoint)


def _create(
    cloudformation: Any, name: str, *, app: str | None, stage: str, protect: bool = False
) -> None:
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE,
        Tags=_tags(app, stage) if app else [],
        EnableTerminationProtection=protect,
    )


def _live(cloudformation: Any, prefix: str) -> set[str]:
    pages = cloudformation.get_paginator("describe_stacks").paginate()
    return {
        stack["StackName"]
        for page in pages
        for stack in page["Stacks"]
        if stack["StackName"].startswith(prefix) and stack["StackStatus"] != "DELETE_COMPLETE"
    }


def test_every_stack_of_the_stage_goes_and_nothing_else(
    aws_session: boto3.Session, moto_endpoint: str, cloudformation: Any
) -> None:
    # GIVEN the stage's stacks, one of them from a commit that later removed it, next to
    # another app's stack of the same stage name, another stage whose name starts alike,
    # and a protected stack
    stage = f"pr-{uuid.uuid4().int % 10**6}"
    ours = [f"{stage}-Alerts", f"{stage}-FanOutFanIn", f"{stage}-RemovedLater"]
    for name in ours:
        _create(cloudformation, name, app=APP, stage=stage)
    _create(cloudformation, f"{stage}-Billing", app="other-app", stage=stage)
    _create(cloudformation, f"{stage}0-Alerts", app=APP, stage=f"{stage}0")
    _create(cloudformation, f"{stage}-Kept", app=APP, stage=stage, protect=True)
    # AND, untagged (deployed before the app tagged its stacks), one of its stack names
    # and a name that is none of its stacks'
    _create(cloudformation, f"{stage}-EventSourcing", app=None, stage=stage)
    _create(cloudformation, f"{stage}-Unrelated", app=None, stage=stage)

    # WHEN the stage is deleted by tag, the app's stack names given for untagged stacks
    teardown = destroy_stage(
        aws_session,
        stage=stage,
        app=APP,
        names=["Alerts", "EventSourcing", "FanOutFanIn"],
        endpoint_url=moto_endpoint,
        sleep=lambda _: None,
    )

    # THEN exactly its unprotected stacks are gone; the protected one is reported
    assert sorted(teardown.deleted) == sorted([*ours, f"{stage}-EventSourcing"])
    assert teardown.protected == [f"{stage}-Kept"] and teardown.failed == {}
    assert not teardown.complete
    assert _live(cloudformation, stage) == {
        f"{stage}-Billing",
        f"{stage}0-Alerts",
        f"{stage}-Kept",
        f"{stage}-Unrelated",
    }


class _StuckOnce:
    """CloudFormation whose first deletion of ``stuck`` fails (another stack imports
    from it), and every deletion after that succeeds."""

    def __init__(self, stuck: str) -> None:
        self.stuck = stuck
        self.polls: dict[str, int] = {}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        self.polls[StackName] = self.polls.get(StackName, 0) + 1
        if StackName == self.stuck:
            return {
                "Stacks": [
                    {
                        "StackStatus": "DELETE_FAILED",
                        "StackStatusReason": "Export is in use by another stack",
                    }
                ]
            }
        status = "DELETE_IN_PROGRESS" if self.polls[StackName] == 1 else "DELETE_COMPLETE"
        return {"Stacks": [{"StackStatus": status}]}


def test_a_stack_that_fails_to_delete_is_reported_with_its_reason() -> None:
    # GIVEN two stacks being deleted, one of which fails
    fake = _StuckOnce("pr-1-Alerts")

    # WHEN their deletion is waited for
    failed = _wait_for_deletion(
        fake, ["pr-1-Alerts", "pr-1-FanOutFanIn"], 0, lambda _: None, time.monotonic() + 60
    )

    # THEN the other is waited for to the end, and the failure names its status and why
    assert failed == {"pr-1-Alerts": "DELETE_FAILED: Export is in use by another stack"}
    assert fake.polls["pr-1-FanOutFanIn"] == 2


def test_the_command_exits_1_while_a_stack_is_left(
    aws_session: boto3.Session,
    moto_endpoint: str,
    cloudformation: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a stage with one protected stack, and the environment the command reads
    stage = f"pr-{uuid.uuid4().int % 10**6}"
    _create(cloudformation, f"{stage}-Kept", app=APP, stage=stage, protect=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    credentials = aws_session.get_credentials()
    assert credentials is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_REGION", aws_session.region_name)

    # WHEN `python -m localstage.deployed destroy-stage` runs for it
    code = main(["destroy-stage", "--stage", stage, "--app", APP])

    # THEN it says what it left, and fails
    assert code == 1
    assert f"left {stage}-Kept: termination protection is on" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sweep", "destroy", "status"),
    [(1, 0, 1), (0, 1, 1), (0, 0, 0)],
    ids=["sweep-fails", "destroy-fails", "both-succeed"],
)
def test_make_teardown_destroys_the_stacks_even_when_the_sweep_fails(
    tmp_path: Path, sweep: int, destroy: int, status: int
) -> None:
    # GIVEN a stand-in for the venv's python that logs its command and exits as told
    log = tmp_path / "calls"
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$3" >> {log}\n'
        f'case "$3" in sweep-observers) exit {sweep};; destroy-stage) exit {destroy};; esac\n'
    )
    fake.chmod(0o755)

    # WHEN `make teardown` runs for an ephemeral stage (its install prerequisite taken
    # as done)
    ran = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            "install",
            "teardown",
            "STAGE=pr-7",
            f"BIN={fake.parent}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    # THEN the stacks' deletion ran whatever the sweep did, and the target fails if
    # either failed
    assert log.read_text().split() == ["sweep-observers", "destroy-stage"]
    assert (ran.returncode != 0) == bool(status), ran.stderr
