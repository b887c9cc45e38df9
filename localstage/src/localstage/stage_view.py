"""What the stage's parts use of a running stage, as a Protocol.

:class:`localstage.stage.LocalStage` builds the Lambda service, the event sources and
the targets, and they need the stage back (its cloud, clock, logs, functions...).
They import this Protocol instead of :mod:`localstage.stage`, so that no module imports
the stage that imports it: ``stage -> invoke -> stage`` would be an import cycle, even
under ``TYPE_CHECKING``. ``LocalStage`` satisfies it structurally (mypy checks it
wherever a stage is passed to one of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from localstage.activity import ActivityWatch
    from localstage.clock import Clock
    from localstage.cloud import Credentials, MotoCloud
    from localstage.delivery import DeliveryPolicy
    from localstage.deploy import Deployment
    from localstage.logs import LogSink
    from localstage.runtime import FunctionRuntime


class EventSource(Protocol):
    """A running source of events; it must stop when asked."""

    description: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class StageView(Protocol):
    """The parts of a running :class:`~localstage.stage.LocalStage` its components use."""

    stage_name: str
    clock: Clock
    logs: LogSink
    cloud: MotoCloud
    functions: dict[str, FunctionRuntime]
    #: Wakes the pollers when moto took a write that may give them work.
    activity: ActivityWatch
    sources: list[EventSource]
    warnings: list[str]
    strict: bool
    delivery: DeliveryPolicy

    @property
    def deployment(self) -> Deployment: ...

    def function(self, name_or_arn: str) -> FunctionRuntime: ...

    def output(self, stack: str, name: str) -> Any: ...

    def api_urls(self) -> dict[str, str]: ...

    def identity(self, access_key_id: str) -> Credentials | None: ...
