"""Fuzz each pattern's API against its OpenAPI document (issue 19), a bounded run.

Cases come from schemathesis's generation on ``patterns/<name>/openapi.json``, seeded
so CI is reproducible, and are sent through the target (local or deployed). Checks:
no 5xx, and every status is one the document declares for the operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from localstage.target import Target

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = {
    "decoupled_invocation": "DecoupledInvocation",
    "fan_out_fan_in": "FanOutFanIn",
    "event_sourcing": "EventSourcing",
    "recursive_processor": "RecursiveProcessor",
    "one_off_schedules": "OneOffSchedules",
}
EXAMPLES = 12


def _operations(pattern: str) -> list[Any]:
    schema = schemathesis.openapi.from_path(ROOT / "patterns" / pattern / "openapi.json")
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_fuzz_api(target: Target, pattern: str) -> None:
    api_url = target.output(PATTERNS[pattern], "ApiUrl").rstrip("/")
    failures: list[str] = []
    tried = 0
    for operation in _operations(pattern):
        tried += _fuzz_operation(target, api_url, operation, failures)
    assert tried > 0
    assert not failures, "\n".join(failures)


def _fuzz_operation(target: Target, api_url: str, operation: Any, failures: list[str]) -> int:
    """Send EXAMPLES seeded cases of one operation; returns how many were sent."""
    responses = operation.definition.raw.get("responses", {})
    declared = {str(code) for code in responses}
    components = operation.schema.raw_schema.get("components", {})
    sent = [0]

    @seed(19)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        path = case.formatted_path.lstrip("/")
        if case.query:
            path += "?" + urlencode(case.query, doseq=True)
        headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
        kwargs: dict[str, Any] = {"headers": headers}
        if case.body is not None and not isinstance(case.body, schemathesis.core.NotSet):
            kwargs["json_body"] = case.body
        response = target.call_api(api_url, case.method.upper(), path, **kwargs)
        status = str(response.status)
        sent[0] += 1
        if response.status >= 500 or (status not in declared and "default" not in declared):
            failures.append(f"{case.method.upper()} {path} -> {status}: {response.text[:200]}")
            return
        content = responses.get(status, {}).get("content", {}).get("application/json")
        if content is None:
            return
        if not response.headers.get("content-type", "").startswith("application/json"):
            failures.append(f"{case.method.upper()} {path} -> {status}: not JSON")
            return
        validator = jsonschema.Draft202012Validator({**content["schema"], "components": components})
        error = jsonschema.exceptions.best_match(validator.iter_errors(response.body))
        if error is not None:
            failures.append(f"{case.method.upper()} {path} -> {status}: body {error.message}")

    run()
    return sent[0]
