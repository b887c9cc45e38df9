"""The real handler code, imported in the bench's process, and what its AWS calls cost.

Some figures need more history or bigger objects than a booted localstage can hold in
a bench's time (10,000 events, a 100 MB object): those drive the pattern's own module
(``patterns/<pattern>/runtime/``, with the ``handler_kit`` layer on the path as on Lambda)
directly, with boto3 clients on moto, and count every call with a botocore
``after-call`` hook (:class:`CallTally`).
"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ROOT / "patterns"
#: The handler_kit layer's ``python/`` folder (``/opt/python`` on Lambda).
LAYER_PYTHON = ROOT / "blocks" / "handler_layer" / "python"


def load_handler_module(pattern: str, module: str) -> ModuleType:
    """Import ``patterns/<pattern>/runtime/<module>.py`` as Lambda would (code root + layer).

    Parameters
    ----------
    pattern : str
        The pattern's folder under ``patterns/``, e.g. ``event_sourcing``.
    module : str
        The module's name, e.g. ``account_service``.

    Returns
    -------
    ModuleType
        The imported module (the same object on a second call).
    """
    for folder in (LAYER_PYTHON, PATTERNS / pattern / "runtime"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return importlib.import_module(module)


#: Operations whose responses say how many items they read, and how.
_ITEMS_READ_BY_OPERATION = {"Query": "ScannedCount", "Scan": "ScannedCount"}


@dataclass
class CallTally:
    """AWS calls of the clients it is attached to: requests, items and bytes read.

    Attributes
    ----------
    requests : Counter[str]
        ``{"dynamodb:Query": n, ...}``: one per API call (botocore's retries of a call
        are not counted separately).
    items_read : int
        DynamoDB items read: ``ScannedCount`` of each Query/Scan page, 1 for each
        GetItem that found its item.
    bytes_read : int
        S3 bytes received: ``ContentLength`` of each GetObject response.
    """

    requests: Counter[str] = field(default_factory=Counter)
    items_read: int = 0
    bytes_read: int = 0

    def attach(self, client: Any) -> None:
        """Count every call ``client`` (a boto3 client) makes from now on."""
        service = client.meta.service_model.service_name
        client.meta.events.register(
            f"after-call.{client.meta.service_model.service_id.hyphenize()}",
            lambda **kwargs: self.record(service, kwargs["model"].name, kwargs["parsed"]),
        )

    def record(self, service: str, operation: str, parsed: dict[str, Any]) -> None:
        """Add one call and what its (parsed) response says it read."""
        self.requests[f"{service}:{operation}"] += 1
        if operation in _ITEMS_READ_BY_OPERATION:
            self.items_read += int(parsed.get(_ITEMS_READ_BY_OPERATION[operation], 0))
        elif operation == "GetItem" and "Item" in parsed:
            self.items_read += 1
        elif operation == "GetObject":
            self.bytes_read += int(parsed.get("ContentLength", 0))

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.requests.clear()
        self.items_read = 0
        self.bytes_read = 0


def describe(requests: Counter[str]) -> str:
    """``dynamodb:GetItem 1, dynamodb:Query 1`` (sorted), or ``none``."""
    return ", ".join(f"{name} {count}" for name, count in sorted(requests.items())) or "none"
