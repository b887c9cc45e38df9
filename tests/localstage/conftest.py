"""A tiny throwaway stage (tests/localstage/tiny.py), booted once for the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localstage.stage import LocalStage
from tests.localstage.tiny import HANDLER, TEMPLATE, write_assembly


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
    from tests.localstage import tiny_async

    root = tmp_path_factory.mktemp("tiny-async")
    assembly = write_assembly(root / "assembly-test", tiny_async.TEMPLATE, tiny_async.HANDLER)
    with LocalStage(
        stage_name="test", assembly_dir=assembly, workdir=root / "work", clock_speed=60
    ) as stage:
        yield stage


@pytest.fixture(scope="package")
def throttle_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    """The stage of ``tiny_throttle.py``: reserved concurrencies of 0 and 1."""
    from tests.localstage import tiny_throttle

    root = tmp_path_factory.mktemp("tiny-throttle")
    assembly = write_assembly(root / "assembly-test", tiny_throttle.TEMPLATE, tiny_throttle.HANDLER)
    with LocalStage(
        stage_name="test", assembly_dir=assembly, workdir=root / "work", clock_speed=60
    ) as stage:
        yield stage
