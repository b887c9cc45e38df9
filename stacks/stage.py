"""The stage: every pattern stack of one stage name, and the app that builds it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from blocks.compliance import add_compliance_checks
from blocks.stage_settings import StageSettings
from stacks.alerts import AlertsStack
from stacks.pattern_stack import PatternStack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"
PATTERNS_DIR = PROJECT_ROOT / "patterns"


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json: app settings and the feature flags.

    The CDK CLI passes it to ``app.py``; a ``cdk.App()`` built anywhere else (tests,
    localstage, ``python app.py``) must load it itself or it misses the feature flags.
    """
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def new_app(*, outdir: str | Path | None = None, **context: Any) -> cdk.App:
    """A ``cdk.App`` with the cdk.json context plus ``context`` (e.g. ``stage="pr-1"``)."""
    return cdk.App(
        outdir=str(outdir) if outdir is not None else None,
        context={**cdk_json_context(), **context},
    )


def pattern_stack_classes() -> list[type[PatternStack]]:
    """Every ``PatternStack`` subclass of the pattern folders (``patterns/<name>/stack.py``),
    in folder name order.

    Discovered rather than listed, so a fork removes a pattern by deleting its folder.
    """
    for folder in sorted(p for p in PATTERNS_DIR.iterdir() if (p / "stack.py").is_file()):
        importlib.import_module(f"patterns.{folder.name}.stack")
    return list(PatternStack.registry)


class ServerlessPatternsStage(cdk.Stage):
    """One isolated copy of the app: ``<stage>-Alerts`` plus one stack per pattern.

    Attributes
    ----------
    settings:
        The stage's settings.
    alerts:
        The stack with the stage's alarm topic.
    pattern_stacks:
        The pattern stacks by pattern name.
    """

    def __init__(self, scope: Construct, *, settings: StageSettings) -> None:
        super().__init__(scope, settings.stage_name)
        self.settings = settings
        cdk.Tags.of(self).add("app", settings.app_name)
        cdk.Tags.of(self).add("stage", settings.stage_name)
        self.alerts = AlertsStack(self, settings=settings)
        self.pattern_stacks: dict[str, PatternStack] = {}
        for stack_class in pattern_stack_classes():
            stack = stack_class(self, settings=settings, alarm_topic=self.alerts.alarm_topic)
            self.pattern_stacks[stack_class.pattern_name] = stack


def stage_settings(app: cdk.App, *, stage_name: str | None = None) -> StageSettings:
    """The settings of the stage ``app`` builds: its context (cdk.json and ``-c``).

    Raises
    ------
    InvalidStageNameError
        When the stage name cannot be used.
    """
    context = {key: app.node.try_get_context(key) for key in StageSettings.CONTEXT_KEYS}
    return StageSettings.from_context(context, stage_name=stage_name)


def build_stage(
    app: cdk.App, *, stage_name: str | None = None, compliance_checks: bool = True
) -> ServerlessPatternsStage:
    """Add the stage named by ``-c stage=NAME`` (or ``default_stage``) to ``app``.

    With ``compliance_checks`` (the default, and what the CLI uses) cdk-nag's
    AwsSolutions and Serverless packs run on every synth and any finding fails it.
    Tests turn them off and run the packs themselves to list the findings.

    Raises
    ------
    InvalidStageNameError
        When the stage name cannot be used.
    """
    settings = stage_settings(app, stage_name=stage_name)
    stage = ServerlessPatternsStage(app, settings=settings)
    if compliance_checks:
        # A nested Stage synthesizes its own assembly and validates it with its plugins.
        add_compliance_checks(stage)
    return stage
