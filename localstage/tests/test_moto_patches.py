"""localstage.moto_patches: every patch of moto's internals, for one moto release only."""

from __future__ import annotations

import re

import moto
import pytest

from localstage import moto_patches


def test_a_different_moto_version_is_refused_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    expected = (
        "localstage's moto patches were written for moto 5.2.5; this environment has 5.3.0. "
        "Install moto==5.2.5 (requirements-dev.txt) or port "
        "localstage/src/localstage/moto_patches.py."
    )
    with pytest.raises(moto_patches.UnsupportedMotoVersionError, match=re.escape(expected)):
        moto_patches.check_moto_version()
    with pytest.raises(moto_patches.UnsupportedMotoVersionError, match=re.escape(expected)):
        moto_patches.install()


def test_the_pinned_moto_version_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", moto_patches.SUPPORTED_MOTO_VERSION)
    moto_patches.check_moto_version()
    assert moto_patches.SUPPORTED_MOTO_VERSION == "5.2.5"


def test_the_supported_version_is_the_one_localstage_pins() -> None:
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert f'"moto[server]=={moto_patches.SUPPORTED_MOTO_VERSION}"' in pyproject.read_text()


def test_only_moto_patches_assigns_onto_moto() -> None:
    """The helper modules build patches; none assigns onto a moto object itself."""
    from pathlib import Path

    source = Path(moto_patches.__file__).parent
    offenders = []
    for path in sorted(source.glob("_moto_*.py")):
        text = path.read_text()
        if re.search(
            r"^\s*(models|table_module|handler_class|notifications|backends)\.\S+ = ", text, re.M
        ):
            offenders.append(path.name)
        if re.search(r"^\s*[A-Z]\w*\.\w+ = ", text, re.M):
            offenders.append(path.name)
    assert offenders == []


def _attributes(patches: list[moto_patches.Patch]) -> dict[tuple[int, str], object]:
    """What each patched name is on its owner now (None: not the owner's own)."""
    return {(id(p.owner), p.name): vars(p.owner).get(p.name) for p in patches}


def test_the_speed_ups_come_off_again_and_leave_installed_groups_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN moto with no group of patches put on for good
    monkeypatch.setattr(moto_patches, "_INSTALLED", set())
    patches = [patch for build in moto_patches.SPEED_UPS.values() for patch in build()]
    before = _attributes(patches)

    # WHEN the speed-ups go on, then off
    with moto_patches.speed_ups_installed():
        during = _attributes(patches)

    # THEN every patched name was the owner's own meanwhile (the expressions' patches,
    # new functions at each build, were new objects even if an earlier test of this
    # worker put that group on for good), and afterwards every name is what it was
    assert all(value is not None for value in during.values())
    expressions = _attributes(moto_patches.SPEED_UPS["dynamodb-expressions"]())
    assert all(during[name] is not before[name] for name in expressions)
    assert _attributes(patches) == before

    # GIVEN a group put on for good WHEN the speed-ups go on THEN that group is left alone
    monkeypatch.setattr(moto_patches, "_INSTALLED", {"sqs"})
    sqs = _attributes(moto_patches.SPEED_UPS["sqs"]())
    with moto_patches.speed_ups_installed():
        assert _attributes(moto_patches.SPEED_UPS["sqs"]()) == sqs
    assert _attributes(patches) == before
