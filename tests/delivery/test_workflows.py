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


def _credentials(workflow: dict[str, Any], job: str) -> dict[str, Any]:
    """The `with:` of the job's aws-actions/configure-aws-credentials step."""
    (step,) = [s for s in _steps(workflow, job) if "configure-aws-credentials" in s.get("uses", "")]
    found: dict[str, Any] = step["with"]
    return found


_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||==|!=|!|'[^']*'|[A-Za-z_][\w.-]*(?:\(\))?)")


def evaluate(expression: str, context: dict[str, str]) -> bool:
    """Evaluate a workflow `if:` the way GitHub does, for the subset these workflows use.

    Literals in single quotes, context values by dotted name (`needs.deploy.result`),
    `always()`, `==`, `!=`, `!`, `&&`, `||` and parentheses. GitHub compares strings
    case-insensitively; the values here are lowercase already.
    """
    python: list[str] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match, f"cannot read {text[position:]!r}"
        token, position = match.group(1), match.end()
        if token == "always()":
            python.append("True")
        elif token in ("&&", "||", "!"):
            python.append({"&&": " and ", "||": " or ", "!": " not "}[token])
        elif token in ("(", ")", "==", "!="):
            python.append(f" {token} ")
        elif token.startswith("'"):
            python.append(repr(token[1:-1]))
        else:
            python.append(repr(context[token]))
    # Only the tokens above reach eval, with no builtins: a workflow cannot run code here.
    return bool(eval("".join(python), {"__builtins__": {}}))


def test_actionlint_reports_nothing() -> None:
    # GIVEN every workflow of the repository
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["main.yml", "pull-request-closed.yml", "pull-request.yml"]

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
    for name in ("main.yml", "pull-request.yml", "pull-request-closed.yml"):
        workflow = (WORKFLOWS / name).read_text()
        uses = re.findall(r"uses: (.+)$", workflow, flags=re.MULTILINE)
        assert uses
        assert [u for u in uses if not PINNED.match(u.strip())] == [], name


UNIT_TESTS_ON_314 = (
    'make install VENV=.venv-3.14 PYTHON="$PYTHON314"\n.venv-3.14/bin/pytest tests/unit\n'
)


@pytest.mark.parametrize("name", ["pull-request.yml", "main.yml"])
def test_the_unit_tests_also_run_on_lambda_s_python_3_14(name: str) -> None:
    """localstage runs handlers on the machine's Python 3.11, Lambda on 3.14: CI runs
    the unit tests on 3.14 too, in a virtualenv made with that Python by make install."""
    steps = _steps(_load(name), "test")
    [setup] = [s for s in steps if s.get("id") == "python314"]
    assert "actions/setup-python@" in setup["uses"]
    assert setup["with"]["python-version"] == "3.14"
    [unit] = [s for s in steps if s.get("run") == UNIT_TESTS_ON_314]
    assert unit["env"]["PYTHON314"] == "${{ steps.python314.outputs.python-path }}"
    # Last, so that the steps before it keep the workflow's Python as python3
    assert steps.index(setup) < steps.index(unit) == len(steps) - 1


def test_pull_requests_deploy_their_own_stage_with_oidc_and_destroy_it() -> None:
    workflow = _load("pull-request.yml")
    jobs = workflow["jobs"]

    # Triggered by the pull request's life, one run at a time per pull request
    assert workflow["on"]["pull_request"]["types"] == ["opened", "synchronize", "reopened"]
    assert workflow["concurrency"]["group"].endswith("${{ github.event.pull_request.number }}")
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"]["STAGE"] == "pr-${{ github.event.pull_request.number }}"

    # The offline checks first, e2e on localstage included
    runs = [step.get("run", "") for step in _steps(workflow, "test")]
    assert runs[2:] == [
        "make install",
        "make lint",
        ".venv/bin/pytest tests/unit tests/infra tests/delivery localstage/tests",
        ".venv/bin/pytest tests/e2e --delivery once --delivery duplicate",
        'make synth STAGE="$STAGE"',
        "",  # Python 3.14, for the unit tests below
        UNIT_TESTS_ON_314,
    ]

    # Then the stage, with credentials from OIDC only, and the e2e suite against it
    deploy = jobs["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    assert [s.get("run") for s in _steps(workflow, "deploy")][-2:] == [
        'make deploy STAGE="$STAGE" TUNING=local',
        '.venv/bin/pytest tests/e2e --target aws --stage "$STAGE"',
    ]
    credentials = _credentials(workflow, "deploy")
    assert not any("secret" in str(value).lower() for value in credentials.values())

    # And the stage goes when deploy or e2e failed (pull-request-closed.yml: on close),
    # by its stacks' names and tags, without building the pull request's code
    destroy = jobs["destroy"]
    assert destroy["needs"] == "deploy"
    assert destroy["if"].startswith("always() &&")
    assert _steps(workflow, "destroy")[-1]["run"] == 'make teardown STAGE="$STAGE"'


def test_a_closed_pull_requests_stage_goes_even_with_a_merge_conflict() -> None:
    """`pull_request` runs nothing for a pull request with a merge conflict, closing
    included; `pull_request_target` runs the base branch's workflow all the same. It
    must not run the pull request's code: it checks out the base branch and deletes the
    stage by tag (`make teardown` synthesizes nothing)."""
    workflow = _load("pull-request-closed.yml")
    assert workflow["on"] == {"pull_request_target": {"types": ["closed"]}}
    # The pull request workflow's concurrency group: a running deployment finishes first
    assert workflow["concurrency"] == _load("pull-request.yml")["concurrency"]
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    (checkout,) = [s for s in steps if "actions/checkout@" in s.get("uses", "")]
    assert "with" not in checkout  # the base branch, never the pull request's head
    assert steps[-1]["run"] == 'make teardown STAGE="$STAGE"'
    assert [s.get("run") for s in steps if "run" in s] == [
        "make install",
        'make teardown STAGE="$STAGE"',
    ]
    for repository, runs in (("octo/shop", True), ("fork/shop", False)):
        context = {
            "github.event.pull_request.head.repo.full_name": repository,
            "github.repository": "octo/shop",
        }
        assert evaluate(job["if"], context) is runs


