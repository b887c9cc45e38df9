"""Handler unit tests: one boto3 client per service and settings, whatever the imports."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


class ReusedClients:
    """boto3 clients made once per service and settings, handed to every call that asks.

    Handler modules are imported anew for each test (a cold start each), and every import
    made its module-level clients anew: ~6 ms a client, some 2,500 in the unit suite (about
    a sixth of its CPU). A client keeps no state between calls that a test could see,
    except the event hooks a test adds (``client.meta.events.register(...)``): those are
    recorded and removed after the test (:meth:`forget_test_hooks`), so no test sees
    another's. (The standard retry mode's quota is shared too; every successful call
    refills it, and no test retries the hundred calls it takes to empty it.)

    Parameters
    ----------
    make_client
        What makes a client: a ``boto3.Session``'s own ``client`` method.
    """

    def __init__(self, make_client: Callable[..., Any]) -> None:
        self._make_client = make_client
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._test_hooks: list[tuple[Any, str, Any, Any]] = []

    def client(self, *args: Any, **kwargs: Any) -> Any:
        """``Session.client(...)``: the client made for the same arguments, settings and
        ``AWS_*`` environment (region, endpoints, account-id endpoint mode), or a new one."""
        config = kwargs.get("config")
        key = (
            args,
            tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "config")),
            repr(sorted(vars(config).items())) if config is not None else None,
            tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))),
        )
        if key not in self._clients:
            client = self._make_client(*args, **kwargs)
            self._record_hooks_of(client)
            self._clients[key] = client
        return self._clients[key]

    def forget_test_hooks(self) -> None:
        """Remove every event hook registered on a reused client since the last call."""
        for events, event_name, handler, unique_id in reversed(self._test_hooks):
            # Unregistering a hook a test removed itself is a no-op.
            events.unregister(event_name, handler, unique_id)
        self._test_hooks.clear()

    def _record_hooks_of(self, client: Any) -> None:
        events = client.meta.events
        for method in ("register", "register_first", "register_last"):
            register = getattr(events, method)

            def recording(
                event_name: str,
                handler: Any,
                unique_id: Any = None,
                unique_id_uses_count: bool = False,
                *,
                _register: Callable[..., Any] = register,
                _events: Any = events,
            ) -> Any:
                self._test_hooks.append((_events, event_name, handler, unique_id))
                return _register(event_name, handler, unique_id, unique_id_uses_count)

            setattr(events, method, recording)
