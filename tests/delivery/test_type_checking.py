"""mypy checks the app against every aws-cdk-lib module it uses.

pyproject.toml has mypy follow only the aws_cdk modules the app imports (following all
~300 costs two CPU-minutes); a module missing from that list would be Any, and calls
into it unchecked. This test keeps the list complete.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_CDK_IMPORT = re.compile(
    r"^\s*(?:from\s+aws_cdk\s+import\s+(?P<names>[\w\s,()]+?)(?:\s+as\s+\w+)?$"
    r"|from\s+(?P<from>aws_cdk(?:\.\w+)+)\s+import"
    r"|import\s+(?P<plain>aws_cdk(?:\.\w+)*))",
    re.MULTILINE,
)


def followed_cdk_modules() -> set[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    followed: set[str] = set()
    for override in config["tool"]["mypy"]["overrides"]:
        if override.get("follow_imports") == "normal":
            followed.update(m for m in override["module"] if m.split(".")[0] == "aws_cdk")
    return followed


def imported_cdk_modules() -> dict[str, str]:
    """Every aws_cdk module a type-checked file imports, with one file that does."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    files: list[Path] = []
    for entry in config["tool"]["mypy"]["files"]:
        path = REPO_ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    modules: dict[str, str] = {}
    for file in files:
        for match in _CDK_IMPORT.finditer(file.read_text()):
            if match["names"]:
                # `from aws_cdk import aws_sqs as sqs, Duration`: lower-case names are modules
                names = [n.split()[0] for n in match["names"].strip("()").split(",") if n.strip()]
                found = [f"aws_cdk.{n}" for n in names if n.islower()] or ["aws_cdk"]
            else:
                found = [match["from"] or match["plain"]]
            for module in found:
                modules.setdefault(module, str(file.relative_to(REPO_ROOT)))
    return modules


def test_every_imported_aws_cdk_module_is_type_checked() -> None:
    # GIVEN the aws_cdk modules the code imports and those mypy follows
    imported = imported_cdk_modules()
    followed = followed_cdk_modules()
    assert "aws_cdk.aws_lambda" in imported and "aws_cdk" in followed

    # THEN mypy follows each of them
    missing = {module: file for module, file in imported.items() if module not in followed}
    assert missing == {}, "add these to the followed aws_cdk modules in pyproject.toml"


#: The overrides that skip whole packages only our dependencies import (see pyproject.toml).
_DEPENDENCY_ONLY_COMMENT = "Packages no module of ours imports"


def test_no_type_checked_file_imports_a_package_skipped_as_dependency_only() -> None:
    # GIVEN the packages pyproject.toml skips because only dependencies import them
    text = (REPO_ROOT / "pyproject.toml").read_text()
    config = tomllib.loads(text)
    assert _DEPENDENCY_ONLY_COMMENT in text
    skipped = {
        module.removesuffix(".*")
        for override in config["tool"]["mypy"]["overrides"]
        if override.get("follow_imports") == "skip"
        for module in override["module"]
        if module.split(".")[0] not in {"aws_cdk", "moto"}
    }
    assert "graphql" in skipped
    files = [
        file
        for entry in config["tool"]["mypy"]["files"]
        for file in (
            sorted((REPO_ROOT / entry).rglob("*.py"))
            if (REPO_ROOT / entry).is_dir()
            else [REPO_ROOT / entry]
        )
    ]
    files += sorted((REPO_ROOT / "patterns").glob("*/runtime/*.py"))
    files += sorted((REPO_ROOT / "blocks" / "handler_layer").rglob("*.py"))

    # THEN no file of ours imports one (it would be checked as Any)
    importing = re.compile(
        rf"^\s*(?:from|import)\s+({'|'.join(map(re.escape, sorted(skipped)))})\b", re.MULTILINE
    )
    found = {
        str(file.relative_to(REPO_ROOT)): match[1]
        for file in files
        for match in [importing.search(file.read_text())]
        if match
    }
    assert found == {}, "follow these packages in pyproject.toml: code of ours uses them"
