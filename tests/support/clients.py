"""boto3 client helpers for moto tests: count a client's DynamoDB requests, or serialise
a client's requests (moto is not thread-safe)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DynamoCall:
    """One DynamoDB request the handler made, and how many items it returned."""

    operation: str
    items: int


@dataclass
class CallLog:
    """Records every DynamoDB request of one boto3 client (through botocore's events)."""

    calls: list[DynamoCall] = field(default_factory=list)

    def hook(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        items = len(parsed.get("Items", [])) + (1 if "Item" in parsed else 0)
        self.calls.append(DynamoCall(operation=model.name, items=items))

    def clear(self) -> None:
        self.calls.clear()

    @property
    def operations(self) -> list[str]:
        return [call.operation for call in self.calls]

    @property
    def items_read(self) -> int:
        return sum(call.items for call in self.calls if call.operation in ("GetItem", "Query"))


class SerializedClient:
    """A boto3 client proxy that sends one request at a time.

    moto is not thread-safe, while every AWS request is atomic: serialising the
    ventilator's parallel sends keeps moto's answers meaningful.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "meta" or not callable(attribute):
            return attribute

        def call(*args: Any, _method: Callable[..., Any] = attribute, **kwargs: Any) -> Any:
            with self._lock:
                return _method(*args, **kwargs)

        return call
