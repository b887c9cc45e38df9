"""Forking: rename the app in one place, remove a pattern by deleting its paths, add one
by copying a pattern folder under a new name.

docs/forking.md lists the paths of a pattern; these tests keep that list true for
every pattern and prove that a fork which renames the app, deletes four patterns'
paths and copies the fifth pattern's folder under a new name still synthesizes
(cdk-nag included): the kept pattern and its copy, with the new name everywhere and
the localstage scenarios, benchmarks and CI-access stack following along.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from patterns import pattern_name_of
from stacks.stage import pattern_stack_classes

REPO_ROOT = Path(__file__).resolve().parents[2]
FORKING_MD = REPO_ROOT / "docs" / "forking.md"
#: What a fork copies to synthesize the app and run localstage and the benchmarks.
APP_PATHS = (
    "app.py",
    "cdk.json",
    "account_app.py",
    "account",
    "stacks",
    "blocks",
    "patterns",
    "bench",
    "tests",
    "pyproject.toml",
)
#: The one pattern the fork keeps: the first, so a fork without any given pattern runs it too.
KEPT = sorted(cls.__module__.split(".")[1] for cls in pattern_stack_classes())[0]
#: The pattern the fork adds: a copy of the kept one's folder under this name.
ADDED = "ledger"
NEW_APP_NAME = "acme-shop"


#: A pattern's paths as docs/forking.md lists them (``NAME`` is its folder's name).
LISTED_PATHS = ("patterns/NAME/", "tests/*/NAME/")


def pattern_paths(name: str, root: Path = REPO_ROOT) -> list[Path]:
    """Every path of one pattern (``name`` in snake case) that docs/forking.md lists."""
    return [p for listed in LISTED_PATHS for p in sorted(root.glob(listed.replace("NAME", name)))]


def pattern_modules() -> list[str]:
    return sorted(cls.__module__.split(".")[1] for cls in pattern_stack_classes())


def test_every_pattern_has_the_files_forking_md_lists() -> None:
    # GIVEN the patterns the stage discovers
    modules = pattern_modules()
    assert KEPT in modules

    # THEN each has its folder and a folder of tests in each suite, no more paths than
    # docs/forking.md's removal lists, and the doc lists them
    for module in modules:
        paths = [p.relative_to(REPO_ROOT).as_posix() for p in pattern_paths(module)]
        assert paths == [f"patterns/{module}"] + [
            f"tests/{suite}/{module}" for suite in ("e2e", "infra", "unit")
        ]
    doc = FORKING_MD.read_text()
    assert [p for p in LISTED_PATHS if f"`{p}`" not in doc] == []
    assert len(LISTED_PATHS) <= 3


_FORK_CHECK = """
import json, os, runpy, sys
sys.argv = ["app.py"]
try:
    runpy.run_path("app.py", run_name="__main__")
except SystemExit as stop:
    if stop.code:
        raise
import bench.localstage  # imports without the removed pattern's scenarios
import account_app
from localstage.scenarios import scenario_modules
print(json.dumps({
    "scenarios": [module.STACK for module in scenario_modules()],
    "ci_access_stacks": account_app.stack_names(),
}))
"""


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the app renamed in cdk.json, with one pattern only, synthesized once."""
    root = tmp_path_factory.mktemp("fork")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "cdk.out", ".localstage")
    for path in APP_PATHS:
        source = REPO_ROOT / path
        if source.is_dir():
            shutil.copytree(source, root / path, ignore=ignore)
        else:
            shutil.copy2(source, root / path)
    # Rename the app: one key in cdk.json.
    cdk_json = json.loads((root / "cdk.json").read_text())
    cdk_json["context"]["app_name"] = NEW_APP_NAME
    (root / "cdk.json").write_text(json.dumps(cdk_json, indent=2))
    # Remove every other pattern: delete its listed paths.
    removed = [module for module in pattern_modules() if module != KEPT]
    for listed in [p for module in removed for p in pattern_paths(module, root)]:
        shutil.rmtree(listed)
    # Add a pattern: copy the kept one's folder under a new name, and nothing else.
    shutil.copytree(root / "patterns" / KEPT, root / "patterns" / ADDED, ignore=ignore)
    # CDK's built-in template validation is off for this synth (half of its CPU): the fork's
    # templates are a subset of the app's, which the infra suite validates in-process.
    env = {
        **os.environ,
        "CDK_OUTDIR": str(root / "cdk.out"),
        "PYTHONPATH": str(root),
        "CDK_VALIDATION": "false",
    }
    env.pop("CDK_CONTEXT_JSON", None)
    result = subprocess.run(
        [sys.executable, "-c", _FORK_CHECK],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checks: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    # The fork's test suites still import: no test module outside a removed pattern's
    # folders needs it (each stage-wide test reads the patterns the stage discovers).
    # A fork is a git checkout: some tests list the tracked files.
    for git in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *git], cwd=root, check=True, capture_output=True)
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "--snapshot-warn-unused",
            "tests",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    checks["collected"] = (
        collected.returncode,
        collected.stdout[-3000:] + collected.stderr[-2000:],
    )
    checks["assembly"] = root / "cdk.out" / "assembly-dev"
    return checks


def test_a_fork_synthesizes_the_kept_pattern_and_the_copied_one_only(fork: dict[str, Any]) -> None:
    # GIVEN the fork's synthesized stage (cdk-nag ran on it: any finding fails the synth)
    manifest = json.loads((fork["assembly"] / "manifest.json").read_text())
    stacks = sorted(
        artifact["properties"]["stackName"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    )

    # THEN the kept pattern and its copy are there, named for their folders, and the
    # removed ones are not
    kept, added = pattern_name_of(KEPT), pattern_name_of(ADDED)
    assert stacks == ["dev-Alerts", f"dev-{kept}", f"dev-{added}"]
    # AND the demo's scenarios and the CI access follow the stacks that exist
    assert sorted(fork["scenarios"]) == [kept, added]
    assert sorted(fork["ci_access_stacks"]) == ["Alerts", kept, added]


def test_renaming_the_app_in_cdk_json_renames_it_everywhere(fork: dict[str, Any]) -> None:
    # GIVEN every template of the fork, renamed in cdk.json only
    templates = {path.name: path.read_text() for path in fork["assembly"].glob("*.template.json")}
    assert templates

    # THEN the old name appears nowhere, and the tags and metric namespaces carry the new one
    assert [name for name, text in templates.items() if "serverless-patterns" in text] == []
    for name in (f"dev{pattern_name_of(KEPT)}", f"dev{pattern_name_of(ADDED)}"):
        (text,) = [text for file, text in templates.items() if file.startswith(name)]
        text = json.dumps(json.loads(text))
        assert f'"Key": "app", "Value": "{NEW_APP_NAME}"' in text, name
        assert f'"POWERTOOLS_METRICS_NAMESPACE": "{NEW_APP_NAME}/dev"' in text, name


def test_the_forks_test_suites_collect_without_the_removed_patterns(fork: dict[str, Any]) -> None:
    # (Collecting proves only that no test module imports a removed pattern; the suites
    # were run in forks without each pattern by hand: see docs/benchmarks/notes.md.)
    returncode, output = fork["collected"]
    assert returncode == 0, output
