"""Fuzz each pattern's API against its OpenAPI document, a bounded run (issue 19).

The phases and checks are in :mod:`tests.support.api_fuzz`: requests the document
refuses get a declared 4xx and write nothing; requests it allows never get a 5xx, an
undeclared status or a body that contradicts the document. ``make bench`` runs more
cases and reports the counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from localstage.target import Target

from tests.support.api_fuzz import documented_apis, fuzz_api

#: Cases per operation and generation mode (seeded: the same cases every run).
EXAMPLES = 12
APIS = documented_apis()


@pytest.mark.api_only
@pytest.mark.parametrize(("stack", "document"), sorted(APIS.items()), ids=sorted(APIS))
def test_no_generated_request_gets_an_answer_the_document_does_not_allow(
    target: Target, stack: str, document: Path
) -> None:
    # GIVEN the API's document, WHEN seeded cases that break it and cases that follow it
    # are sent
    report = fuzz_api(target, stack, document, examples=EXAMPLES)

    # THEN every case was sent, each refusal is a declared 4xx that wrote nothing, and
    # no answer contradicts the document
    assert report.refused > 0 and report.tried > report.refused
    assert not report.failures, "\n".join(report.failures)
