"""One-off schedules: API Gateway's request model (from ``openapi.json``) refuses no body
the handler's pydantic model accepts."""

from __future__ import annotations

import pytest
import schedule_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.contracts import check_gateway_accepts_what_the_handler_accepts, document_of

DOCUMENT = document_of("one_off_schedules")


@pytest.mark.parametrize("path", ["/schedules"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_gateway_model_refuses_no_body_the_handler_accepts(
    path: str, data: st.DataObject
) -> None:
    check_gateway_accepts_what_the_handler_accepts(
        DOCUMENT, "POST", path, schedule_models.ScheduleRequest, data
    )
