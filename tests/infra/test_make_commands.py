"""The Makefile's CDK commands on a synthesized stage: which stacks they select, and a
synth that fails on any finding (the pinned CLI, no AWS account)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.stage import pattern_stack_classes
from tests.infra.conftest import SynthesizedStage

ROOT = Path(__file__).resolve().parents[2]


#: What the pinned CDK CLI prints when a command's stack selection finds nothing to act on
#: (`--all` takes only top-level stacks; a stage's stacks are nested in its cdk.Stage).
_SELECTION_FAILURES = ("No stack found", "No stacks match", "specify which stacks")


def _run_make_command(target: str, stage: str, app: Path) -> str:
    """Run what ``make <target> STAGE=<stage>`` runs (as ``make -n`` prints it) on the
    synthesized assembly ``app`` with the pinned CLI and no AWS account; its output."""
    printed = subprocess.run(
        ["make", "-n", target, f"STAGE={stage}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    (command,) = [line for line in printed if f"/cdk {target} " in line]
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("AWS_")
    } | {
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    ran = subprocess.run(
        f"{command} --app {app}",
        shell=True,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"exit {ran.returncode}\n{ran.stdout}{ran.stderr}"


@pytest.mark.parametrize("target", ["deploy", "destroy"])
def test_make_deploy_and_destroy_select_every_stack_of_the_stage(
    ephemeral: SynthesizedStage, target: str
) -> None:
    # GIVEN `make <target>` for the stage WHEN the pinned CLI runs it on the stage's
    # synthesized assembly with no AWS account
    output = _run_make_command(target, ephemeral.name, ephemeral.outdir)

    # THEN it selected the stage's stacks and stopped only where it needed AWS
    assert not any(failure in output for failure in _SELECTION_FAILURES), output
    assert "Unable to resolve AWS account" in output, output
    if target == "destroy":
        stacks = len(pattern_stack_classes()) + 1  # and Alerts
        assert f"destroying... [1/{stacks}]" in output, output


def test_make_synth_fails_on_a_finding_in_any_stack_of_the_stage(
    ephemeral: SynthesizedStage, tmp_path: Path
) -> None:
    # GIVEN the stage's assembly with one error annotation in a pattern stack, as cdk-nag
    # leaves one for an unacknowledged finding (the CLI fails a synth on those only in
    # the stacks it selected)
    app = tmp_path / "assembly"
    shutil.copytree(ephemeral.outdir, app)
    nested = app / f"assembly-{ephemeral.name}"
    manifest = json.loads((nested / "manifest.json").read_text())
    pattern = next(iter(ephemeral.stage.pattern_stacks))
    (stack,) = [
        artifact
        for artifact in manifest["artifacts"].values()
        if artifact.get("displayName") == f"{ephemeral.name}/{pattern}"
    ]
    metadata_file = nested / stack["additionalMetadataFile"]
    metadata = json.loads(metadata_file.read_text())
    finding = "AwsSolutions-SQS3: The SQS queue does not have a DLQ enabled."
    metadata[f"/{ephemeral.name}/{pattern}"].append({"type": "aws:cdk:error", "data": finding})
    metadata_file.write_text(json.dumps(metadata))

    # WHEN `make synth` for the stage runs on it
    output = _run_make_command("synth", ephemeral.name, app)

    # THEN the synth fails and names the stack with the finding
    assert output.startswith("exit 1"), output
    assert "Synthesis finished with errors" in output and f"{ephemeral.name}/{pattern}" in output


@pytest.mark.parametrize("target", ["synth", "diff", "deploy"])
def test_make_hands_tuning_and_tracing_to_synth_diff_and_deploy(
    target: str,
) -> None:
    # GIVEN a stage deployed with TUNING and TRACING (the pull request workflow's deploy
    # passes TUNING=local)
    options = ["STAGE=pr-7", "TUNING=local", "TRACING=true"]

    # WHEN make prints what `make <target>` runs with the same variables
    printed = subprocess.run(
        ["make", "-n", target, *options], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    (command,) = [line for line in printed if f"/cdk {target} " in line]

    # THEN the CLI gets them, so a diff compares the stage as deploy would deploy it
    assert "-c stage=pr-7 -c tuning=local -c tracing=true" in command, command


def test_make_takes_the_stage_cdk_json_names_when_none_is_given(tmp_path: Path) -> None:
    # GIVEN the app's Makefile with a cdk.json whose default_stage is not dev
    # (and the files its install target depends on, which `make -n` only names)
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "package.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "package-lock.json", tmp_path)
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    cdk_json["context"]["default_stage"] = "sandbox"
    (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    environment = {key: value for key, value in os.environ.items() if key != "STAGE"}

    # WHEN make prints what `make deploy` runs without STAGE
    printed = subprocess.run(
        ["make", "-n", "deploy"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    (command,) = [line for line in printed if "/cdk deploy " in line]

    # THEN it deploys that stage, as `cdk deploy` without `-c stage` would
    assert "'sandbox/*' -c stage=sandbox " in command, command


@pytest.mark.parametrize("stage", ["pr-7", "prod"])
def test_make_destroy_sweeps_the_stages_e2e_observers_first(stage: str) -> None:
    # GIVEN a stage the e2e suite may have run against (`--target aws --stage NAME`), whose
    # killed runs may leave observer queues and rules on its bus that no stack owns
    # WHEN make prints what `make destroy` runs
    printed = subprocess.run(
        ["make", "-n", "destroy", f"STAGE={stage}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    commands = [line for line in printed if "sweep-observers" in line or "/cdk destroy " in line]

    # THEN its observers are swept before its stacks are destroyed, and a failed sweep
    # does not keep the stacks (make's "-": the error is reported, the recipe goes on)
    sweep, destroy = commands
    assert sweep.endswith(f"-m localstage.deployed sweep-observers --stage {stage}")
    assert "/cdk destroy " in destroy
    makefile = (ROOT / "Makefile").read_text()
    assert "\t-$(BIN)/python -m localstage.deployed sweep-observers --stage $(STAGE)\n" in makefile
