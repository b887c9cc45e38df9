"""Inside the moto process: moto's service packages listed once."""

from __future__ import annotations

from typing import Any

from localstage._moto_patch import Patch


def listed_service_modules_patches() -> list[Patch]:
    """List moto's service packages once, not on every request.

    moto's server finds a request's backend with ``host in list_of_moto_modules()``,
    which lists moto's package folder and stats its ~180 entries each time: a seventh of
    the CPU time moto spent per request in a fan-out of 1,000 subtasks (cProfile). The
    folder does not change while the process runs.
    """
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())

    def listed() -> Any:
        return modules

    return [Patch(backends, "list_of_moto_modules", listed)]
