"""Snapshots of every stack template, and what goes into each function asset."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import aws_lambda_powertools.shared.version as powertools
import pytest
from syrupy.assertion import SnapshotAssertion

from patterns.function import FUNCTIONS_DIR, POWERTOOLS_VERSION
from tests.infra.conftest import SynthesizedStage, normalized

MAX_ASSET_BYTES = 20 * 1024


def test_stack_templates_match_their_snapshots(
    any_stage: SynthesizedStage, snapshot: SnapshotAssertion
) -> None:
    # Asset hashes are masked: a snapshot changes only when a template really does.
    for stack_id in sorted(any_stage.templates):
        assert normalized(any_stage.template_json(stack_id)) == snapshot(name=stack_id)


def function_assets(stage: SynthesizedStage) -> dict[str, Path]:
    """Asset directory of every function, by the function folder it was built from."""
    # Python functions only: CDK's own helpers (e.g. the Node.js handler that empties
    # a bucket on destroy) bring assets that are not function folders of this app.
    python_code = {
        resource["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        for template in stage.templates.values()
        for resource in template.to_json()["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and str(resource["Properties"].get("Runtime", "")).startswith("python")
        and isinstance(resource["Properties"].get("Code", {}).get("S3Key"), str)
    }
    assets: dict[str, Path] = {}
    for manifest in stage.outdir.glob(f"assembly-{stage.name}/*.assets.json"):
        files: dict[str, Any] = json.loads(manifest.read_text())["files"]
        for asset_hash, asset in files.items():
            if asset["source"].get("packaging") == "zip" and asset_hash in python_code:
                path = (manifest.parent / asset["source"]["path"]).resolve()
                assets[path.name] = path
    return assets


def test_each_function_folder_is_one_asset_of_its_own_files_only(
    ephemeral: SynthesizedStage, tmp_path: Path
) -> None:
    assets = function_assets(ephemeral)
    folders = sorted(
        p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )
    # One asset per pattern folder, shared by the pattern's functions.
    assert len(assets) == len(folders)
    for asset_dir in assets.values():
        names = sorted(str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file())
        assert names and all(n.endswith(".py") for n in names), names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        archive = tmp_path / f"{asset_dir.name}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for name in names:
                zipped.write(asset_dir / name, name)
        assert archive.stat().st_size < MAX_ASSET_BYTES


def test_local_powertools_is_the_release_of_the_pinned_layer() -> None:
    # Handler tests run on the PyPI release; Lambda runs the layer. They must agree.
    assert powertools.VERSION == POWERTOOLS_VERSION


@pytest.mark.parametrize("requirement_file", ["requirements-dev.txt"])
def test_requirements_pin_the_layer_release(requirement_file: str) -> None:
    text = (FUNCTIONS_DIR.parent / requirement_file).read_text()
    assert f"aws-lambda-powertools[parser]=={POWERTOOLS_VERSION}" in text
