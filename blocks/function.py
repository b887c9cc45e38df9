"""A Lambda function with this app's defaults: the only way a pattern creates one."""

from __future__ import annotations

import dataclasses
import enum
import functools
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.provided_functions import mark_log_group_owned
from blocks.queue import DeadLetterQueue, FailureRecordsDestination
from blocks.stage_settings import StageSettings

HANDLER_LAYER_DIR = Path(__file__).resolve().parent / "handler_layer"

# Powertools comes from the AWS-managed public layer (no Docker bundling). The local
# tests install the same release from PyPI: keep POWERTOOLS_VERSION in step with
# requirements-dev.txt (tests/infra checks it).
POWERTOOLS_VERSION = "3.31.1"
POWERTOOLS_LAYER_VERSION = 36
#: Where the pinned layer is published, per AWS partition: the publishing account and
#: the layer version. Powertools publishes from other accounts, and with other version
#: numbers, outside the ``aws`` partition (AWS GovCloud (US) even per region), so only
#: partitions whose entry was checked against Powertools' layer page are listed. A stack
#: deployed in any other partition stops before it creates anything:
#: ``Fn::FindInMap`` has no entry for it ("Unable to get mapping for ..."). Add a
#: partition by adding its checked entry here (and to cdk.json ``target-partitions``).
POWERTOOLS_LAYER_PUBLISHERS: dict[str, tuple[str, int]] = {
    "aws": ("017000801446", POWERTOOLS_LAYER_VERSION),
}
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python314-arm64"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
ASSET_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", "*.md"]


class Invocation(enum.Enum):
    """How a function is invoked, which decides where its failures go."""

    # API Gateway or an event source mapping waits for the result: the caller (or the
    # source queue's redrive policy) owns failures, so a function DLQ would stay empty.
    SYNCHRONOUS = "synchronous"
    # Lambda queues the event and retries it: failures need a destination.
    ASYNCHRONOUS = "asynchronous"


def powertools_layer(scope: Construct) -> lambda_.ILayerVersion:
    """The pinned Powertools layer of the stack's partition, one reference per stack."""
    return _powertools_layer(cdk.Stack.of(scope))


def _powertools_layer(stack: cdk.Stack) -> lambda_.ILayerVersion:
    existing = stack.node.try_find_child("PowertoolsLayer")
    if existing is not None:
        return existing  # type: ignore[return-value]
    publishers = cdk.CfnMapping(
        stack,
        "PowertoolsLayerPublishers",
        mapping={
            partition: {"Account": account, "LayerVersion": str(version)}
            for partition, (account, version) in POWERTOOLS_LAYER_PUBLISHERS.items()
        },
    )
    account = publishers.find_in_map(cdk.Aws.PARTITION, "Account")
    version = publishers.find_in_map(cdk.Aws.PARTITION, "LayerVersion")
    arn = (
        f"arn:{cdk.Aws.PARTITION}:lambda:{cdk.Aws.REGION}:{account}:layer:"
        f"{POWERTOOLS_LAYER_NAME}:{version}"
    )
    return lambda_.LayerVersion.from_layer_version_arn(stack, "PowertoolsLayer", arn)


class HandlerKitLayer(Construct):
    """The shared handler code (``blocks/handler_layer``) as a Lambda layer, one per stack.

    The layer holds the ``handler_kit`` package under ``python/``, which Lambda puts on
    the path (``/opt/python``) after the function's own code. Every
    :class:`ServiceFunction` adds it after the Powertools layer, so patterns never
    create it themselves. Caches are excluded from the asset; old versions are kept
    on persistent stages and removed with ephemeral ones.

    Attributes
    ----------
    layer:
        The ``aws_lambda.LayerVersion``.
    """

    # CDK sorts a function's layers by construct path (the recognizeLayerVersion feature
    # flag): this id sorts after "PowertoolsLayer", so Powertools stays the first layer.
    CONSTRUCT_ID = "SharedHandlerKit"
    CODE_PATH = HANDLER_LAYER_DIR

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(self.CODE_PATH), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="handler_kit: helpers shared by every pattern's functions",
            removal_policy=settings.removal_policy,
        )

    @classmethod
    def of(cls, scope: Construct, *, settings: StageSettings) -> HandlerKitLayer:
        """The stack's layer, created on first use."""
        stack = cdk.Stack.of(scope)
        existing = stack.node.try_find_child(cls.CONSTRUCT_ID)
        if isinstance(existing, HandlerKitLayer):
            return existing
        return cls(stack, cls.CONSTRUCT_ID, settings=settings)


