"""Test-session wiring shared by every suite.

`make test` runs pytest on four workers (pytest-xdist, ``--dist loadgroup``; the
Makefile says why four). The infra tests synthesize the app once and the e2e tests boot
stage ``local`` once per delivery mode (``--delivery once --delivery duplicate``:
``e2e-once`` and ``e2e-duplicate``), so each of those suites (each mode) stays together
on one worker. A delivery test file starts its own tiny stages or moto server
(package-scoped, cheap), so each file is a group of its own and the files fill in around
the long suites. Handler tests spread freely.

The e2e options (``--target local|aws``, ``--stage``, ``--delivery``, ``--wait-scale``)
are registered here: pytest takes ``pytest_addoption`` only from the rootdir's and
initial conftests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.e2e_target import add_target_options, configure_target

_SUITES_ON_ONE_WORKER = ("infra", "e2e")
_SUITES_GROUPED_BY_FILE = ("delivery",)
_TESTS_DIR = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    add_target_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    configure_target(config)


# First: pytest-xdist reads the groups in its own hook (worker side) to key the tests.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not Path(str(item.path)).resolve().is_relative_to(_TESTS_DIR):
            continue  # localstage/tests groups its own (localstage/tests/conftest.py)
        relative = Path(str(item.path)).resolve().relative_to(_TESTS_DIR)
        suite = relative.parts[0]
        if suite in _SUITES_ON_ONE_WORKER:
            # Each delivery mode of the e2e suite boots its own stage: a group of its own,
            # so the two runs can go to different workers.
            callspec = getattr(item, "callspec", None)
            mode = callspec.params.get("delivery") if callspec is not None else None
            item.add_marker(pytest.mark.xdist_group(name=f"{suite}-{mode}" if mode else suite))
        elif suite in _SUITES_GROUPED_BY_FILE:
            # Files that share a package-scoped stand-in (test_deployed_target*.py) are
            # one group, so the stand-in is deployed once, on one worker.
            shared = relative.stem.startswith("test_deployed_target")
            name = f"{suite}/test_deployed_target" if shared else relative.as_posix()
            item.add_marker(pytest.mark.xdist_group(name=name))


# Optional: the hook exists only while pytest-xdist is loaded (not with -p no:xdist).
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """Stop when pytest-xdist ignores the groups: each worker would then synthesize the
    app and boot stage ``local`` itself, and the run would take minutes longer."""
    grouped_suites = tuple(f"tests/{suite}/" for suite in _SUITES_ON_ONE_WORKER)
    ungrouped = [i for i in ids if i.startswith(grouped_suites) and "@" not in i]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not group {ungrouped[0]} (and {len(ungrouped) - 1} more): "
            "--dist loadgroup is broken with this pytest; check requirements-dev.txt"
        )
