"""What differs between stages: the stage name and whether its data is kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

MAX_STAGE_NAME_LENGTH = 24
# Lowercase because stage names end up in names AWS lowercases or rejects (S3, dashboards);
# at most 24 characters so `<stage>-<Pattern>` stack names and the names CloudFormation
# derives from them (functions 64, roles 64, queues 80) keep the stage readable.
_STAGE_NAME = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
STAGE_NAME_RULE = (
    f"1-{MAX_STAGE_NAME_LENGTH} characters: lowercase letters, digits and hyphens, "
    "starting with a letter and not ending with a hyphen (e.g. dev, pr-42, prod)"
)


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HTTPS_URL = re.compile(r"https://[^\s]+")


class InvalidStageNameError(ValueError):
    """Raised when a stage name cannot be used to derive resource names."""


def validate_stage_name(name: str) -> str:
    """Return ``name`` if it is a usable stage name, else raise.

    Parameters
    ----------
    name:
        The candidate stage name, e.g. ``"pr-42"``.

    Raises
    ------
    InvalidStageNameError
        With a one-line message that says what is allowed.

    Examples
    --------
    >>> validate_stage_name("pr-42")
    'pr-42'
    """
    if len(name) > MAX_STAGE_NAME_LENGTH or not _STAGE_NAME.match(name):
        raise InvalidStageNameError(f"invalid stage name {name!r}: use {STAGE_NAME_RULE}")
    return name


@dataclass(frozen=True, kw_only=True)
class StageSettings:
    """Per-stage settings every construct of a stage reads.

    A persistent stage keeps its data (RETAIN, point-in-time recovery, deletion
    protection); every other stage is ephemeral and ``cdk destroy`` removes all of it.

    Examples
    --------
    >>> settings = StageSettings(app_name="serverless-patterns", stage_name="pr-42",
    ...                          persistent=False)
    >>> settings.removal_policy
    <RemovalPolicy.DESTROY: 'DESTROY'>
    """

    app_name: str
    stage_name: str
    persistent: bool
    #: Per-pattern tuning for this stage from cdk.json ``stage_tuning.<stage>.<Pattern>``;
    #: each pattern stack reads the keys it documents (e.g. shorter timeouts locally).
    tuning: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Active X-Ray tracing of the functions; ``None`` follows ``persistent`` (on for
    #: staging/prod, off for dev and pull-request stages: see README "Tracing"). API
    #: Gateway stages trace on every stage whatever this says (``blocks.api``).
    tracing: bool | None = None
    #: Who gets the stage's alarms, from cdk.json ``alarm_subscriptions.<stage>``: email
    #: addresses and HTTPS endpoints (a chat integration's webhook, an incident tool).
    alarm_subscribers: tuple[str, ...] = ()

    #: Every context key :meth:`from_context` reads: the app hands over these and no
    #: others (a key missing here would be dropped without a word).
    CONTEXT_KEYS: ClassVar[tuple[str, ...]] = (
        "app_name",
        "default_stage",
        "persistent_stages",
        "stage",
        "stage_tuning",
        "tuning",
        "tracing",
        "alarm_subscriptions",
    )

    def __post_init__(self) -> None:
        validate_stage_name(self.stage_name)
        for subscriber in self.alarm_subscribers:
            if not (_EMAIL.fullmatch(subscriber) or _HTTPS_URL.fullmatch(subscriber)):
                raise InvalidStageNameError(
                    f"cdk.json alarm_subscriptions.{self.stage_name}: {subscriber!r} is "
                    "neither an email address nor an https:// URL"
                )

    @classmethod
    def from_context(
        cls, context: Mapping[str, Any], *, stage_name: str | None = None
    ) -> StageSettings:
        """Build the settings from CDK context (cdk.json plus ``-c`` values).

        Parameters
        ----------
        context:
            The values of :attr:`CONTEXT_KEYS`; ``app_name``, ``default_stage`` and
            ``persistent_stages`` are required, the others optional.
        stage_name:
            Overrides ``context["stage"]``.

        Raises
        ------
        InvalidStageNameError
            When the stage name is unusable, or ``tuning`` names no entry of
            ``stage_tuning``.

        Notes
        -----
        ``context["tuning"]`` (``-c tuning=local``) gives a stage the tuning cdk.json
        holds for another one: a pull request's stage deployed for the e2e suite takes
        stage ``local``'s short recursive-processor hops, so a test-sized file needs
        several hops there too.

        ``context["tracing"]`` (``-c tracing=true``, or a boolean in cdk.json) turns
        active tracing on or off for the stage; without it, persistent stages trace
        and ephemeral ones do not.
        """
        name = stage_name or context.get("stage") or context["default_stage"]
        all_tuning = context.get("stage_tuning") or {}
        profile = context.get("tuning") or name
        if context.get("tuning") and profile not in all_tuning:
            raise InvalidStageNameError(
                f"-c tuning={profile}: cdk.json stage_tuning has no entry {profile!r} "
                f"(it has {', '.join(sorted(all_tuning)) or 'none'})"
            )
        return cls(
            app_name=str(context["app_name"]),
            stage_name=validate_stage_name(str(name)),
            persistent=name in set(context.get("persistent_stages", [])),
            tuning=dict(all_tuning.get(profile, {})),
            tracing=_optional_flag(context.get("tracing"), "tracing"),
            alarm_subscribers=tuple(
                str(s) for s in (context.get("alarm_subscriptions") or {}).get(name, [])
            ),
        )

    def tuning_for(self, pattern_name: str) -> Mapping[str, Any]:
        """This stage's tuning of one pattern (empty when cdk.json sets none)."""
        return self.tuning.get(pattern_name, {})

    @property
    def tracing_enabled(self) -> bool:
        """Whether this stage's functions run with active X-Ray tracing (its API stages
        always trace)."""
        return self.persistent if self.tracing is None else self.tracing

    def stack_tags(self, pattern: str) -> dict[str, str]:
        """The tags of one of the stage's CloudFormation stacks (``explicitStackTags``:
        ``Tags.of`` tags resources only). ``make teardown`` finds a stage's stacks by
        them, without the app."""
        return {"app": self.app_name, "stage": self.stage_name, "pattern": pattern}

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        """RETAIN data on persistent stages, DESTROY it on ephemeral ones."""
        return cdk.RemovalPolicy.RETAIN if self.persistent else cdk.RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        """How long function and access logs are kept."""
        return logs.RetentionDays.THREE_MONTHS if self.persistent else logs.RetentionDays.ONE_WEEK

    def log_group(self, scope: Construct, construct_id: str) -> logs.LogGroup:
        """A log group kept for the stage's retention, removed with an ephemeral stage."""
        return logs.LogGroup(
            scope,
            construct_id,
            retention=self.log_retention,
            removal_policy=self.removal_policy,
        )

    @property
    def metrics_namespace(self) -> str:
        """The CloudWatch namespace of the stage's custom metrics."""
        return f"{self.app_name}/{self.stage_name}"


def _optional_flag(value: object, key: str) -> bool | None:
    """A boolean context value; ``-c key=true`` arrives as the string ``"true"``."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off"}:
        return False
    raise InvalidStageNameError(f"-c {key}={value}: use true or false")
