"""The app's tracked Python modules, as the whole-tree checks (import cycles, doc
examples) read them: localstage is a package of its own and checks itself."""

from __future__ import annotations

import subprocess
from pathlib import Path


def tracked_app_modules(root: Path) -> list[str]:
    """Paths (relative to ``root``) of every tracked ``.py`` file outside localstage.

    Git's list, not a glob, so caches, virtualenvs and cdk.out never count.
    """
    listed = subprocess.run(
        ["git", "ls-files", "*.py", ":!localstage"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return listed
