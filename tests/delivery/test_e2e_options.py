"""The e2e suite's ``--delivery`` option (tests/support/e2e_target.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tests.support.e2e_target import DEPLOYED_TARGET, configure_target


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
