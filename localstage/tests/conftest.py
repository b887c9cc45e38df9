"""A tiny throwaway stage (localstage/tests/tiny.py), booted once for the engine tests.

This folder is on sys.path when pytest runs it (no ``__init__.py``): the helpers are
imported by bare name (``from tiny import ...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny import HANDLER, TEMPLATE, write_assembly

from localstage.stage import LocalStage

_TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="package")
def tiny_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    root = tmp_path_factory.mktemp("tiny")
    assembly = write_assembly(root / "assembly-test", TEMPLATE, HANDLER)
    with LocalStage(
        stage_name="test", assembly_dir=assembly, workdir=root / "work", clock_speed=30
    ) as stage:
        yield stage


@pytest.fixture(scope="package")
def async_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny_async.py``: Invoke from handlers, S3 notifications, schedules."""
    import tiny_async

    root = tmp_path_factory.mktemp("tiny-async")
    assembly = write_assembly(root / "assembly-test", tiny_async.TEMPLATE, tiny_async.HANDLER)
    with LocalStage(
        stage_name="test", assembly_dir=assembly, workdir=root / "work", clock_speed=60
    ) as stage:
        yield stage


@pytest.fixture(scope="package")
def throttle_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny_throttle.py``: reserved concurrencies of 0 and 1."""
    import tiny_throttle

    root = tmp_path_factory.mktemp("tiny-throttle")
    assembly = write_assembly(root / "assembly-test", tiny_throttle.TEMPLATE, tiny_throttle.HANDLER)
    with LocalStage(
        stage_name="test", assembly_dir=assembly, workdir=root / "work", clock_speed=60
    ) as stage:
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
