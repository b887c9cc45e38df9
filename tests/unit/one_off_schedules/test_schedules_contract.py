"""One-off schedules: API Gateway's request model (from ``openapi.json``) refuses no body
the handler's pydantic model accepts."""

from __future__ import annotations

import schedule_models

from tests.support.contracts import gateway_acceptance_test

test_the_gateway_model_refuses_no_body_the_handler_accepts = gateway_acceptance_test(
    "one_off_schedules", {"/schedules": schedule_models.ScheduleRequest}
)