#: Each stack's layers in a function's order, found once per stack rather than once per
#: function (finding them is three jsii round trips each).
_STACK_LAYERS: weakref.WeakKeyDictionary[cdk.Stack, list[lambda_.ILayerVersion]] = (
    weakref.WeakKeyDictionary()
)


def _stack_layers(scope: Construct, *, settings: StageSettings) -> list[lambda_.ILayerVersion]:
    """Powertools, then :class:`HandlerKitLayer`: the layers of every function of the stack."""
    stack = cdk.Stack.of(scope)
    layers = _STACK_LAYERS.get(stack)
    if layers is None:
        layers = [_powertools_layer(stack), HandlerKitLayer.of(stack, settings=settings).layer]
        _STACK_LAYERS[stack] = layers
    return layers


def service_name(code: Path) -> str:
    """The Powertools service of the functions whose code root is ``code``: its pattern
    folder's name (``patterns/recursive_processor/runtime`` -> ``recursive-processor``).

    Custom metrics carry it as their ``service`` dimension, so an alarm on one names it
    with this, and a copied pattern folder's alarms follow its functions.

    Examples
    --------
    >>> service_name(Path("patterns/file_batches/runtime"))
    'file-batches'
    """
    return code.parent.name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class AsyncRetries:
    """What Lambda does with a failed asynchronous event: ``attempts`` retries (0-2),
    and drops the event, to its failure destination, once it is ``max_event_age`` old."""

    attempts: int
    max_event_age: cdk.Duration


