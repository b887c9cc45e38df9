"""How localstage runs the app's CDK CLI: the command and environment it gives it.

A stand-in ``cdk`` (a shell script in the app folder's ``node_modules/.bin``) records
what it was run with, so no real synth runs here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from localstage import assembly
from localstage.assembly import AssemblyError, synthesize_with_cli

_RECORDING_CLI = """#!/bin/sh
printf '{"args": "%s", "validation": "%s"}' "$*" "${CDK_VALIDATION-unset}" > "$RECORD"
[ -n "$FAIL" ] && { echo "synth refused" >&2; exit 1; }
exit 0
"""


@pytest.fixture
def recording_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app folder whose CDK CLI records its arguments and ``CDK_VALIDATION``."""
    cli = tmp_path / "app" / "node_modules" / ".bin" / "cdk"
    cli.parent.mkdir(parents=True)
    cli.write_text(_RECORDING_CLI)
    cli.chmod(0o755)
    monkeypatch.setattr(assembly, "PROJECT_ROOT", tmp_path / "app")
    monkeypatch.delenv("CDK_VALIDATION", raising=False)
    monkeypatch.delenv("FAIL", raising=False)
    record = tmp_path / "record.json"
    monkeypatch.setenv("RECORD", str(record))
    return record


def test_a_synth_keeps_cdks_template_validation_by_default(
    recording_cli: Path, tmp_path: Path
) -> None:
    # WHEN stage local is synthesized as the demo does
    found = synthesize_with_cli("local", tmp_path / "out")

    # THEN the CLI selects the stage's stacks, and CDK's validation is left as cdk.json asks
    recorded = json.loads(recording_cli.read_text())
    assert recorded["args"] == f"synth local/* -c stage=local --output {tmp_path / 'out'} --quiet"
    assert recorded["validation"] == "unset"
    assert found == tmp_path / "out" / "assembly-local"


def test_a_synth_without_template_validation_turns_it_off_for_that_synth_only(
    recording_cli: Path, tmp_path: Path
) -> None:
    # WHEN a caller that validates the templates elsewhere asks for a synth without it
    synthesize_with_cli("local", tmp_path / "out", validate_templates=False)

    # THEN the CLI runs with CDK_VALIDATION=false, and this process's environment is untouched
    assert json.loads(recording_cli.read_text())["validation"] == "false"
    assert "CDK_VALIDATION" not in os.environ


def test_a_refused_synth_raises_with_the_clis_words(
    recording_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a CLI that refuses the synth
    monkeypatch.setenv("FAIL", "1")

    # WHEN the stage is synthesized THEN the error carries what the CLI said
    with pytest.raises(AssemblyError, match="synth refused"):
        synthesize_with_cli("local", tmp_path / "out")
