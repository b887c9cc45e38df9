"""Snapshots of every stack template, and what goes into each function asset."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_lambda_powertools.shared.version as powertools
import pytest

from blocks.function import HANDLER_LAYER_DIR, POWERTOOLS_VERSION
from stacks.stage import PATTERNS_DIR, PROJECT_ROOT, pattern_stack_classes
from tests.infra.conftest import SynthesizedStage

#: Zipped size an asset of our own code stays under: a bundled dependency or data file
#: (hundreds of KiB at least) trips it, the source of a pattern or of handler_kit does not.
MAX_ASSET_BYTES = 64 * 1024
TESTS_DIR = Path(__file__).resolve().parent


#: Stacks that are not a pattern's (a pattern's folder of tests snapshots its own stack).
STAGE_STACKS = ["Alerts"]


@pytest.mark.parametrize("stack_id", STAGE_STACKS)
def test_stage_stacks_match_their_snapshots(
    stack_snapshot: Callable[[str], None], stack_id: str
) -> None:
    stack_snapshot(stack_id)


def test_every_stack_has_a_snapshot_of_its_own(ephemeral: SynthesizedStage) -> None:
    # GIVEN the stage's stacks WHEN each is matched to its snapshot test THEN none is
    # left out: a pattern stack by its folder's test_template.py, the others here
    patterns = {cls.pattern_name: cls.__module__.split(".")[1] for cls in pattern_stack_classes()}
    tested = {
        name
        for name, folder in patterns.items()
        if "stack_snapshot(STACK)" in (TESTS_DIR / folder / "test_template.py").read_text()
    }
    assert sorted(ephemeral.templates) == sorted([*STAGE_STACKS, *tested])


def _zip_assets(stage: SynthesizedStage, object_keys: set[str]) -> dict[str, Path]:
    """Asset directories of the given S3 object keys (without ``.zip``), by hash."""
    assets: dict[str, Path] = {}
    for manifest in stage.outdir.glob(f"assembly-{stage.name}/*.assets.json"):
        files: dict[str, Any] = json.loads(manifest.read_text())["files"]
        for asset_hash, asset in files.items():
            if asset["source"].get("packaging") == "zip" and asset_hash in object_keys:
                assets[asset_hash] = (manifest.parent / asset["source"]["path"]).resolve()
    return assets


def _object_keys(stage: SynthesizedStage, resource_type: str, code_property: str) -> set[str]:
    return {
        resource["Properties"][code_property]["S3Key"].removesuffix(".zip")
        for template in stage.templates.values()
        for resource in template.to_json()["Resources"].values()
        if resource["Type"] == resource_type
        and str(resource["Properties"].get("Runtime", "python")).startswith("python")
        and isinstance(resource["Properties"].get(code_property, {}).get("S3Key"), str)
    }


def function_assets(stage: SynthesizedStage) -> dict[str, Path]:
    """Asset directory of every Python function's code, by asset hash."""
    # Python functions only: CDK's own helpers (e.g. the Node.js handler that empties
    # a bucket on destroy) bring assets that are not function folders of this app.
    return _zip_assets(stage, _object_keys(stage, "AWS::Lambda::Function", "Code"))


def layer_assets(stage: SynthesizedStage) -> dict[str, Path]:
    """Asset directory of every layer this app builds (external layers have none)."""
    return _zip_assets(stage, _object_keys(stage, "AWS::Lambda::LayerVersion", "Content"))


def _files(folder: Path) -> tuple[str, ...]:
    return tuple(
        sorted(
            str(path.relative_to(folder))
            for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix == ".py"
        )
    )


def _assert_small_python_only(asset_dir: Path, tmp_path: Path) -> tuple[str, ...]:
    names = tuple(
        sorted(str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file())
    )
    assert names and all(n.endswith(".py") for n in names), names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    archive = tmp_path / f"{asset_dir.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in names:
            zipped.write(asset_dir / name, name)
    assert archive.stat().st_size < MAX_ASSET_BYTES
    return names


def test_each_pattern_folder_is_one_asset_of_its_own_files_only(
    ephemeral: SynthesizedStage, tmp_path: Path
) -> None:
    # GIVEN the pattern folders' code roots
    folders = sorted(PATTERNS_DIR.glob("*/runtime"))
    # WHEN the stage is synthesized
    assets = function_assets(ephemeral)
    # THEN one asset per pattern folder, shared by the pattern's functions, holding
    # exactly that folder's modules
    asset_files = sorted(_assert_small_python_only(path, tmp_path) for path in assets.values())
    assert asset_files == sorted(_files(folder) for folder in folders)


def test_the_shared_layer_is_one_asset_of_the_shared_files_only(
    ephemeral: SynthesizedStage, tmp_path: Path
) -> None:
    # GIVEN blocks/handler_layer WHEN the stage is synthesized
    assets = layer_assets(ephemeral)
    # THEN every stack's layer is the same single asset, holding exactly python/handler_kit
    assert len(assets) == 1
    (layer_dir,) = assets.values()
    names = _assert_small_python_only(layer_dir, tmp_path)
    assert names == _files(HANDLER_LAYER_DIR)
    assert all(name.startswith("python/handler_kit/") for name in names)


def test_local_powertools_is_the_release_of_the_pinned_layer() -> None:
    # Handler tests run on the PyPI release; Lambda runs the layer. They must agree.
    assert powertools.VERSION == POWERTOOLS_VERSION


@pytest.mark.parametrize("requirement_file", ["requirements-dev.txt"])
def test_requirements_pin_the_layer_release(requirement_file: str) -> None:
    text = (PROJECT_ROOT / requirement_file).read_text()
    assert f"aws-lambda-powertools[parser]=={POWERTOOLS_VERSION}" in text
