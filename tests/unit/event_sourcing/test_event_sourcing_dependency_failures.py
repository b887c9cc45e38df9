"""DynamoDB throttled, failing or unreachable after the SDK's retries: every route answers 503
``service_unavailable`` with ``Retry-After`` (500 ``server_error`` when DynamoDB refused the
call or botocore did not send it) and writes nothing
(``handler_kit.error_answers.dependency_failures``)."""

from __future__ import annotations

import pytest

from tests.support.aws_faults import (
    FAILURES,
    answer_while_failing,
)


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
@pytest.mark.parametrize(
    "call",
    [
        lambda bank, account_id: bank.open(),
        lambda bank, account_id: bank.credit(account_id, 5),
        lambda bank, account_id: bank.withdraw(account_id, 1),
        lambda bank, account_id: bank.get(account_id),
        lambda bank, account_id: bank.history(account_id),
    ],
    ids=["open", "credit", "withdraw", "get", "history"],
)
def test_every_route_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    bank, infra, capsys, call, failure
):
    # GIVEN an account with a credit, and DynamoDB failing every call of the API
    account_id = bank.open_id()
    assert bank.credit(account_id, 10).status == 200
    before = infra.raw_items()
    capsys.readouterr()

    # WHEN a route is called
    _, failed = answer_while_failing(
        lambda: call(bank, account_id),
        logger=bank.api.logger,
        client=bank.api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with Retry-After (500 for a refused call), logged and counted, and
    # nothing was written
    assert failed
    assert infra.raw_items() == before
