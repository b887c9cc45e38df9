"""Synthesize once per test session: one ephemeral stage, one persistent stage, and the
account app (API Gateway account setting and CI access)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from constructs import IConstruct
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from account.build import AccountStacks, build_account
from account_app import stack_names
from blocks.stage_settings import StageSettings
from stacks.stage import ServerlessPatternsStage, build_stage, new_app

#: An ephemeral stage, for constructs built alone in a scratch stack.
SCRATCH_STAGE = StageSettings(
    app_name="serverless-patterns", stage_name="scratch", persistent=False
)

EPHEMERAL_STAGE = "pr-1"
PERSISTENT_STAGE = "prod"
#: The repository the account app's CI access is synthesized for in the tests.
GITHUB_REPO = "octo-org/shop"


@dataclass
class SynthesizedStage:
    """A stage synthesized into ``outdir``, with its templates parsed once."""

    stage: ServerlessPatternsStage
    outdir: Path
    templates: dict[str, Template]
    #: Each template's JSON text, fetched from jsii once (see ``template_json``).
    _template_texts: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.stage.settings.stage_name

    def template(self, stack_id: str) -> Template:
        return self.templates[stack_id]

    def template_json(self, stack_id: str) -> dict[str, Any]:
        """The stack's template as JSON values, a new copy for each call.

        ``Template.to_json`` is a jsii call that serializes the whole template in node
        and parses it back (~90 ms a stack); the suite asks some 160 times. The text is
        fetched once and parsed anew each time (~2 ms), so no test sees another's edits.
        """
        if stack_id not in self._template_texts:
            self._template_texts[stack_id] = json.dumps(self.templates[stack_id].to_json())
        parsed: dict[str, Any] = json.loads(self._template_texts[stack_id])
        return parsed


def synthesize(stage_name: str, outdir: Path) -> SynthesizedStage:
    """Build and synthesize the app for ``stage_name`` with cdk.json's context."""
    app = new_app(outdir=outdir, stage=stage_name)
    stage = build_stage(app, compliance_checks=False)
    app.synth()
    templates = {stack.node.id: Template.from_stack(stack) for stack in _stacks(stage)}
    return SynthesizedStage(stage=stage, outdir=outdir, templates=templates)


def _stacks(stage: ServerlessPatternsStage) -> list[cdk.Stack]:
    return [child for child in stage.node.children if isinstance(child, cdk.Stack)]


@pytest.fixture(scope="session")
def ephemeral(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    return synthesize(EPHEMERAL_STAGE, tmp_path_factory.mktemp("cdk-ephemeral"))


@pytest.fixture(scope="session")
def persistent(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    return synthesize(PERSISTENT_STAGE, tmp_path_factory.mktemp("cdk-persistent"))


@pytest.fixture(scope="module")
def template(request: pytest.FixtureRequest, ephemeral: SynthesizedStage) -> Template:
    """The ephemeral stage's template of the stack the test module names in ``STACK``."""
    return ephemeral.template(request.module.STACK)


@pytest.fixture(scope="module")
def resources(request: pytest.FixtureRequest, ephemeral: SynthesizedStage) -> dict[str, Any]:
    """The ``Resources`` of the ephemeral stage's ``STACK`` (the test module's) template."""
    found: dict[str, Any] = ephemeral.template_json(request.module.STACK)["Resources"]
    return found


@pytest.fixture(scope="session", params=["ephemeral", "persistent"])
def any_stage(request: pytest.FixtureRequest) -> SynthesizedStage:
    stage: SynthesizedStage = request.getfixturevalue(request.param)
    return stage


@dataclass
class SynthesizedAccount:
    """The account app synthesized into ``outdir`` (both stacks, every CI role)."""

    stacks: AccountStacks
    outdir: Path

    def template_json(self, stack: cdk.Stack) -> dict[str, Any]:
        return dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="session")
def account(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedAccount:
    """The account app as ``make account GITHUB_REPO=...`` deploys it (a small app, no assets)."""
    outdir = tmp_path_factory.mktemp("cdk-account")
    app = new_app(outdir=outdir, github_repo=GITHUB_REPO)
    stacks = build_account(app, stack_names=stack_names(), compliance_checks=False)
    app.synth()
    return SynthesizedAccount(stacks=stacks, outdir=outdir)


_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def normalized(template: dict[str, Any]) -> dict[str, Any]:
    """The template with what churns without a real change (asset hashes) masked."""
    text = _ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    masked: dict[str, Any] = json.loads(text)
    return masked


def acknowledgments(stage: SynthesizedStage) -> list[str]:
    """Every acknowledgment in the stage, as ``path rule: reason`` lines (read once).

    Synth writes every construct's metadata in a stack, acknowledgments included, to the
    stack's metadata file in the cloud assembly: read there, not construct by construct
    through jsii (two calls per construct, ~2 s of CPU a stage). The few constructs
    outside any stack (the stage itself) are still asked directly.
    """
    if stage.name not in _ACKNOWLEDGMENTS:
        key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        prefix = f"{stage.name}/"
        entries: list[tuple[str, dict[str, str]]] = []
        assembly = stage.outdir / f"assembly-{stage.name}"
        manifest = json.loads((assembly / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            metadata = dict(artifact.get("metadata", {}))
            if "additionalMetadataFile" in artifact:
                metadata_file = assembly / artifact["additionalMetadataFile"]
                metadata.update(json.loads(metadata_file.read_text()))
            for path, path_entries in metadata.items():
                entries += [(path.lstrip("/"), e["data"]) for e in path_entries if e["type"] == key]
        for construct in _outside_stacks(stage.stage):
            for entry in construct.node.metadata:
                if entry.type == key:
                    entries.append((construct.node.path, entry.data))
        _ACKNOWLEDGMENTS[stage.name] = sorted(
            f"{path.removeprefix(prefix)} {rule.removeprefix('Annotation::')}: {reason}"
            for path, data in entries
            for rule, reason in data.items()
        )
    return _ACKNOWLEDGMENTS[stage.name]


def _outside_stacks(scope: IConstruct) -> Iterator[IConstruct]:
    """``scope`` and every construct under it that is not in a stack."""
    yield scope
    for child in scope.node.children:
        if not isinstance(child, cdk.Stack):
            yield from _outside_stacks(child)


_ACKNOWLEDGMENTS: dict[str, list[str]] = {}


def stack_acknowledgments(stage: SynthesizedStage, stack_id: str) -> list[str]:
    """The stack's cdk-nag acknowledgments, as ``path rule: reason`` lines."""
    return [line for line in acknowledgments(stage) if line.startswith(f"{stack_id}/")]


@pytest.fixture
def stack_snapshot(
    ephemeral: SynthesizedStage, persistent: SynthesizedStage, snapshot: SnapshotAssertion
) -> Callable[[str], None]:
    """``stack_snapshot(stack_id)`` asserts the stack's one snapshot file: its template in
    an ephemeral and a persistent stage (asset hashes masked) and its acknowledgments.

    The file sits beside the test module that calls it (``__snapshots__/``), so a
    pattern's snapshot goes with the pattern's tests and a diff names the stack.
    """
    json_snapshot = snapshot.use_extension(JSONSnapshotExtension)

    def check(stack_id: str) -> None:
        stages = (ephemeral, persistent)
        assert {
            "acknowledgments": {s.name: stack_acknowledgments(s, stack_id) for s in stages},
            "templates": {s.name: normalized(s.template_json(stack_id)) for s in stages},
        } == json_snapshot

    return check
