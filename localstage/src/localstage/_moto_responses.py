"""Inside the moto process: finding a request's handler method without listing the class.

moto looks a request's action up among its response class's methods by listing them
all (``inspect.getmembers`` over some two hundred attributes) on every request: about
a thirtieth of the CPU of a request. ``action in names`` only needs to know whether the
one name is a function of the class, which one ``getattr`` tells, with the same answer
whatever was patched onto the class since.
"""

from __future__ import annotations

import inspect
from typing import Any

from localstage._moto_patch import Patch


class FunctionNames:
    """The names of a class's functions, as a container that tests one name at a time.

    >>> class Handler:
    ...     def create_table(self): ...
    ...     version = "1"
    >>> names = FunctionNames(Handler)
    >>> "create_table" in names, "version" in names, "delete_table" in names
    (True, False, False)
    """

    __slots__ = ("_owner",)

    def __init__(self, owner: type) -> None:
        self._owner = owner

    def __contains__(self, name: object) -> bool:
        # What inspect.getmembers(owner, inspect.isfunction) lists, one name at a time.
        return isinstance(name, str) and inspect.isfunction(getattr(self._owner, name, None))


def patches() -> list[Patch]:
    """The lookup moto's ``BaseResponse.call_action`` makes for each request."""
    from moto.core import responses

    def method_names_from_class(owner: Any) -> FunctionNames:
        return FunctionNames(owner)

    return [Patch(responses, "method_names_from_class", method_names_from_class)]
