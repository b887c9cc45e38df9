"""Every example in a localstage docstring runs, as a doctest, and gives what it shows.

An example that cannot run (it needs a running stage or AWS) is a usage block, not a
``>>>`` example: none is skipped.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
FILES = sorted(path for path in (SOURCE / "localstage").rglob("*.py") if ">>> " in path.read_text())


def test_no_example_is_skipped() -> None:
    assert FILES
    assert [f.name for f in FILES if "+SKIP" in f.read_text()] == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_docstring_examples_run(path: Path) -> None:
    # GIVEN a module with examples WHEN its doctests run THEN each gives what it shows
    name = ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__")
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0
    assert results.failed == 0
