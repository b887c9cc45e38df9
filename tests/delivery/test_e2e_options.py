"""The e2e suite's ``--delivery`` option and its stage's assembly (tests/support/e2e_target.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from localstage.assembly import AssemblyError
from localstage.testing import ASSEMBLY_VARIABLE

from tests.support.e2e_target import DEPLOYED_TARGET, configure_target, session_assembly


class _Config:
    """The two things ``configure_target`` uses of a ``pytest.Config``."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.stash = pytest.Stash()

    def getoption(self, name: str) -> Any:
        return self.options.get(name)


def test_duplicate_delivery_is_refused_against_a_deployed_stage() -> None:
    # GIVEN --target aws with --delivery duplicate (a localstage mode: AWS decides itself)
    config = _Config(target="aws", stage="pr-1", wait_scale=None, delivery=["duplicate"])

    # THEN the run stops before anything reaches AWS
    with pytest.raises(pytest.UsageError, match="needs --target local"):
        configure_target(cast(pytest.Config, config))


def test_both_modes_are_fine_on_the_local_stage() -> None:
    config = _Config(target="local", stage=None, wait_scale=None, delivery=["once", "duplicate"])
    configure_target(cast(pytest.Config, config))
    assert config.stash[DEPLOYED_TARGET] is None


@pytest.fixture
def synthesized(tmp_path: Path) -> Path:
    """A folder that looks like a synthesized stage ``local``: ``cdk.out/assembly-local``."""
    assembly = tmp_path / "cdk.out" / "assembly-local"
    assembly.mkdir(parents=True)
    (assembly / "manifest.json").write_text("{}")
    return assembly


def test_a_synthesized_assembly_named_by_the_environment_is_used_without_a_synth(
    synthesized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN $LOCALSTAGE_ASSEMBLY naming an already synthesized stage `local`
    # (localstage/README.md: reuse an assembly instead of synthesizing)
    monkeypatch.setenv(ASSEMBLY_VARIABLE, str(synthesized))
    shared = tmp_path / "session"
    shared.mkdir()

    # WHEN the e2e suite asks for the session's assembly
    assembly = session_assembly(shared)

    # THEN it gets that one, and nothing was synthesized
    assert assembly == synthesized
    assert not (shared / "e2e-cdk.out").exists()


def test_a_relative_assembly_path_is_resolved_against_the_working_directory(
    synthesized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN $LOCALSTAGE_ASSEMBLY naming a synthesized stage relative to the working directory
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ASSEMBLY_VARIABLE, "cdk.out/assembly-local")

    # WHEN the e2e suite asks for the session's assembly
    assembly = session_assembly(tmp_path)

    # THEN it gets that folder as an absolute path, which a later chdir cannot change
    assert assembly == synthesized and assembly.is_absolute()


def test_a_folder_that_is_no_assembly_stops_the_session_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN $LOCALSTAGE_ASSEMBLY naming a folder without a manifest.json (a typo, or an
    # assembly removed since)
    monkeypatch.setenv(ASSEMBLY_VARIABLE, str(tmp_path / "missing"))
    shared = tmp_path / "session"
    shared.mkdir()

    # WHEN the e2e suite asks for the session's assembly
    # THEN it stops at once, naming the variable, and synthesizes nothing instead
    with pytest.raises(AssemblyError, match=rf"{ASSEMBLY_VARIABLE}=.*no manifest.json"):
        session_assembly(shared)
    assert not (shared / "e2e-cdk.out").exists()
