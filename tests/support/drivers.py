"""The base of every pattern's handler driver: its freshly imported modules by role, the
fake clock, and the API call each driver makes.

Each pattern's unit conftest used to list its modules field by field, fetch them from
``sys.modules`` one by one and write its own ``call_api``; the role lookup and the API
call are the same for all, so they live here once.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from tests.support.answer_schemas import assert_answer_documented
from tests.support.events import HttpResponse
from tests.support.fakes import FakeClock, FakeLambdaContext
from tests.support.handlers import forget_modules


def import_roles(modules: Sequence[str], prefix: str) -> dict[str, ModuleType]:
    """Import every module of a code root anew, keyed by its role (name without ``prefix``).

    All of ``modules`` are forgotten first, so their module-level clients bind to this
    test's moto; ``job_api`` with prefix ``job_`` is the role ``api``.
    """
    forget_modules(modules)
    return {name.removeprefix(prefix): importlib.import_module(name) for name in modules}


@contextmanager
def fresh_roles(modules: Sequence[str], prefix: str) -> Iterator[dict[str, ModuleType]]:
    """:func:`import_roles` for one test; the modules are forgotten again after it."""
    try:
        yield import_roles(modules, prefix)
    finally:
        forget_modules(modules)


@dataclass
class HandlerDriver:
    """A pattern's modules by role (``driver.api``, ``driver.models``) and its fake clock.

    Subclasses name their API function (it is in the Lambda context the handler gets)
    and add their own fakes and event-source drivers.
    """

    roles: Mapping[str, ModuleType]
    clock: FakeClock

    #: The API function's name, as the Lambda context carries it.
    API_FUNCTION: ClassVar[str] = "Api"
    #: The time the API handler is told it has left, unless a call says otherwise.
    API_REMAINING_MS: ClassVar[int] = 30_000

    def __getattr__(self, role: str) -> ModuleType:
        """The module of ``role``: only called when no field or method has that name."""
        roles = self.__dict__.get("roles")
        if roles is None or role not in roles:
            raise AttributeError(role)
        module: ModuleType = roles[role]
        return module

    def invoke(self, role: str, event: Any, function_name: str, **context: Any) -> dict[str, Any]:
        """Invoke the handler of ``role`` as Lambda does: with ``event`` and a fake context
        of ``function_name`` (and any other context fields, e.g. ``remaining_ms``)."""
        context_object = FakeLambdaContext(function_name=function_name, **context)
        response: dict[str, Any] = self.roles[role].handler(event, context_object)
        return response

    def call_api(
        self, event: dict[str, Any], *, remaining_ms: int | None = None, arrived_ms_ago: int = 0
    ) -> HttpResponse:
        """Invoke the API handler with a proxy event, as API Gateway does; a success
        answer's body must be the one the pattern's OpenAPI document gives.

        ``arrived_ms_ago`` is how long API Gateway has had the request when the handler
        starts (a cold start's init): its ``requestTimeEpoch`` is that long before now."""
        remaining_ms = self.API_REMAINING_MS if remaining_ms is None else remaining_ms
        request_context = event.get("requestContext")
        if isinstance(request_context, dict):
            arrived_ms = int(self.clock().timestamp() * 1000) - arrived_ms_ago
            request_context["requestTimeEpoch"] = arrived_ms
        response = HttpResponse.from_proxy(
            self.invoke("api", event, self.API_FUNCTION, remaining_ms=remaining_ms)
        )
        assert_answer_documented(self.roles["api"], event, response)
        return response
