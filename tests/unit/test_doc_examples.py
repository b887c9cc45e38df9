"""Every example in an app docstring runs, as a doctest, and gives what it shows.

An example that cannot run is not an example: none is skipped (``+SKIP``).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from tests.support.repo_files import tracked_app_modules
from tests.unit.conftest import LAYER_PYTHON_DIR, PROJECT_ROOT


def _module_name(path: Path) -> str:
    """The name the module is imported by: top-level in a code root or the layer."""
    if path.is_relative_to(LAYER_PYTHON_DIR):
        relative = path.relative_to(LAYER_PYTHON_DIR)
    elif path.parent.name == "runtime":
        relative = Path(path.name)
    else:
        relative = path.relative_to(PROJECT_ROOT)
    return ".".join(relative.with_suffix("").parts)


def _app_files_with_examples() -> list[Path]:
    """The app's tracked modules (localstage is a package of its own) holding ``>>>``."""
    listed = tracked_app_modules(PROJECT_ROOT)
    this = Path(__file__).resolve()
    found = [PROJECT_ROOT / f for f in listed if ">>> " in (PROJECT_ROOT / f).read_text()]
    return [f for f in found if f != this]


FILES = _app_files_with_examples()


def test_no_example_is_skipped() -> None:
    assert [f for f in FILES if "+SKIP" in f.read_text()] == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_docstring_examples_run(path: Path) -> None:
    # GIVEN a module with examples WHEN its doctests run THEN each gives what it shows
    module = importlib.import_module(_module_name(path))
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert results.attempted > 0
    assert results.failed == 0
