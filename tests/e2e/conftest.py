"""The e2e target: stage ``local`` on localstage, booted once for the whole e2e suite.

Tests use only the ``target`` fixture (:class:`localstage.target.Target`), so the
same tests can run against a deployed stage once a target for it exists.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localstage.target import LocalTarget, Target
from localstage.testing import booted_stage


@pytest.fixture(scope="package")
def target() -> Iterator[Target]:
    with booted_stage() as stage:
        yield LocalTarget(stage)
