"""REST API (v1 proxy) for one-off schedules: ``POST /schedules``,
``GET /schedules/{schedule_id}`` and ``DELETE /schedules/{schedule_id}``.

A thin adapter: parse the event, call ``schedule_service``, shape the HTTP response. Every
client error is a JSON ``{"error", "message"}`` 4xx and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
import schedule_cancel
import schedule_models
import schedule_parsing
import schedule_service
import schedule_store
import schedule_views
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from handler_kit import contract, error_answers, http_requests, responses
from handler_kit.clients import api_client_config
from handler_kit.clock import Clock, utc_now
from handler_kit.config import require_env

# Configuration and clients are built once per execution environment.
SETTINGS = schedule_models.ScheduleSettings.from_env()
TARGET = schedule_models.ScheduleTarget.from_env()
_BOTO_CONFIG = api_client_config()
store = schedule_store.ScheduleStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), require_env("SCHEDULE_TABLE_NAME")
)
scheduler = schedule_store.Schedules(
    boto3.client("scheduler", config=_BOTO_CONFIG), TARGET.group_name
)
#: Replaced by a fake clock in tests.
clock: Clock = utc_now

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
api = contract.ContractRoutes(app)
_SCHEDULE = {"schedule_id": contract.UUID_PARAMETER}
#: Schedules change state at any time: no response of this API may be cached.
NO_STORE = {"Cache-Control": "no-store"}
responses.register_error_handlers(app, logger=logger, headers=NO_STORE)


def _json_response(
    status_code: int, body: Mapping[str, Any], headers: dict[str, str] | None = None
) -> Response[str]:
    return responses.json_response(status_code, body, {**NO_STORE, **(headers or {})})


def _error(status_code: int, code: str, message: str, **headers: str) -> Response[str]:
    return responses.error_response(status_code, code, message, {**NO_STORE, **headers})


def _location_of(schedule_id: str) -> str:
    return http_requests.item_location(app.current_event, "/schedules", schedule_id)


def _view_body(view: schedule_views.ScheduleView, location: str) -> schedule_views.ScheduleBody:
    return {**view.to_dict(), "links": {"self": location}}


def _created(view: schedule_views.ScheduleView) -> responses.StoredResponse:
    """The 201 answer of a new schedule (stored with a keyed record, replayed as is)."""
    location = _location_of(view.schedule_id)
    return responses.stored_json(201, _view_body(view, location), {"Location": location})


#: The body of ``POST /schedules``: declared by the route, read with the same limit.
_SCHEDULE_BODY = http_requests.PostBody(
    schedule_models.ScheduleRequest, max_bytes=schedule_models.MAX_BODY_BYTES
)


@api.post(
    "/schedules",
    summary="Create a one-off schedule that fires once at 'at' and then deletes itself",
    **_SCHEDULE_BODY.declared(),
    idempotency_key=True,
    responses={
        201: contract.ok(
            "The new schedule (PENDING)", headers=("Location",), body=schedule_views.ScheduleBody
        ),
        400: contract.errors("invalid_request", "payload_too_large", "invalid_time"),
        422: contract.errors("idempotency_key_reused"),
        503: contract.unavailable(),
    },
)
def create_schedule() -> Response[str]:
    """``POST /schedules``: 201 with the PENDING schedule; a keyed retry gets that answer."""
    event = app.current_event
    raw = _SCHEDULE_BODY.read(event)
    idempotency_key = http_requests.idempotency_key(event)
    request = schedule_parsing.parse_schedule_request(raw)
    submission = schedule_service.submit_schedule(
        store,
        scheduler,
        request,
        now=clock(),
        settings=SETTINGS,
        target=TARGET,
        caller=http_requests.caller(event),
        idempotency_key=idempotency_key,
        render=_created,
        clock=clock,
    )
    view = submission.view
    logger.append_keys(schedule_id=view.schedule_id)
    if submission.created:
        metrics.add_metric(name="SchedulesCreated", unit=MetricUnit.Count, value=1)
        logger.info("schedule created", at=view.item["at"])
    else:
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
        logger.info("idempotent retry answered with the first answer")
    # The first answer and every replay: the same status and bytes.
    return responses.replay(submission.response, NO_STORE)


@api.get(
    "/schedules/<schedule_id>",
    summary="The schedule: its status and when it changed",
    path=_SCHEDULE,
    responses={
        **contract.lookup("The schedule", body=schedule_views.ScheduleBody),
        503: contract.unavailable(),
    },
)
def get_schedule(schedule_id: str) -> Response[str]:
    """``GET /schedules/{schedule_id}``: status and when it changed."""
    view = schedule_service.get_schedule_view(
        store, schedule_parsing.parse_schedule_id(schedule_id), now=clock(), settings=SETTINGS
    )
    return _json_response(200, _view_body(view, _location_of(view.schedule_id)))


@api.delete(
    "/schedules/<schedule_id>",
    summary="Cancel a pending schedule (repeatable)",
    path=_SCHEDULE,
    responses={
        **contract.lookup("The cancelled schedule", body=schedule_views.ScheduleBody),
        409: contract.errors("not_cancellable"),
        503: contract.unavailable(),
    },
)
def cancel_schedule(schedule_id: str) -> Response[str]:
    """``DELETE /schedules/{schedule_id}``: cancel a pending schedule (200, repeatable)."""
    view = schedule_cancel.cancel_schedule(
        store,
        scheduler,
        schedule_parsing.parse_schedule_id(schedule_id),
        now=clock(),
        settings=SETTINGS,
    )
    metrics.add_metric(name="SchedulesCancelled", unit=MetricUnit.Count, value=1)
    logger.info("schedule cancelled", schedule_id=view.schedule_id)
    return _json_response(200, _view_body(view, _location_of(view.schedule_id)))


error_answers.answer_errors(
    app,
    {
        schedule_models.InvalidScheduleTimeError: error_answers.ErrorAnswer(
            400, "invalid_time", log=("info", "rejected request")
        ),
        schedule_models.ScheduleNotFoundError: error_answers.ErrorAnswer(404, "not_found"),
        schedule_models.ScheduleNotCancellableError: error_answers.ErrorAnswer(
            409, "not_cancellable"
        ),
        schedule_models.ScheduleCreateFailedError: error_answers.unavailable(
            SETTINGS.retry_after_seconds, "ScheduleCreateFailed"
        ),
        # DynamoDB throttled or down after the SDK's retries (CreateSchedule's own failure
        # is ScheduleCreateFailedError above; DeleteSchedule's is tolerated): 503.
        **error_answers.dependency_failures(SETTINGS.retry_after_seconds),
    },
    logger=logger,
    metrics=metrics,
    headers=NO_STORE,
)


#: Lambda entry point (``schedule_api.handler``).
handler = responses.rest_api_handler(app, logger=logger, metrics=metrics)