@pytest.mark.parametrize(
    ("workflow_name", "job", "variable", "environment"),
    [
        ("pull-request.yml", "deploy", "AWS_PR_ROLE_ARN", None),
        ("pull-request.yml", "destroy", "AWS_PR_ROLE_ARN", None),
        ("pull-request-closed.yml", "destroy", "AWS_PR_ROLE_ARN", "pr-teardown"),
        ("main.yml", "staging", "AWS_STAGING_ROLE_ARN", "staging"),
        ("main.yml", "prod", "AWS_PRODUCTION_ROLE_ARN", "production"),
    ],
)
def test_each_job_assumes_the_role_of_its_environment(
    workflow_name: str, job: str, variable: str, environment: str | None
) -> None:
    # GIVEN a job that reaches AWS
    workflow = _load(workflow_name)

    # THEN it assumes its environment's role, from a repository variable
    assert _credentials(workflow, job)["role-to-assume"] == f"${{{{ vars.{variable} }}}}"
    assert workflow["jobs"][job]["permissions"] == {"id-token": "write", "contents": "read"}
    # AND declares exactly its GitHub environment, which sets the OIDC subject its role
    # trusts: none for pull requests (`repo:O/R:pull_request`), else
    # `repo:O/R:environment:<name>` (`pr-teardown` for the closed pull request's job,
    # whose `pull_request_target` event has no documented subject)
    assert workflow["jobs"][job].get("environment") == environment


def test_only_the_deploy_jobs_reach_aws() -> None:
    for name, jobs in (
        ("pull-request.yml", {"deploy", "destroy"}),
        ("pull-request-closed.yml", {"destroy"}),
        ("main.yml", {"staging", "prod"}),
    ):
        workflow = _load(name)
        with_credentials = {
            job
            for job in workflow["jobs"]
            if any("configure-aws-credentials" in s.get("uses", "") for s in _steps(workflow, job))
        }
        assert with_credentials == jobs, name
        assert all(
            "id-token" not in workflow["jobs"][j].get("permissions", {})
            for j in set(workflow["jobs"]) - jobs
        ), name


@pytest.mark.parametrize(
    ("action", "deploy_result", "same_repository", "destroys"),
    [
        ("synchronize", "success", True, False),
        ("synchronize", "failure", True, True),  # also a job over its timeout-minutes
        ("synchronize", "cancelled", True, True),  # the run or the job was cancelled
        ("synchronize", "skipped", True, False),  # the checks failed: nothing deployed
        ("synchronize", "failure", False, False),  # a fork's pull request: nothing deployed
    ],
)
def test_a_pull_requests_stage_is_destroyed_when_its_deploy_did_not_succeed(
    action: str, deploy_result: str, same_repository: bool, destroys: bool
) -> None:
    # GIVEN the destroy job's condition
    condition = _load("pull-request.yml")["jobs"]["destroy"]["if"]

    # WHEN GitHub evaluates it after `deploy` ended with a result
    context = {
        "github.event.action": action,
        "github.event.pull_request.head.repo.full_name": (
            "octo/shop" if same_repository else "fork/shop"
        ),
        "github.repository": "octo/shop",
        "needs.deploy.result": deploy_result,
    }

    # THEN the stage is destroyed whenever deploy or e2e did not succeed
    assert evaluate(condition, context) is destroys


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
    assert jobs["staging"]["environment"] == "staging"
    assert jobs["prod"]["environment"] == "production"
    assert _steps(workflow, "prod")[-1]["run"] == "make deploy STAGE=prod REQUIRE_APPROVAL=never"
    for job in ("staging", "prod"):
        assert jobs[job]["permissions"] == {"id-token": "write", "contents": "read"}


def _section(markdown: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = markdown.index(f"\n{heading}\n")
    following = re.search(rf"\n#{{1,{len(level)}}} ", markdown[start + 1 :])
    return markdown[start : start + 1 + following.start()] if following else markdown[start:]


def test_the_readme_sets_up_an_account_in_one_command_and_names_each_role() -> None:
    readme = (REPO_ROOT / "README.md").read_text()

    # GIVEN the once-per-account steps THEN the account app is one command after bootstrap
    once = _section(readme, "### Once per AWS account and region")
    assert once.index("cdk bootstrap") < once.index("make account GITHUB_REPO=")

    # AND the CI section says which role deploys which environment, from which variable
    ci = _section(readme, "### CI: GitHub Actions with OIDC (no stored AWS keys)")
    for row in (
        ("PullRequestDeployRole", "repo:O/R:pull_request", "`pr-*`", "AWS_PR_ROLE_ARN"),
        ("StagingDeployRole", "environment:staging", "`staging`", "AWS_STAGING_ROLE_ARN"),
        ("ProductionDeployRole", "environment:production", "`prod`", "AWS_PRODUCTION_ROLE_ARN"),
    ):
        (line,) = [line for line in ci.splitlines() if line.startswith(f"| `{row[0]}`")]
        assert all(part in line for part in row), line
    # AND it recommends separate accounts, and says what one account still allows
    assert "one AWS account per environment" in ci
    assert "deploy over or destroy" in ci
    forking = (REPO_ROOT / "docs" / "forking.md").read_text()
    assert "What a single account still allows" in forking
    assert "AWS_DEPLOY_ROLE_ARN" not in readme + forking
