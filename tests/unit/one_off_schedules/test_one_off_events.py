"""The Scheduler-input and destination-record builders produce what the functions'
pydantic models accept, in AWS's shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.support import events

SCHEDULED = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def test_scheduler_substitutes_every_context_attribute_as_a_string(handlers):
    # GIVEN the target input the API writes into a schedule
    request = handlers.models.ScheduleRequest(at="2025-03-14T09:30:00Z", payload={"a": 1})
    text = handlers.service.target_input("0b0f2a8e-3c1d-4e5f-8a9b-0c1d2e3f4a5b", request)
    assert set(events.SCHEDULER_CONTEXT_ATTRIBUTES) <= {
        value for value in json.loads(text).values() if isinstance(value, str)
    }

    # WHEN the Scheduler fires it (attempt 2)
    arn = events.schedule_arn("0b0f2a8e-3c1d-4e5f-8a9b-0c1d2e3f4a5b", group="g")
    event = events.scheduler_target_input(
        text, schedule_arn=arn, scheduled_time=SCHEDULED, execution_id="e1", attempt_number=2
    )

    # THEN no placeholder is left, the values are strings, and the executor accepts it
    assert "<aws.scheduler." not in json.dumps(event)
    assert event["scheduled_time"] == "2025-03-14T09:30:00Z"
    assert event["attempt_number"] == "2"
    invocation = handlers.parsing.parse_invocation(event)
    assert (invocation.attempt_number, invocation.execution_id) == (2, "e1")
    assert invocation.payload == {"a": 1}


def test_destination_records_parse_for_every_condition(handlers):
    # GIVEN records of a success, exhausted retries and an expired event
    success = events.lambda_destination_record({"x": 1}, response_payload={"ok": True})
    exhausted = events.lambda_destination_record(
        {"x": 1}, condition="RetriesExhausted", approximate_invoke_count=3
    )
    expired = events.lambda_destination_record(
        {"x": 1}, condition="EventAgeExceeded", approximate_invoke_count=0
    )

    # WHEN the cleanup's model parses them
    parsed = [handlers.parsing.parse_destination_record(r) for r in (success, exhausted, expired)]

    # THEN the conditions, counts and responses come through
    assert [p.succeeded for p in parsed] == [True, False, False]
    assert parsed[0].response_payload == {"ok": True}
    assert parsed[1].response_context.function_error == "Unhandled"
    assert parsed[1].response_payload["errorType"] == "Exception"
    assert parsed[1].request_context.approximate_invoke_count == 3
    assert parsed[2].response_context is None and parsed[2].request_payload == {"x": 1}
    assert success["requestContext"]["functionArn"].endswith(":function:TestFunction:$LATEST")
