"""Benchmarks that need no running stage: synth, test suite, assets (cold start: cold_start.py)."""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.figures import Figure

ROOT = Path(__file__).resolve().parents[1]
#: Each code asset's folder by name: the patterns' code roots and the handler_kit layer.
CODE_FOLDERS = {
    **{p.parent.name: p for p in sorted((ROOT / "patterns").glob("*/runtime"))},
    "handler_layer": ROOT / "blocks" / "handler_layer",
}
PYTHON = sys.executable

SYNTH_TARGET_RATIO = 2.0
MAKE_TEST_TARGET_S = 180.0
#: The bound tests/infra/test_snapshots.py guards (MAX_ASSET_BYTES): a bundled dependency
#: or data file (hundreds of KB) trips it, a pattern's own source does not. The first
#: target, 20 KB, dates from when each pattern was one module; split by role and
#: hardened, three patterns passed it with 23-25 KB of their own source. What a KB of
#: source costs at cold start is in the cold-start rows (the handler's own code).
ASSET_TARGET_KB = 64.0

#: An empty CDK Python app: one stack with nothing in it, synthesized as ours is.
_EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App()
cdk.Stack(app, "Empty")
app.synth()
"""
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def _run_seconds(
    args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


#: The stage the synth row synthesizes; its assembly is ``assembly-<stage>`` in the output.
SYNTH_STAGE = "bench"


def synth_figures(whole_app_out: Path, repeat: int = 3) -> list[Figure]:
    """One stage's synth through the CDK CLI (cdk-nag on) vs an empty CDK Python app's.

    Both go through ``cdk synth`` as a user runs it, so both pay the CLI's start, jsii's
    start and CDK's built-in template validation; the difference is the app's own work.
    The two alternate (empty, whole, empty, ...), so a slower or faster spell of the
    machine weighs on both medians alike instead of on one of them. The whole app's
    last synth stays in ``whole_app_out`` (stage :data:`SYNTH_STAGE`): the cold start and
    asset rows read its functions, without a synth of their own.
    """
    with tempfile.TemporaryDirectory() as out:
        empty = Path(out) / "empty"
        empty.mkdir()
        (empty / "app.py").write_text(_EMPTY_APP)
        (empty / "cdk.json").write_text(json.dumps({"app": f"{PYTHON} app.py"}))
        synth = [str(CDK), "synth", "--quiet", "--output"]
        # Selected as `make synth` selects them, so cdk-nag's findings fail it.
        whole = [*synth, str(whole_app_out), f"{SYNTH_STAGE}/*", "-c", f"stage={SYNTH_STAGE}"]
        floors: list[float] = []
        fulls: list[float] = []
        for _ in range(repeat):
            floors.append(_run_seconds([*synth, f"{out}/empty.out"], cwd=empty))
            fulls.append(_run_seconds(whole))
        floor, full = statistics.median(floors), statistics.median(fulls)
    return [
        Figure(
            table="Synth and tests",
            name="synth, whole app, one stage, via the CLI (cdk-nag on)",
            value=full,
            unit="s",
            floor=floor,
            target=f"<= {SYNTH_TARGET_RATIO:g}x floor",
            met=full <= SYNTH_TARGET_RATIO * floor,
            note=(
                "floor: an empty CDK Python app, also via `cdk synth`; "
                f"median of {repeat} each, the two alternating"
            ),
        )
    ]


def make_test_figure() -> Figure:
    """Wall time of the README's test command on this tree, as on a fresh clone: with
    an empty mypy cache (a warm one saves mypy most of its work)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "MYPY_CACHE_DIR": cache}
        seconds = _run_seconds(["make", "--no-print-directory", "test"], env=env)
    return Figure(
        table="Synth and tests",
        name="`make test` (lint, all pytest suites)",
        value=seconds,
        unit="s",
        target=f"< {MAKE_TEST_TARGET_S:g} s",
        met=seconds < MAKE_TEST_TARGET_S,
        note="installed venv and node_modules, empty mypy cache; one run",
    )


