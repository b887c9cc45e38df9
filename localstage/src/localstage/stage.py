"""A synthesized stage running locally: moto, functions, APIs and event sources."""

from __future__ import annotations

import atexit
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localstage import (
    invoke,  # noqa: F401  (importing a source module registers it)
    request_counts,
)
from localstage.activity import ActivityWatch
from localstage.apigateway import ApiGatewayServer
from localstage.apigateway_routes import rest_apis
from localstage.assembly import DEFAULT_STAGE, DEFAULT_WORKDIR, Assembly, load, synthesize
from localstage.clock import Clock
from localstage.cloud import Credentials, MotoCloud
from localstage.contention import ContentionPolicy
from localstage.delivery import DeliveryPolicy
from localstage.deploy import DeployError, Deployment, Resource
from localstage.logs import LogSink
from localstage.request_counts import RequestCount
from localstage.runtime import EnvironmentLauncher, FunctionRuntime, FunctionSpec
from localstage.sources import (  # noqa: F401
    FACTORIES,
    MAPPING_SERVICES,
    EventSource,
    dynamodb_streams,
    eventbridge,
    s3_notifications,
    scheduler,
    sqs,
)
from localstage.sources import mapping_service as _mapping_service

_LOGICAL_ID_HASH = re.compile(r"[0-9A-F]{8}$")


