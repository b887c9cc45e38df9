"""``GET /runs/{run_id}`` with DynamoDB throttled, failing or unreachable after the SDK's
retries: 503 ``service_unavailable`` with ``Retry-After``; 500 ``server_error`` when
DynamoDB refused the call or botocore did not send it
(``handler_kit.error_answers.dependency_failures``)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.support.aws_faults import (
    FAILURES,
    answer_while_failing,
)
from tests.unit.recursive_processor.conftest import Processor, record_line
from tests.unit.recursive_processor.test_run_api import get_run


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
def test_get_run_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    processor: Processor, api: ModuleType, capsys: pytest.CaptureFixture[str], failure: Exception
) -> None:
    # GIVEN a started run, and DynamoDB failing every call of the API
    record = processor.upload_lines("throttled.ndjson", [record_line(0)])
    run_id = processor.start(record)
    before = processor.infra.runs()
    capsys.readouterr()

    # WHEN a client asks for it
    response, failed = answer_while_failing(
        lambda: get_run(api, run_id),
        logger=api.logger,
        client=api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with Retry-After (500 for a refused call), no-store as every answer,
    # logged and counted; nothing was written
    assert failed == ["GetItem"]
    assert response.headers["cache-control"] == "no-store"
    assert processor.infra.runs() == before
