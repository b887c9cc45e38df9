"""The GitHub Actions workflows: actionlint reports nothing, and they do what the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
#: An action pinned to a full commit with the release it is, e.g. `@<40 hex> # v4.2.2`.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def actionlint() -> str:
    """The actionlint binary of this virtualenv (requirements-dev.txt), else on PATH."""
    beside_python = Path(sys.executable).parent / "actionlint"
    found = str(beside_python) if beside_python.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: run `make install` (requirements-dev.txt)")
    return found


def _run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-no-color", *map(str, files)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _load(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    return {("on" if key is True else str(key)): value for key, value in loaded.items()}


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def test_actionlint_reports_nothing() -> None:
    # GIVEN every workflow of the repository
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["main.yml", "pull-request.yml"]

    # WHEN actionlint checks them THEN it reports nothing
    result = _run_actionlint(*files)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    # GIVEN a workflow with an unknown context and a job that needs a missing job
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nothing\n"
        "    steps:\n      - run: echo ${{ github.nope.nope }}\n"
    )

    # WHEN actionlint checks it THEN it fails and says why (so silence above means clean)
    result = _run_actionlint(broken)
    assert result.returncode == 1
    assert "nothing" in result.stdout


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    for name in ("main.yml", "pull-request.yml"):
        workflow = (WORKFLOWS / name).read_text()
        uses = re.findall(r"uses: (.+)$", workflow, flags=re.MULTILINE)
        assert uses
        assert [u for u in uses if not PINNED.match(u.strip())] == [], name


def test_pull_requests_deploy_their_own_stage_with_oidc_and_destroy_it() -> None:
    workflow = _load("pull-request.yml")
    jobs = workflow["jobs"]

    # Triggered by the pull request's life, one run at a time per pull request
    assert workflow["on"]["pull_request"]["types"] == [
        "opened",
        "synchronize",
        "reopened",
        "closed",
    ]
    assert workflow["concurrency"]["group"].endswith("${{ github.event.pull_request.number }}")
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"]["STAGE"] == "pr-${{ github.event.pull_request.number }}"

    # The offline checks first, e2e on localstage included
    runs = [step.get("run", "") for step in _steps(workflow, "test")]
    assert runs[2:] == [
        "make install",
        "make lint",
        ".venv/bin/pytest tests/unit tests/infra tests/delivery tests/localstage",
        ".venv/bin/pytest tests/e2e",
        'make synth STAGE="$STAGE"',
    ]

    # Then the stage, with credentials from OIDC only, and the e2e suite against it
    deploy = jobs["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    assert [s.get("run") for s in _steps(workflow, "deploy")][-2:] == [
        'make deploy STAGE="$STAGE" TUNING=local',
        '.venv/bin/pytest tests/e2e --target aws --stage "$STAGE"',
    ]
    credentials = next(
        s for s in _steps(workflow, "deploy") if "configure-aws-credentials" in s.get("uses", "")
    )
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert not any("secret" in str(value).lower() for value in credentials["with"].values())

    # And the stage goes when the pull request closes, or when deploy or e2e failed
    destroy = jobs["destroy"]
    assert destroy["needs"] == "deploy"
    assert destroy["if"].startswith("always() &&")
    assert "github.event.action == 'closed'" in destroy["if"]
    assert "needs.deploy.result == 'failure'" in destroy["if"]
    assert _steps(workflow, "destroy")[-1]["run"] == 'make destroy STAGE="$STAGE"'


def test_main_deploys_staging_then_prod_behind_an_approval() -> None:
    workflow = _load("main.yml")
    jobs = workflow["jobs"]
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert (jobs["staging"]["needs"], jobs["prod"]["needs"]) == ("test", "staging")
    assert [s.get("run") for s in _steps(workflow, "staging")][-2:] == [
        "make deploy STAGE=staging REQUIRE_APPROVAL=never",
        '.venv/bin/pytest tests/e2e --target aws --stage staging -m "not short_hops"',
    ]
    # Required reviewers are configured on the `production` environment in GitHub.
    assert jobs["prod"]["environment"] == "production"
    assert _steps(workflow, "prod")[-1]["run"] == "make deploy STAGE=prod REQUIRE_APPROVAL=never"
    for job in ("staging", "prod"):
        assert jobs[job]["permissions"] == {"id-token": "write", "contents": "read"}
