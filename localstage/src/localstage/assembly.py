"""The cloud assembly of one stage: its stacks, templates and function code folders."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The CDK app's folder (``cdk.json``, ``node_modules``): ``$LOCALSTAGE_APP_DIR``, else the
#: working directory. localstage imports nothing from the app: it synthesizes through the
#: app's own CDK CLI and ``cdk.json``.
PROJECT_ROOT = Path(os.environ.get("LOCALSTAGE_APP_DIR") or Path.cwd()).resolve()
DEFAULT_STAGE = "local"
DEFAULT_WORKDIR = PROJECT_ROOT / ".localstage"


class AssemblyError(RuntimeError):
    """The cloud assembly cannot be read or synthesized."""


@dataclass
class StackArtifact:
    """One CloudFormation stack of the stage, as synthesized."""

    artifact_id: str
    stack_name: str
    display_name: str
    template: dict[str, Any]
    dependencies: list[str]
    assets: dict[str, Path] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.get("Resources") or {}
        return resources

    def asset_path(self, object_key: str) -> Path | None:
        """The folder (or file) an asset object key was built from."""
        return self.assets.get(object_key.split(".")[0])


@dataclass
class Assembly:
    """The stacks of one stage, in deployment order (dependencies first)."""

    directory: Path
    stage_name: str
    stacks: list[StackArtifact]

    def stack(self, name: str) -> StackArtifact:
        """A stack by stack name (``local-DecoupledInvocation``) or display name suffix."""
        for stack in self.stacks:
            if name in (stack.stack_name, stack.artifact_id, stack.display_name):
                return stack
            if stack.stack_name.endswith(f"-{name}"):
                return stack
        raise KeyError(f"no stack {name!r} in stage {self.stage_name}")


def synthesize(stage_name: str = DEFAULT_STAGE, outdir: Path | None = None) -> Path:
    """Synthesize ``stage_name`` into ``outdir``: :func:`synthesize_with_cli`, as ``app.py``
    would under ``cdk synth`` (cdk-nag runs as in every synth; a finding fails it)."""
    return synthesize_with_cli(stage_name, outdir)


def synthesize_with_cli(
    stage_name: str = DEFAULT_STAGE, outdir: Path | None = None, *, validate_templates: bool = True
) -> Path:
    """Synthesize ``stage_name`` into ``outdir`` with the project's CDK CLI, as
    ``make synth`` does (cdk.json's app command, cdk-nag included).

    It proves the path a user takes, and needs nothing from the app but its
    ``cdk.json``. Returns the directory of the stage's nested assembly.

    ``validate_templates=False`` turns off CDK's built-in CloudFormation validation
    (``CDK_VALIDATION=false``) for this synth only: about half of a synth's CPU (its
    WebAssembly engine's start and the templates' checks), for a caller whose tests
    validate the same app's templates elsewhere. The templates are the same either way.
    """
    outdir = Path(outdir or DEFAULT_WORKDIR / "cdk.out").resolve()
    node_bin = PROJECT_ROOT / "node_modules" / ".bin"
    cli = node_bin / "cdk"
    if not cli.exists():
        raise AssemblyError(f"no CDK CLI at {cli}: run `make install`")
    env = {
        **os.environ,
        # The CLI and jsii run on the project's Node.js (the machine's may be too old).
        "PATH": f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "JSII_NODE": str(node_bin / "node"),
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    if not validate_templates:
        env["CDK_VALIDATION"] = "false"
    # The stage's stacks by path (the app nests them in a cdk.Stage named after the
    # stage): the CLI fails the synth on error annotations (cdk-nag's findings) only in
    # the stacks it selected, and with no selector it selects none.
    command = [
        str(cli),
        "synth",
        f"{stage_name}/*",
        "-c",
        f"stage={stage_name}",
        "--output",
        str(outdir),
        "--quiet",
    ]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-3000:]
        raise AssemblyError(f"cdk synth of stage {stage_name!r} failed:\n{output}")
    return outdir / f"assembly-{stage_name}"


def load(directory: Path, stage_name: str | None = None) -> Assembly:
    """Read the stacks, templates and asset manifests of a synthesized stage."""
    directory = Path(directory)
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise AssemblyError(f"{directory} is not a cloud assembly (no manifest.json)")
    manifest = json.loads(manifest_file.read_text())
    artifacts: dict[str, Any] = manifest.get("artifacts") or {}
    asset_files: dict[str, dict[str, Path]] = {}
    for artifact_id, artifact in artifacts.items():
        if artifact.get("type") == "cdk:asset-manifest":
            asset_files[artifact_id] = _read_assets(directory / artifact["properties"]["file"])
    stacks: dict[str, StackArtifact] = {}
    for artifact_id, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties") or {}
        template = json.loads((directory / properties["templateFile"]).read_text())
        assets: dict[str, Path] = {}
        for dependency in artifact.get("dependencies") or []:
            assets.update(asset_files.get(dependency, {}))
        stacks[artifact_id] = StackArtifact(
            artifact_id=artifact_id,
            stack_name=properties.get("stackName", artifact_id),
            display_name=artifact.get("displayName", artifact_id),
            template=template,
            dependencies=[
                dep
                for dep in artifact.get("dependencies") or []
                if artifacts.get(dep, {}).get("type") == "aws:cloudformation:stack"
            ],
            assets=assets,
        )
    return Assembly(
        directory=directory,
        stage_name=stage_name or directory.name.removeprefix("assembly-"),
        stacks=_in_dependency_order(stacks),
    )


def _read_assets(path: Path) -> dict[str, Path]:
    files: dict[str, Any] = json.loads(path.read_text()).get("files") or {}
    return {
        asset_hash: (path.parent / entry["source"]["path"]).resolve()
        for asset_hash, entry in files.items()
        if entry.get("source", {}).get("packaging") == "zip"
        or (path.parent / entry["source"]["path"]).is_dir()
    }


def _in_dependency_order(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    visiting: set[str] = set()

    def visit(artifact_id: str) -> None:
        stack = stacks[artifact_id]
        if stack in ordered:
            return
        if artifact_id in visiting:
            raise AssemblyError(f"stack dependency cycle through {artifact_id}")
        visiting.add(artifact_id)
        for dependency in stack.dependencies:
            visit(dependency)
        ordered.append(stack)

    for artifact_id in stacks:
        visit(artifact_id)
    return ordered