class ServiceFunction(Construct):
    """A Python Lambda function hardened the same way everywhere in this app.

    Python 3.14 on arm64; Powertools from the pinned public layer, then the stack's
    :class:`HandlerKitLayer`; code from ``code`` (a pattern's ``runtime/`` folder) with caches
    excluded (one asset per folder);
    explicit memory and timeout; active tracing where the stage traces
    (``settings.tracing_enabled``); its own log group with retention
    and its own role that may only write that log group; asynchronous functions get
    an on-failure destination queue, unless the pattern gives its own ``on_failure``
    destination (``on_success`` may be given too).

    Attributes
    ----------
    function:
        The ``aws_lambda.Function``.
    role:
        Its own execution role; grant to this.
    log_group:
        Its own log group.
    failure_queue:
        The on-failure destination of asynchronous invocations, or ``None`` for
        synchronously invoked functions and for those given their own ``on_failure``.
    timeout:
        How long one invocation may run.
    async_retries:
        For an asynchronously invoked function, how many times Lambda retries a failed
        event and how long it keeps one (``retry_attempts``, ``max_event_age``); ``None``
        for a synchronously invoked one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        code: Path,
        handler: str,
        description: str,
        timeout: cdk.Duration,
        invocation: Invocation,
        memory_size: int = 256,
        environment: Mapping[str, str] | None = None,
        retry_attempts: int = 2,
        max_event_age: cdk.Duration = cdk.Duration.hours(1),
        recursive_loop: lambda_.RecursiveLoop | None = None,
        reserved_concurrent_executions: int | None = None,
        on_success: lambda_.IDestination | None = None,
        on_failure: lambda_.IDestination | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if invocation is Invocation.SYNCHRONOUS and (on_success or on_failure):
            raise ValueError("destinations apply to asynchronous invocations only")
        code_path = code
        if not (code_path / f"{handler.split('.')[0]}.py").is_file():
            raise FileNotFoundError(f"handler {handler!r} not found in {code_path}")

        self.timeout = timeout
        self.async_retries = (
            AsyncRetries(attempts=retry_attempts, max_event_age=max_event_age)
            if invocation is Invocation.ASYNCHRONOUS
            else None
        )
        self.log_group = settings.log_group(self, "LogGroup")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {construct_id} ({settings.stage_name})",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy (logs:* on every group).
        self.log_group.grant_write(self.role)

        self.failure_queue: DeadLetterQueue | None = None
        custom_failure_destination = on_failure is not None
        if invocation is Invocation.ASYNCHRONOUS and on_failure is None:
            self.failure_queue = DeadLetterQueue(
                self, "FailureQueue", settings=settings, source="the function's failed async events"
            )
            on_failure = FailureRecordsDestination(self.failure_queue.queue)

        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_.Code.from_asset(str(code_path), exclude=ASSET_EXCLUDES),
            layers=_stack_layers(self, settings=settings),
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE
            if settings.tracing_enabled
            else lambda_.Tracing.DISABLED,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                # The pattern folder that holds the code root names the service.
                "POWERTOOLS_SERVICE_NAME": service_name(code),
                "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(environment or {}),
            },
            on_success=on_success,
            on_failure=on_failure,
            retry_attempts=retry_attempts if on_failure else None,
            max_event_age=max_event_age if on_failure else None,
            recursive_loop=recursive_loop,
            reserved_concurrent_executions=reserved_concurrent_executions,
        )
        # Read once: each read of a construct's child is a jsii round trip.
        function = self.function.node.default_child
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(function, lambda_.CfnFunction) and isinstance(policy, cdk.CfnResource)
        mark_log_group_owned(function)
        self._depend_on_policy_only(function, policy)
        self._acknowledge_findings(
            function, policy, invocation, custom_failure_destination, settings.tracing_enabled
        )

    @staticmethod
    def _depend_on_policy_only(function: cdk.CfnResource, policy: cdk.CfnResource) -> None:
        # Lambda checks the role's permissions when the function is created, so CDK makes
        # the function depend on the role and its policy; the role dependency is already
        # implied by the Role GetAtt (cfn-lint W3005), so keep only the policy's.
        function.add_override("DependsOn", [policy.logical_id])

    @staticmethod
    def _acknowledge_findings(
        function: cdk.CfnResource,
        policy: cdk.CfnResource,
        invocation: Invocation,
        custom_failure_destination: bool = False,
        tracing: bool = True,
    ) -> None:
        if tracing:
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::*]",
                "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
                "support no resource-level permissions.",
            )
        if not tracing:
            acknowledge(
                function,
                "Serverless-LambdaTracing",
                "Active tracing is a per-stage option (README, Tracing): off by default on "
                "ephemeral stages, on for persistent ones.",
            )
        if invocation is Invocation.SYNCHRONOUS:
            acknowledge(
                function,
                "Serverless-LambdaDLQ",
                "Invoked synchronously only (API Gateway or an event source mapping); a "
                "function DLQ receives only failed async events, so it would stay empty.",
            )
        elif custom_failure_destination:
            acknowledge(
                function,
                "Serverless-LambdaDLQ",
                "Async failures go to the on-failure destination given by the pattern, "
                "which receives the request and the error; a DLQ would keep only the request.",
            )
        else:
            acknowledge(
                function,
                "Serverless-LambdaDLQ",
                "Async failures go to the on-failure destination queue, which records the "
                "request and the error; a DLQ would keep only the request.",
            )


#: How long the function behind an API may take: well inside API Gateway's 29 s default
#: integration timeout (a Regional API may raise it by quota request).
API_FUNCTION_TIMEOUT = cdk.Duration.seconds(10)


class FunctionMaker:
    """:class:`ServiceFunction` with the scope, settings and code root of one construct
    filled in: each pattern's functions differ only in what the call adds.

    Calling it makes any function; :meth:`api_function` makes the one behind a
    pattern's API.
    """

    def __init__(self, scope: Construct, *, settings: StageSettings, code: Path) -> None:
        self._make = functools.partial(ServiceFunction, scope, settings=settings, code=code)

    def __call__(self, construct_id: str, **options: Any) -> ServiceFunction:
        """A :class:`ServiceFunction` named ``construct_id`` with these options."""
        return self._make(construct_id, **options)

    def api_function(
        self,
        construct_id: str,
        *,
        handler: str,
        description: str,
        table: dynamodb.ITable,
        table_actions: tuple[str, ...],
        environment: Mapping[str, str],
        timeout: cdk.Duration = API_FUNCTION_TIMEOUT,
        memory_size: int = 256,
    ) -> ServiceFunction:
        """The function behind a pattern's API, allowed ``table_actions`` on its table.

        API Gateway invokes it synchronously and waits at most its integration timeout (29 s
        by default) for it. The table actions are spelled out (least privilege: no
        ``grant*Data`` helper that adds Scan or BatchWrite).
        """
        function = self(
            construct_id,
            handler=handler,
            description=description,
            timeout=timeout,
            memory_size=memory_size,
            invocation=Invocation.SYNCHRONOUS,
            environment=environment,
        )
        table.grant(function.role, *table_actions)
        return function


def function_maker(scope: Construct, *, settings: StageSettings, code: Path) -> FunctionMaker:
    """The :class:`FunctionMaker` of one construct's functions."""
    return FunctionMaker(scope, settings=settings, code=code)
