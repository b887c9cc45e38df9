"""Event sourcing: API Gateway's request models (from ``openapi.json``) refuse no body
the handler's pydantic model accepts."""

from __future__ import annotations

import account_parsing

from tests.support.contracts import gateway_acceptance_test

test_the_gateway_model_refuses_no_body_the_handler_accepts = gateway_acceptance_test(
    "event_sourcing",
    {
        "/accounts/{account_id}/credit": account_parsing.AmountRequest,
        "/accounts/{account_id}/withdraw": account_parsing.AmountRequest,
    },
)
