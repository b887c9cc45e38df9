"""The e2e suite's ``--delivery`` option and its stage's assembly (tests/support/e2e_target.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
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


def test_a_synthesized_assembly_named_by_the_environment_is_used_without_a_synth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN $LOCALSTAGE_ASSEMBLY naming an already synthesized stage `local` (the
    # README's way to skip the synth while iterating on handler code)
    synthesized = tmp_path / "cdk.out" / "assembly-local"
    synthesized.mkdir(parents=True)
    (synthesized / "manifest.json").write_text("{}")
    monkeypatch.setenv(ASSEMBLY_VARIABLE, str(synthesized))
    shared = tmp_path / "session"
    shared.mkdir()

    # WHEN the e2e suite asks for the session's assembly
    assembly = session_assembly(shared)

    # THEN it gets that one, and nothing was synthesized
    assert assembly == synthesized
    assert not (shared / "e2e-cdk.out").exists()
