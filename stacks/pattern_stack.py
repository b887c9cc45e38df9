"""What every pattern stack shares: naming, tags, protection, monitoring."""

from __future__ import annotations

from typing import ClassVar

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from patterns.monitoring import ServiceMonitoring
from patterns.outputs import stable_output
from patterns.provided_functions import own_provided_function_logs
from patterns.stage_settings import StageSettings


class PatternStack(cdk.Stack):
    """Base of the per-pattern stacks: ``<stage>-<PatternName>``, tagged and monitored.

    Subclasses set ``pattern_name`` (PascalCase, used in stack, alarm and dashboard
    names) and build their pattern in ``__init__``. Every subclass defined in a module
    of ``stacks/`` is deployed by the stage, so removing a pattern means deleting its
    files; nothing else lists it.

    Examples
    --------
    >>> class DecoupledInvocationStack(PatternStack):
    ...     pattern_name = "DecoupledInvocation"
    ...     def __init__(self, scope, *, settings, alarm_topic):
    ...         super().__init__(scope, settings=settings, alarm_topic=alarm_topic)
    ...         ...  # doctest: +SKIP
    """

    pattern_name: ClassVar[str]
    registry: ClassVar[list[type[PatternStack]]] = []

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
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
        )
        self.settings = settings
        cdk.Tags.of(self).add("pattern", self.pattern_name)
        # Functions CDK adds by itself (bucket notifications, auto-delete) log to groups
        # this stack owns, so an ephemeral stage destroys to nothing.
        own_provided_function_logs(self, settings=settings)
        self.monitoring = ServiceMonitoring(
            self,
            "Monitoring",
            settings=settings,
            pattern_name=self.pattern_name,
            alarm_topic=alarm_topic,
        )

    def output(self, name: str, value: str, description: str) -> cdk.CfnOutput:
        """Add a stack output whose key is ``name`` (stable: tests and clients use it)."""
        return stable_output(self, name, value, description)
