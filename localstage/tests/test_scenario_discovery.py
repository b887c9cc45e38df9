"""localstage.scenarios.scenario_modules: scenario modules are the files a glob finds."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localstage.scenarios import ScenarioDiscoveryError, configured_scenarios, scenario_modules

SCENARIO_MODULE = """
from localstage.scenarios import Scenario

STACK = "Tiny"


def _run(target, transcript):
    transcript.say("nothing to do")


SCENARIOS = [Scenario("does nothing", _run)]
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """(root, package): an app folder whose ``<package>/tiny/scenarios.py`` is a scenario
    module; ``sys.path`` and ``sys.modules`` are restored afterwards."""
    package = f"app_{uuid.uuid4().hex[:8]}"  # a name no other test's module has
    (tmp_path / package / "tiny").mkdir(parents=True)
    (tmp_path / package / "tiny" / "scenarios.py").write_text(SCENARIO_MODULE)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path, package
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_discovery_finds_a_scenario_module(app: tuple[Path, str]) -> None:
    root, package = app
    modules = scenario_modules(f"{package}/*/scenarios.py", root)
    assert [module.STACK for module in modules] == ["Tiny"]
    assert [scenario.name for scenario in modules[0].SCENARIOS] == ["does nothing"]
    assert (
        Path(str(modules[0].__file__)).resolve()
        == (root / package / "tiny" / "scenarios.py").resolve()
    )


def test_files_named_with_an_underscore_are_skipped(app: tuple[Path, str]) -> None:
    root, package = app
    (root / package / "tiny" / "_helpers.py").write_text("X = 1\n")
    modules = scenario_modules(f"{package}/*/*.py", root)
    assert [module.STACK for module in modules] == ["Tiny"]


def test_a_module_without_stack_is_refused(app: tuple[Path, str]) -> None:
    root, package = app
    (root / package / "broken").mkdir()
    (root / package / "broken" / "scenarios.py").write_text("SCENARIOS = []\n")
    with pytest.raises(ScenarioDiscoveryError, match="defines no STACK and SCENARIOS"):
        scenario_modules(f"{package}/*/scenarios.py", root)


def test_the_pyproject_setting_is_the_default_glob(app: tuple[Path, str]) -> None:
    root, package = app
    (root / "pyproject.toml").write_text(
        f'[tool.localstage]\nscenarios = "{package}/*/scenarios.py"\n'
    )
    assert configured_scenarios(root) == f"{package}/*/scenarios.py"
    assert [module.STACK for module in scenario_modules(root=root)] == ["Tiny"]


def test_without_a_glob_discovery_says_what_to_set(app: tuple[Path, str]) -> None:
    root, _ = app
    with pytest.raises(ScenarioDiscoveryError, match=r"--scenarios 'GLOB'.*\[tool.localstage\]"):
        scenario_modules(root=root)


def test_the_app_folder_localstage_synthesizes_in_is_where_scenarios_are_found(
    app: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN an app folder named by $LOCALSTAGE_APP_DIR (where localstage synthesizes and
    # keeps its work folder), run from another folder
    root, package = app
    (root / "pyproject.toml").write_text(
        f'[tool.localstage]\nscenarios = "{package}/*/scenarios.py"\n'
    )
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    environment = {**os.environ, "LOCALSTAGE_APP_DIR": str(root)}

    # WHEN the demo's discovery looks for scenario modules without a glob
    discover = (
        "from localstage.scenarios import scenario_modules; "
        "print([module.STACK for module in scenario_modules()])"
    )
    command = [sys.executable, "-c", discover]
    found = subprocess.run(
        command, cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=60
    )

    # THEN it finds the app's, as the synth uses the app's cdk.json
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == "['Tiny']"
