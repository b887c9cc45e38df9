"""The bigger API fuzz run (issue 19): requests tried and failed per API, on stage local.

The same phases and checks as the e2e suite's bounded run (:mod:`tests.support.api_fuzz`),
with more cases per operation; the target is 0 failures for every API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from localstage.target import Target

from bench.figures import Figure
from tests.support.api_fuzz import documented_apis, fuzz_api

TABLE_FUZZ = "API fuzzing (schemathesis on each OpenAPI document, localstage)"
#: Cases per operation and generation mode (the e2e suite sends 12).
EXAMPLES = 60


def fuzz_figures(target: Target, *, log: Callable[[str], Any] = print) -> list[Figure]:
    """One row per API: requests tried, and how many got an answer the document forbids."""
    figures = []
    for stack, document in sorted(documented_apis().items()):
        started = time.perf_counter()
        report = fuzz_api(target, stack, document, examples=EXAMPLES)
        seconds = time.perf_counter() - started
        log(f"  {stack}: {report.tried} requests, {len(report.failures)} failed ({seconds:.0f} s)")
        figures.append(
            Figure(
                table=TABLE_FUZZ,
                name=f"{stack} API: requests that got an answer the document forbids",
                value=float(len(report.failures)),
                unit="requests",
                target="0 failed",
                met=not report.failures and report.tried > 0,
                note=(
                    f"{report.tried} requests tried ({report.refused} that the document "
                    f"refuses), {seconds:.0f} s. " + "; ".join(report.failures[:3])
                ).strip(),
            )
        )
    return figures
