"""Every AWS request the stage serves is counted by caller, service and action."""

from __future__ import annotations

from localstage.request_counts import RequestCount, totals
from localstage.stage import LocalStage


def test_a_function_s_own_calls_are_counted_apart_from_the_admin_s(
    tiny_stage: LocalStage,
) -> None:
    # GIVEN counts reset and a function whose code calls GetItem once per invocation
    reader = tiny_stage.function("Reader")
    tiny_stage.reset_request_counts()

    # WHEN it runs twice and the admin reads the table once
    assert reader.invoke({"pk": "x"}).error is None
    assert reader.invoke({"pk": "y"}).error is None
    table = reader.spec.environment["TABLE_NAME"]
    tiny_stage.cloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "z"}})
    counts = tiny_stage.request_counts()

    # THEN the function's two calls are its own, from its code; the admin's is apart
    assert totals(counts, caller=reader.spec.label, from_function_code=True) == {
        "dynamodb:GetItem": 2
    }
    assert totals(counts, caller="admin") == {"dynamodb:GetItem": 1}
    assert all(isinstance(row, RequestCount) and row.seconds >= 0 for row in counts)


def test_reset_starts_from_zero(tiny_stage: LocalStage) -> None:
    # GIVEN some counted requests
    reader = tiny_stage.function("Reader")
    assert reader.invoke({"pk": "x"}).error is None

    # WHEN the counts are reset
    tiny_stage.reset_request_counts()

    # THEN nothing of the function's is counted any more
    assert totals(tiny_stage.request_counts(), caller=reader.spec.label) == {}