class LocalStage:
    """Boot a stage's assembly on a local cloud; stop everything on exit.

    Parameters
    ----------
    stage_name:
        Stage to synthesize (``local`` by default).
    assembly_dir:
        Use this already synthesized assembly instead of synthesizing.
    workdir:
        Where the synthesized assembly and the function logs go (``.localstage``).
    clock_speed:
        How much faster than real time stage time runs (visibility timeouts, schedules).
    console_logs:
        Also print every function log line to the console.
    strict:
        Refuse to boot when an event source cannot be emulated (otherwise it is
        listed in ``warnings`` and its function never runs from it).
    delivery:
        ``once`` (each event delivered once) or ``duplicate`` (every source delivers
        every event twice, out of order where AWS allows; see :mod:`localstage.delivery`).
        None reads ``$LOCALSTAGE_DELIVERY``.
    contention:
        ``none`` (no DynamoDB transaction meets a conflict) or ``conflicts`` (moto
        cancels the first attempt of every third ``TransactWriteItems`` with a
        ``TransactionConflict``; see :mod:`localstage.contention`). None reads
        ``$LOCALSTAGE_CONTENTION``.

    Usage (needs a running stage or AWS, so not a doctest)::

        with LocalStage(clock_speed=60) as stage:
            print(stage.api_urls())
    """

    def __init__(
        self,
        *,
        stage_name: str = DEFAULT_STAGE,
        assembly_dir: Path | None = None,
        workdir: Path = DEFAULT_WORKDIR,
        clock_speed: float = 1.0,
        console_logs: bool = False,
        strict: bool = False,
        delivery: str | None = None,
        contention: str | None = None,
    ) -> None:
        self.stage_name = stage_name
        self.assembly_dir = assembly_dir
        self.workdir = Path(workdir)
        self.clock = Clock(clock_speed)
        self.logs = LogSink(self.workdir / "logs", console=console_logs)
        #: Whether moto cancels some DynamoDB transactions (its process reads the mode).
        self.contention = ContentionPolicy.resolve(contention)
        self.cloud = MotoCloud(self.contention)
        self.assembly: Assembly | None = None
        self._deployment: Deployment | None = None
        self.functions: dict[str, FunctionRuntime] = {}
        self.launcher = EnvironmentLauncher()
        #: Wakes the pollers when moto took a write that may give them work.
        self.activity = ActivityWatch(self.logs)
        self.gateways: list[ApiGatewayServer] = []
        self.sources: list[EventSource] = []
        self.timings: dict[str, float] = {}
        #: What the stage could not emulate (see ``strict``).
        self.warnings: list[str] = []
        self.strict = strict
        #: How many times sources deliver each event; read by every source.
        self.delivery = DeliveryPolicy.resolve(delivery)
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalStage:
        atexit.register(self.stop)
        self._started = True
        try:
            began = time.monotonic()
            # The fork server imports the functions' libraries while the stage boots.
            self.launcher.start()
            directory = self.assembly_dir
            if directory is not None:
                self.cloud.launch(aws_managed_policies=_uses_aws_managed_policies(directory))
            else:
                # moto boots while the app synthesizes.
                self.cloud.launch(aws_managed_policies=True)
                directory = synthesize(self.stage_name, self.workdir / "cdk.out")
                self.timings["synth"] = time.monotonic() - began
            boot_began = time.monotonic()
            self.assembly = load(directory, self.stage_name)
            self._timed("moto", self.cloud.start)
            self.activity.start(self.cloud.endpoint_url)
            self._deployment = Deployment(self.cloud, self.assembly)
            self._timed("deploy", self._deployment.deploy_all)
            self._check_unemulated()
            self._timed("functions", self._start_functions)
            self.cloud.enforce_iam()
            self._start_gateways()
            self._timed("sources", self._start_sources)
            self.timings["boot"] = time.monotonic() - boot_began
        except BaseException:
            self.stop()
            raise
        return self

    def _timed(self, name: str, step: Any) -> None:
        began = time.monotonic()
        step()
        self.timings[name] = time.monotonic() - began

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.clock.stop()
        # Each waits for its own thread (a long poll, a server loop): all at once.
        _all_at_once([source.stop for source in self.sources])
        _all_at_once([gateway.stop for gateway in self.gateways])
        for function in self.functions.values():
            function.close()
        self.launcher.close()
        self.cloud.stop()
        # After moto: its long poll then ends at once.
        self.activity.stop()
        self.logs.close()
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalStage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ lookups

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            raise RuntimeError("the stage is not started")
        return self._deployment

    def function(self, name_or_arn: str) -> FunctionRuntime:
        """A function by physical name, ARN, or logical id/label."""
        for function in self.functions.values():
            spec = function.spec
            if name_or_arn in (spec.name, spec.arn, spec.label) or name_or_arn.startswith(
                spec.arn + ":"
            ):
                return function
        raise KeyError(f"no function {name_or_arn!r} in stage {self.stage_name}")

    def output(self, stack: str, name: str) -> Any:
        return self.deployment.output(stack, name)

    def outputs(self) -> dict[str, dict[str, Any]]:
        return {name: dict(stack.outputs) for name, stack in self.deployment.stacks.items()}

    def api_urls(self) -> dict[str, str]:
        """Local URL of every API stage, keyed by its public (output) URL."""
        return {gateway.api.public_url: gateway.url for gateway in self.gateways}

    def identity(self, access_key_id: str) -> Credentials | None:
        """Who an access key belongs to (the admin or a function's role)."""
        known = [self.cloud.admin] + [f.spec.credentials for f in self.functions.values()]
        for credentials in known:
            if credentials is not None and credentials.access_key_id == access_key_id:
                return credentials
        return None

    def request_counts(self) -> list[RequestCount]:
        """AWS requests served since boot or :meth:`reset_request_counts`, by caller.

        Counted in moto's process, so nothing escapes: handler code, the event
        sources' polls (with the function's role) and the admin's calls.

        Usage (needs a running stage or AWS, so not a doctest)::

            stage.reset_request_counts()
            totals(stage.request_counts(), from_function_code=True)
            # -> Counter({'dynamodb:TransactWriteItems': 100, 'sqs:SendMessageBatch': 10, ...})
        """
        labels = {
            function.spec.credentials.principal_arn: function.spec.label
            for function in self.functions.values()
        }
        return request_counts.fetch(self.cloud.endpoint_url, self.identity, labels)

    def reset_request_counts(self) -> None:
        """Start counting AWS requests from zero."""
        request_counts.reset(self.cloud.endpoint_url)

    # ------------------------------------------------------------------ boot steps

    def _check_unemulated(self) -> None:
        deployment = self.deployment
        problems: list[str] = []
        roles_by_name = {role.physical_id: role for role in deployment.resources("AWS::IAM::Role")}
        policies = deployment.resources("AWS::IAM::Policy") + deployment.resources(
            "AWS::IAM::ManagedPolicy"
        )
        for function in deployment.resources("AWS::Lambda::Function"):
            for marker in function.unemulated_refs:
                problems.append(f"{function.logical_id} refers to {marker}")
            role_name = str(function.properties.get("Role", "")).rsplit("/", 1)[-1]
            role = roles_by_name.get(role_name)
            related = [role] if role else []
            related += [p for p in policies if role_name in p.properties.get("Roles", [])]
            for resource in related:
                for marker in resource.unemulated_refs:
                    problems.append(
                        f"{function.logical_id}'s role policy {resource.logical_id} grants "
                        f"access to {marker}"
                    )
        if problems:
            raise DeployError(
                "functions depend on resources localstage does not emulate:\n  "
                + "\n  ".join(problems)
            )

    def _start_functions(self) -> None:
        for resource in self.deployment.resources("AWS::Lambda::Function"):
            runtime = str(resource.properties.get("Runtime", ""))
            if not runtime.startswith("python"):
                problem = (
                    f"{resource.stack_name}/{resource.logical_id}: runtime "
                    f"{runtime or 'container image'} is not emulated (localstage runs Python "
                    "functions); calls to it fail"
                )
                if self.strict:
                    raise DeployError(problem)
                self.warnings.append(problem)
                continue
            self._check_lambda_trust(resource)
            spec = self._function_spec(resource)
            self.functions[spec.name] = FunctionRuntime(
                spec, endpoint_url=self.cloud.endpoint_url, logs=self.logs, launcher=self.launcher
            )

    def _check_lambda_trust(self, resource: Resource) -> None:
        """Lambda must be able to assume the function's role, or CreateFunction fails
        ("The role defined for the function cannot be assumed by Lambda"): the role's trust
        policy must allow ``lambda.amazonaws.com`` ``sts:AssumeRole`` (Lambda Developer
        Guide, "Defining Lambda function permissions with an execution role")."""
        from localstage.cloud import ACCOUNT_ID
        from localstage.iam_policy import Decision, Principal, evaluate

        role_arn = str(resource.properties["Role"])
        role = self.cloud.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        context = {"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": resource.attributes["Arn"]}
        lambda_ = Principal(service="lambda.amazonaws.com")
        if evaluate([trust], "sts:AssumeRole", role_arn, context, lambda_) is not Decision.ALLOW:
            raise DeployError(
                f"{resource.stack_name}/{resource.logical_id}: The role defined for the "
                f"function cannot be assumed by Lambda ({role_arn} does not trust "
                "lambda.amazonaws.com)"
            )

    def _function_spec(self, resource: Resource) -> FunctionSpec:
        props = resource.properties
        runtime = str(props.get("Runtime", ""))
        role_arn = props["Role"]
        name = resource.physical_id
        label = _LOGICAL_ID_HASH.sub("", resource.logical_id)
        return FunctionSpec(
            label=label,
            name=name,
            arn=resource.attributes["Arn"],
            handler=props["Handler"],
            code_dir=self._code_dir(resource),
            environment={
                key: str(value)
                for key, value in ((props.get("Environment") or {}).get("Variables") or {}).items()
            },
            timeout_seconds=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            credentials=self.cloud.assume_role(role_arn, name),
            role_arn=role_arn,
            log_group=(props.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}",
            log_format=(props.get("LoggingConfig") or {}).get("LogFormat", "Text"),
            reserved_concurrency=(
                int(props["ReservedConcurrentExecutions"])
                if "ReservedConcurrentExecutions" in props
                else None
            ),
            runtime=runtime,
            layer_dirs=self._layer_dirs(resource),
            ephemeral_storage_mb=int((props.get("EphemeralStorage") or {}).get("Size", 512)),
        )

    def _layer_dirs(self, resource: Resource) -> tuple[Path, ...]:
        # Layers of this assembly run from their asset's python/ folder; external ARNs
        # (the Powertools layer) are provided by the virtualenv, so they are skipped.
        assert self.assembly is not None
        layers = {
            layer.physical_id: layer
            for layer in self.deployment.resources("AWS::Lambda::LayerVersion")
        }
        folders: list[Path] = []
        for arn in resource.properties.get("Layers") or []:
            layer = layers.get(arn) if isinstance(arn, str) else None
            if layer is None:
                continue
            key = (layer.properties.get("Content") or {}).get("S3Key")
            path = self.assembly.stack(layer.stack_name).asset_path(key) if key else None
            if path is None or not path.is_dir():
                raise DeployError(
                    f"{layer.logical_id}: its content is not an asset of this assembly"
                )
            folders.append(path / "python")
        return tuple(folders)

    def _code_dir(self, resource: Resource) -> Path:
        code = resource.properties.get("Code") or {}
        assert self.assembly is not None
        if "ZipFile" in code:
            folder = self.workdir / "inline" / resource.physical_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "index.py").write_text(code["ZipFile"])
            return folder
        key = code.get("S3Key")
        if isinstance(key, str):
            path = self.assembly.stack(resource.stack_name).asset_path(key)
            if path is not None and path.is_dir():
                return path
        raise DeployError(f"{resource.logical_id}: its code is not an asset of this assembly")

    def _start_gateways(self) -> None:
        permissions = [p.properties for p in self.deployment.resources("AWS::Lambda::Permission")]
        for api in rest_apis(self.deployment):
            gateway = ApiGatewayServer(
                api, functions=self.function, permissions=permissions, identities=self.identity
            )
            self.gateways.append(gateway.start())

    def _start_sources(self) -> None:
        for mapping in self.deployment.resources("AWS::Lambda::EventSourceMapping"):
            service = _mapping_service(mapping)
            if service not in MAPPING_SERVICES:
                problem = (
                    f"{mapping.stack_name}/{mapping.logical_id}: event source mappings from "
                    f"{service} are not emulated yet; its function never runs from it"
                )
                if self.strict:
                    raise DeployError(problem)
                self.warnings.append(problem)
        for factory in FACTORIES:
            self.sources.extend(factory(self))
        for source in self.sources:
            source.start()

    # ------------------------------------------------------------------ reporting

    def describe(self) -> str:
        """What runs where: API URLs, functions, sources, resources and skipped types."""
        deployment = self.deployment
        lines = [f"stage {self.stage_name}: {len(deployment.stacks)} stacks"]
        if self.delivery.duplicates:
            lines.append("  delivery: duplicate (every event of every source delivered twice)")
        if self.contention.conflicts:
            lines.append(
                "  contention: conflicts (every third DynamoDB transaction cancelled once)"
            )
        for gateway in self.gateways:
            lines.append(
                f"  API {gateway.api.stack_name}/{gateway.api.name}: {gateway.url}"
                f"  (deployed: {gateway.api.public_url})"
            )
        for function in self.functions.values():
            lines.append(
                f"  function {function.spec.label}: {function.spec.name} "
                f"(log {self.logs.path(function.spec.label)})"
            )
        for source in self.sources:
            lines.append(f"  event source {source.description}")
        for stack_name, stack in deployment.stacks.items():
            for output, value in stack.outputs.items():
                lines.append(f"  output {stack_name}.{output} = {value}")
        for warning in self.warnings:
            lines.append(f"  WARNING {warning}")
        if deployment.skipped:
            skipped = ", ".join(
                f"{kind} x{count}" for kind, count in sorted(deployment.skipped.items())
            )
            lines.append(f"  not emulated (skipped): {skipped}")
        return "\n".join(lines)


def _all_at_once(steps: list[Callable[[], None]]) -> None:
    """Run ``steps`` in threads of their own and wait for all; the first error is raised."""
    errors: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(step,), daemon=True) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _uses_aws_managed_policies(directory: Path) -> bool:
    return any(
        ":iam::aws:policy/" in template.read_text()
        for template in Path(directory).glob("*.template.json")
    )


@contextmanager
def running_stage(**options: Any) -> Iterator[LocalStage]:
    """``with running_stage(clock_speed=60) as stage: ...``"""
    stage = LocalStage(**options)
    with stage:
        yield stage
