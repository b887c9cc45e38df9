"""Fuzz a pattern's API against its OpenAPI document (issue 19), through a target.

Cases come from schemathesis's generation on ``patterns/<name>/openapi.json``, seeded
so that a run is reproducible, and are sent through the target (stage ``local`` or a
deployed stage). Two phases per API:

1. **Refused requests write nothing.** Cases that violate the document (schemathesis's
   negative mode: a malformed id, a bad ``Idempotency-Key``, a body of the wrong shape)
   must each be answered with a declared 4xx in the JSON error shape, and the stack's
   tables, queues and schedule groups must hold exactly what they held before the
   phase (compared after they settle, so work still running from earlier requests is
   not blamed on this phase).
2. **Valid requests get documented answers.** Cases that follow the document must
   never get a 5xx or a status the operation does not declare, and every JSON answer
   must validate against the schema the document gives for its status.

The e2e suite runs a bounded number of cases (``tests/e2e/test_api_fuzz.py``); ``make
bench`` runs more and reports how many requests were tried and how many failed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from localstage.target import LocalTarget, Target
from schemathesis import GenerationMode

ROOT = Path(__file__).resolve().parents[2]
PATTERNS_DIR = ROOT / "patterns"
DOCUMENT_NAME = "openapi.json"
#: How long the stored state may take to stop changing before a phase starts.
SETTLE_TIMEOUT_S = 30.0
SETTLE_INTERVAL_S = 0.5


@dataclass
class FuzzReport:
    """What one API's fuzz run sent and what contradicted the document."""

    stack: str
    tried: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)


def documented_apis() -> dict[str, Path]:
    """Each pattern stack with an API document: ``{stack name: document path}``.

    Discovered from the pattern folders, so a fork that removes or copies a pattern
    fuzzes what it has.
    """
    from stacks.stage import pattern_stack_classes

    apis = {}
    for stack_class in pattern_stack_classes():
        folder = PATTERNS_DIR / stack_class.__module__.split(".")[1]
        if (folder / DOCUMENT_NAME).is_file():
            apis[stack_class.pattern_name] = folder / DOCUMENT_NAME
    return apis


def fuzz_api(
    target: Target, stack: str, document: Path, *, examples: int, seed_value: int = 19
) -> FuzzReport:
    """Run both phases on ``stack``'s API with ``examples`` cases per operation and mode."""
    report = FuzzReport(stack)
    api_url = target.output(stack, "ApiUrl").rstrip("/")
    schema = schemathesis.openapi.from_dict(_without_security(document))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]

    before = settled_state(target, stack)
    for operation in operations:
        _run(target, api_url, operation, GenerationMode.NEGATIVE, examples, seed_value, report)
    after = settled_state(target, stack)
    report.failures += [
        f"refused requests changed {name}" for name in sorted(before) if before[name] != after[name]
    ]
    for operation in operations:
        _run(target, api_url, operation, GenerationMode.POSITIVE, examples, seed_value, report)
    if isinstance(target, LocalTarget):
        _discard_queued_work(target, stack)
    return report


def _discard_queued_work(target: LocalTarget, stack: str) -> None:
    """Empty the stack's queues after its fuzz on localstage.

    The valid cases include jobs of up to 10,000 subtasks: left queued, they hold the
    stage's workers and the machine's CPU while whatever comes next runs (the next API's
    fuzz, a benchmark counting requests). On AWS they finish on their own (and PurgeQueue
    takes up to a minute there).
    """
    sqs = target.client("sqs")
    for queue_url in target.physical_ids(stack, "AWS::SQS::Queue"):
        sqs.purge_queue(QueueUrl=queue_url)


def _without_security(document: Path) -> dict[str, Any]:
    """The document without its SigV4 requirement: the target signs every request
    itself (and overwrites any ``Authorization`` a case carries), so a case that
    breaks the document only by a missing or bad signature would be accepted as it
    should. IAM authorization has tests of its own (the gateway refuses an unsigned
    request with 403, ``tests/e2e``)."""
    raw = json.loads(document.read_text())
    raw.pop("security", None)
    for operations in raw["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    raw.get("components", {}).pop("securitySchemes", None)
    return dict(raw)


def stored_state(target: Target, stack: str) -> dict[str, str]:
    """A digest of everything the stack stores that a request could change, by resource."""
    state = {}
    for table in target.physical_ids(stack, "AWS::DynamoDB::Table"):
        items = sorted(
            json.dumps(item, sort_keys=True, default=str) for item in target.scan_items(table)
        )
        state[f"table {table}"] = hashlib.sha256("\n".join(items).encode()).hexdigest()
    for queue_url in target.physical_ids(stack, "AWS::SQS::Queue"):
        state[f"queue {queue_url}"] = str(target.queue_depth(queue_url))
    for group in target.physical_ids(stack, "AWS::Scheduler::ScheduleGroup"):
        state[f"schedule group {group}"] = ",".join(sorted(target.list_schedules(group)))
    return state


def settled_state(target: Target, stack: str) -> dict[str, str]:
    """:func:`stored_state` once two reads in a row agree (earlier work has finished)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    state = stored_state(target, stack)
    while True:
        time.sleep(SETTLE_INTERVAL_S)
        again = stored_state(target, stack)
        if again == state or time.monotonic() > deadline:
            return again
        state = again


def _run(
    target: Target,
    api_url: str,
    operation: Any,
    mode: GenerationMode,
    examples: int,
    seed_value: int,
    report: FuzzReport,
) -> None:
    responses = operation.definition.raw.get("responses", {})
    components = operation.schema.raw_schema.get("components", {})

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        if case.meta is not None and case.meta.generation.mode is not mode:
            # Negative generation falls back to a valid case where it finds nothing to
            # break (an operation whose every part is optional): the positive phase
            # sends those, where a write is allowed.
            return
        path = case.formatted_path.lstrip("/")
        if case.query:
            path += "?" + urlencode(case.query, doseq=True)
        headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
        kwargs: dict[str, Any] = {"headers": headers}
        if not isinstance(case.body, schemathesis.core.NotSet):
            # Raw bytes when a negative case sends another media type than JSON.
            raw = isinstance(case.body, bytes)
            kwargs["body"] = case.body if raw else json.dumps(case.body)
            headers.setdefault("Content-Type", case.media_type or "application/json")
        response = target.call_api(api_url, case.method.upper(), path, **kwargs)
        report.tried += 1
        problem = _contradiction(response, responses, components, mode)
        if mode is GenerationMode.NEGATIVE:
            report.refused += 1
        if problem:
            report.failures.append(
                f"{mode.value} {case.method.upper()} /{path} -> {response.status}: {problem}"
                f" (headers {headers}, body {kwargs.get('body')!r:.200})"
            )

    send()


def _contradiction(
    response: Any, responses: dict[str, Any], components: dict[str, Any], mode: GenerationMode
) -> str:
    """What in ``response`` contradicts the document ('' when nothing does)."""
    status = str(response.status)
    if response.status >= 500:
        return f"server error {response.text[:200]}"
    if status not in responses:
        return f"undeclared status {response.text[:200]}"
    if mode is GenerationMode.NEGATIVE and response.status < 400:
        return "a request the document refuses was accepted"
    content = responses[status].get("content", {}).get("application/json")
    if content is None:
        return ""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return "the answer is not JSON"
    validator = jsonschema.Draft202012Validator({**content["schema"], "components": components})
    error = jsonschema.exceptions.best_match(validator.iter_errors(response.body))
    return "" if error is None else f"body {error.message}"
