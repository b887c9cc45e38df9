"""Fan-out/fan-in: API Gateway's request model (from ``openapi.json``) refuses no body
the handler's pydantic model accepts."""

from __future__ import annotations

import fan_out_messages

from tests.support.contracts import gateway_acceptance_test

test_the_gateway_model_refuses_no_body_the_handler_accepts = gateway_acceptance_test(
    "fan_out_fan_in", {"/jobs": fan_out_messages.JobRequest}
)
