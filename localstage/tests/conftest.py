"""The tiny throwaway stages (localstage/tests/tiny*.py), booted once for the engine tests.

This folder is on sys.path when pytest runs it (no ``__init__.py``): the helpers are
imported by bare name (``from tiny import ...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tiny
import tiny_api
import tiny_async
import tiny_throttle
from tiny import booted

from localstage.stage import LocalStage

_TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="package")
def tiny_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny.py``: functions, a table, queues, a layer and a REST API."""
    root = tmp_path_factory.mktemp("tiny")
    with booted(root, tiny.TEMPLATE, tiny.HANDLER, clock_speed=30) as stage:
        yield stage


@pytest.fixture(scope="package")
def api_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny_api.py``: one REST API and its front door's edge cases."""
    root = tmp_path_factory.mktemp("tiny-api")
    with booted(root, tiny_api.TEMPLATE, tiny_api.HANDLER, clock_speed=30) as stage:
        yield stage


@pytest.fixture(scope="package")
def async_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny_async.py``: Invoke from handlers, S3 notifications, schedules."""
    root = tmp_path_factory.mktemp("tiny-async")
    with booted(root, tiny_async.TEMPLATE, tiny_async.HANDLER, clock_speed=60) as stage:
        yield stage


@pytest.fixture(scope="package")
def throttle_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny_throttle.py``: reserved concurrencies of 0 and 1."""
    root = tmp_path_factory.mktemp("tiny-throttle")
    with booted(root, tiny_throttle.TEMPLATE, tiny_throttle.HANDLER, clock_speed=60) as stage:
        yield stage


# First: pytest-xdist reads the groups in its own hook (worker side) to key the tests.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test file starts its own tiny stages (package-scoped, cheap): one xdist group
    per file, so a file's tests share a worker and its stages."""
    for item in items:
        path = Path(str(item.path)).resolve()
        if path.is_relative_to(_TESTS_DIR):
            group = f"localstage/{path.relative_to(_TESTS_DIR).as_posix()}"
            item.add_marker(pytest.mark.xdist_group(name=group))
