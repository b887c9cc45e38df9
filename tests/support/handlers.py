"""Handler unit tests: fresh handler imports, the function's environment, moto tables and queues."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

#: The metrics namespace every handler test runs under.
METRICS_NAMESPACE = "ServerlessPatternsTest"

_DESERIALIZER = TypeDeserializer()


def keep_compiled_code(root: Path) -> None:
    """Compile each source file under ``root`` once per process, however often it is imported.

    Handler tests import a pattern's modules anew for every test (see :func:`import_fresh`),
    and with ``PYTHONDONTWRITEBYTECODE`` set there is no ``.pyc`` to load them from: every
    fresh import compiled each module again, ~0.1 s a test. The code object compiled
    from the same bytes is the same, and executing it in a new module still runs the
    module's top level anew (new clients, new globals), as a cold start does. Keyed by
    the file's bytes: an edited file is compiled afresh. Files outside ``root`` and
    imports that find a ``.pyc`` are untouched.
    """
    if getattr(SourceFileLoader.source_to_code, "_keeps_compiled_code", False):
        return
    compile_source = SourceFileLoader.source_to_code
    prefix = f"{root}/"
    compiled: dict[tuple[str, bytes], CodeType] = {}

    def source_to_code(
        self: SourceFileLoader, data: Any, path: Any, *, _optimize: int = -1
    ) -> CodeType:
        if not (isinstance(path, str) and path.startswith(prefix)) or _optimize != -1:
            return compile_source(self, data, path, _optimize=_optimize)
        source = data.encode() if isinstance(data, str) else bytes(data)
        key = (path, source)
        if key not in compiled:
            compiled[key] = compile_source(self, data, path)
        return compiled[key]

    source_to_code._keeps_compiled_code = True  # type: ignore[attr-defined]
    SourceFileLoader.source_to_code = source_to_code  # type: ignore[method-assign,assignment]


def forget_modules(modules: Iterable[str]) -> None:
    """Drop handler modules from ``sys.modules``, so the next test imports them anew."""
    for module in modules:
        sys.modules.pop(module, None)


def import_fresh(name: str, modules: Iterable[str]) -> ModuleType:
    """Import a handler module anew, so its module-level clients bind to this test's moto.

    Every module of ``modules`` (the pattern's code root) is forgotten first, so the
    modules ``name`` imports are fresh too.
    """
    forget_modules(modules)
    return importlib.import_module(name)


def set_function_environment(
    monkeypatch: pytest.MonkeyPatch, service: str, variables: Mapping[str, str]
) -> None:
    """Set the environment the infra gives a pattern's functions, plus Powertools' own."""
    environment = {
        **variables,
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A low-level DynamoDB item as Python values (numbers stay ``Decimal``).

    Examples
    --------
    >>> deserialize_item({"job_id": {"S": "j-1"}, "attempts": {"N": "2"}})
    {'job_id': 'j-1', 'attempts': Decimal('2')}
    """
    return {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}


def table_items(client: Any, table_name: str) -> list[dict[str, Any]]:
    """Every item of a (small, moto) table, deserialized (see :func:`deserialize_item`)."""
    raw = client.scan(TableName=table_name, ConsistentRead=True)["Items"]
    return [deserialize_item(item) for item in raw]


def table_item(client: Any, table_name: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """One item by its key (attribute values), deserialized; None if there is none."""
    raw = client.get_item(TableName=table_name, Key=dict(key), ConsistentRead=True).get("Item")
    return None if raw is None else deserialize_item(raw)


def queued_groups(sqs: Any, queue_url: str) -> Counter[str | None]:
    """How many visible messages of a (moto) queue carry each ``MessageGroupId``.

    Each message is received once, so it is left in flight.
    """
    groups: Counter[str | None] = Counter()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=300,
            AttributeNames=["MessageGroupId"],
        ).get("Messages", [])
        if not messages:
            return groups
        for message in messages:
            groups[message.get("Attributes", {}).get("MessageGroupId")] += 1


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages in a (moto) queue: visible plus in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def settle_batch(
    sqs: Any, queue_url: str, records: list[dict[str, Any]], response: Mapping[str, Any]
) -> None:
    """End a batch as the SQS event source mapping does with a partial batch response.

    The messages that succeeded are deleted; the ones listed in ``batchItemFailures``
    become visible again at once (as if their visibility timeout had passed).
    """
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    for record in records:
        if record["messageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