@dataclass(frozen=True)
class FunctionAsset:
    """A Lambda function of the synthesized stage and its code asset."""

    name: str
    handler_module: str
    asset_dir: Path
    environment: dict[str, str]
    #: ``python/`` folders of the layers this app builds, in the function's layer order.
    layer_dirs: tuple[Path, ...] = ()


def synthesized_functions(assembly_dir: Path) -> list[FunctionAsset]:
    """Every Python function of a synthesized stage, with its asset folder and env vars."""
    functions: list[FunctionAsset] = []
    for template_path in sorted(assembly_dir.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        resources = template.get("Resources", {})
        for resource in resources.values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            props = resource["Properties"]
            s3_key = props.get("Code", {}).get("S3Key")
            if not isinstance(s3_key, str) or not s3_key.endswith(".zip"):
                continue
            # The app's functions; not the Node.js custom resource providers CDK adds
            # (e.g. S3 auto-delete objects), whose `index` is no Python module.
            if not str(props.get("Runtime", "")).startswith("python"):
                continue
            # File assets are staged next to the nested assembly as asset.<hash>/.
            asset_dir = assembly_dir.parent / f"asset.{s3_key.removesuffix('.zip')}"
            variables = props.get("Environment", {}).get("Variables", {})
            # Values that are references to other resources become placeholders: the
            # import must not need the resources, only names.
            environment = {
                key: value if isinstance(value, str) else f"placeholder-{key.lower()}"
                for key, value in variables.items()
            }
            path = resource["Metadata"]["aws:cdk:path"].split("/")
            functions.append(
                FunctionAsset(
                    name=f"{path[1]}/{path[-3]}",
                    handler_module=props["Handler"].rsplit(".", 1)[0],
                    asset_dir=asset_dir.resolve(),
                    environment=environment,
                    layer_dirs=_layer_dirs(props, resources, assembly_dir),
                )
            )
    return functions


def _layer_dirs(
    props: dict[str, Any], resources: dict[str, Any], assembly_dir: Path
) -> tuple[Path, ...]:
    """The ``python/`` folders of a function's layers that are assets of the stage.

    Resolved like localstage does: a Ref to a LayerVersion of the template runs from
    its asset; external layers (Powertools) come from the virtualenv and are skipped.
    """
    folders = []
    for layer in props.get("Layers", []):
        ref = layer.get("Ref") if isinstance(layer, dict) else None
        target = resources.get(ref) if isinstance(ref, str) else None
        if not target or target["Type"] != "AWS::Lambda::LayerVersion":
            continue
        s3_key = target["Properties"].get("Content", {}).get("S3Key")
        if isinstance(s3_key, str):
            asset_dir = assembly_dir.parent / f"asset.{s3_key.removesuffix('.zip')}"
            folders.append((asset_dir / "python").resolve())
    return tuple(folders)


def _zip_size(folder: Path) -> tuple[int, list[str]]:
    buffer = io.BytesIO()
    names = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(_files(folder)):
            name = path.relative_to(folder).as_posix()
            names.append(name)
            archive.write(path, name)
    return buffer.tell(), names


def _files(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file())


def asset_figures(functions: Sequence[FunctionAsset]) -> list[Figure]:
    """Zipped size of each code asset, and whether it holds only its pattern's code."""
    figures = []
    for asset_dir in sorted({function.asset_dir for function in functions}):
        size, names = _zip_size(asset_dir)
        users = sorted(f.name for f in functions if f.asset_dir == asset_dir)
        own = next(
            (
                folder
                for folder, folder_dir in CODE_FOLDERS.items()
                if {
                    p.relative_to(folder_dir).as_posix()
                    for p in _files(folder_dir)
                    if "__pycache__" not in p.parts
                }
                == set(names)
            ),
            None,
        )
        kilobytes = size / 1024
        figures.append(
            Figure(
                table="Function code assets (zipped)",
                name=own or f"unmatched asset for {', '.join(users)}",
                value=kilobytes,
                unit="KB",
                target=f"< {ASSET_TARGET_KB:g} KB, only its pattern's files",
                met=kilobytes < ASSET_TARGET_KB and own is not None,
                note=f"{len(names)} files; used by {len(users)} function(s)",
            )
        )
    return figures
