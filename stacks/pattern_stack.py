"""What every pattern stack shares: naming, tags, protection, monitoring."""

from __future__ import annotations

import re
from typing import ClassVar

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from blocks.monitoring import ServiceMonitoring
from blocks.outputs import stable_output
from blocks.provided_functions import own_provided_function_logs
from blocks.stage_settings import StageSettings
from patterns import pattern_name_of


class PatternStack(cdk.Stack):
    """Base of the per-pattern stacks: ``<stage>-<PatternName>``, tagged and monitored.

    Subclasses build their pattern in :meth:`build`, which ``__init__`` calls:
    ``FanOutFanInStack(stage, settings=settings, alarm_topic=topic)``. ``pattern_name``
    (PascalCase, used in stack, alarm and dashboard names) is the pattern folder's name:
    the subclass in ``patterns/fan_out_fan_in/stack.py`` is ``FanOutFanIn``. The stage
    deploys the subclass of every pattern folder, so removing a pattern is deleting its folder and
    adding one is copying a folder under a new name; nothing else lists them.
    """

    pattern_name: ClassVar[str]
    registry: ClassVar[list[type[PatternStack]]] = []

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "pattern_name" not in cls.__dict__:
            cls.pattern_name = pattern_name_of(cls.__module__)
        # The stage's alarm topic admits alarms named "<stage>-<Capital>..." only (a stage
        # name has no capital letter: AlertsStack), so a name must start with one.
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", cls.pattern_name):
            raise TypeError(
                f"pattern name {cls.pattern_name!r} of {cls.__qualname__}: PascalCase "
                "letters and digits, starting with a capital letter"
            )
        PatternStack.registry.append(cls)

    def __init__(
        self, scope: Construct, *, settings: StageSettings, alarm_topic: sns.ITopic
    ) -> None:
        super().__init__(
            scope,
            self.pattern_name,
            stack_name=f"{settings.stage_name}-{self.pattern_name}",
            description=f"{self.pattern_name} pattern, stage {settings.stage_name}",
            termination_protection=settings.persistent,
            tags=settings.stack_tags(self.pattern_name),
        )
        self.settings = settings
        cdk.Tags.of(self).add("pattern", self.pattern_name)
        self.monitoring = ServiceMonitoring(
            self,
            "Monitoring",
            settings=settings,
            pattern_name=self.pattern_name,
            alarm_topic=alarm_topic,
        )
        self.build(settings)
        # Functions CDK adds by itself (bucket notifications, auto-delete) log to groups
        # this stack owns, so an ephemeral stage destroys to nothing. After build(): they
        # exist by then (a subclass adding constructs later must call this again).
        own_provided_function_logs(self, settings=settings)

    def build(self, settings: StageSettings) -> None:
        """Add the pattern's construct, monitoring and outputs (each subclass does)."""
        raise NotImplementedError

    def output(self, name: str, value: str, description: str) -> cdk.CfnOutput:
        """Add a stack output whose key is ``name`` (stable: tests and clients use it)."""
        return stable_output(self, name, value, description)
