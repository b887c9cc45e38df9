"""Counting the AWS requests a function's own code makes, for the bench's request tables."""

from __future__ import annotations

from collections import Counter

from localstage.request_counts import totals
from localstage.stage import LocalStage

TABLE_REQUESTS = "AWS requests per operation (localstage, counted in moto)"


def function_label(stage: LocalStage, stack: str, part: str) -> str:
    """The label of the stack's one function whose label contains ``part``."""
    labels = [
        function.spec.label
        for function in stage.functions.values()
        if function.spec.label.startswith(stack) and part in function.spec.label
    ]
    if len(labels) != 1:
        raise LookupError(f"expected one {stack} function with {part!r}, found {labels}")
    return labels[0]


def code_requests(stage: LocalStage, caller: str) -> Counter[str]:
    return totals(stage.request_counts(), caller=caller, from_function_code=True)


def describe(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"
