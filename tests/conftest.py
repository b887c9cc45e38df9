"""Test-session wiring shared by every suite.

`make test` runs pytest on two workers (pytest-xdist, ``--dist loadgroup``). Suites that
build something expensive once per worker stay together on one worker: the infra
tests synthesize the app, the e2e tests boot a local stage, the localstage tests boot
tiny stages. Handler tests spread over both workers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_GROUPED_SUITES = ("infra", "e2e", "localstage")
_TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        suite = Path(str(item.path)).resolve().relative_to(_TESTS_DIR).parts[0]
        if suite in _GROUPED_SUITES:
            item.add_marker(pytest.mark.xdist_group(name=suite))
