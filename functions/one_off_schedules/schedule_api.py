"""REST API (v1 proxy) for one-off schedules: ``POST /schedules``,
``GET /schedules/{schedule_id}`` and ``DELETE /schedules/{schedule_id}``.

A thin adapter: parse the event, call ``schedules``, shape the HTTP response. Every
client error is a JSON ``{"error", "message"}`` 4xx and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import schedules
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

# Configuration and clients are built once per execution environment.
SETTINGS = schedules.ScheduleSettings.from_env()
TARGET = schedules.ScheduleTarget.from_env()
_BOTO_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)
store = schedules.ScheduleStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), schedules.require_env("SCHEDULE_TABLE_NAME")
)
scheduler = schedules.Schedules(boto3.client("scheduler", config=_BOTO_CONFIG), TARGET.group_name)
#: Replaced by a fake clock in tests.
clock: schedules.Clock = schedules.utc_now

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()


def _json_response(
    status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _error(status_code: int, code: str, message: str, **headers: str) -> Response[str]:
    return _json_response(status_code, {"error": code, "message": message}, headers)


def _header_values(event: APIGatewayProxyEvent, name: str) -> list[str]:
    """All values of a header, matched case-insensitively, from both header maps."""
    wanted = name.lower()
    values: list[str] = []
    for key, items in (event.raw_event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted:
            values.extend(items or [])
    if not values:
        for key, value in (event.raw_event.get("headers") or {}).items():
            if key.lower() == wanted and value is not None:
                values.append(value)
    return values


def _idempotency_key(event: APIGatewayProxyEvent) -> str | None:
    values = _header_values(event, "Idempotency-Key")
    if not values:
        return None
    if len(set(values)) > 1:
        raise schedules.InvalidRequestError("Idempotency-Key must be given once")
    return schedules.validate_idempotency_key(values[0])


def _request_context(event: APIGatewayProxyEvent) -> dict[str, Any]:
    return event.raw_event.get("requestContext") or {}


def _caller(event: APIGatewayProxyEvent) -> str:
    identity = _request_context(event).get("identity") or {}
    return identity.get("userArn") or identity.get("caller") or "anonymous"


def _location(event: APIGatewayProxyEvent, schedule_id: str) -> str:
    # requestContext.path carries the stage (or custom domain base path): /api/schedules.
    collection = _request_context(event).get("path") or "/schedules"
    return f"{collection.rstrip('/')}/{schedule_id}"


def _location_of(schedule_id: str) -> str:
    # On /schedules/{id} the request path already is the resource's own location.
    path = _request_context(app.current_event).get("path")
    return str(path) if path else f"/schedules/{schedule_id}"


def _view_body(view: schedules.ScheduleView, location: str) -> dict[str, Any]:
    return {**view.to_dict(), "links": {"self": location}}


@app.post("/schedules")
def create_schedule() -> Response[str]:
    """``POST /schedules``: 201 with the PENDING schedule, 200 for an idempotent retry."""
    event = app.current_event
    raw = schedules.decode_body(event.body, is_base64_encoded=bool(event.is_base64_encoded))
    idempotency_key = _idempotency_key(event)
    request = schedules.parse_schedule_request(raw)
    submission = schedules.submit_schedule(
        store,
        scheduler,
        request,
        now=clock(),
        settings=SETTINGS,
        target=TARGET,
        caller=_caller(event),
        idempotency_key=idempotency_key,
    )
    view = submission.view
    logger.append_keys(schedule_id=view.schedule_id)
    location = _location(event, view.schedule_id)
    if submission.created:
        metrics.add_metric(name="SchedulesCreated", unit=MetricUnit.Count, value=1)
        logger.info("schedule created", at=view.item["at"])
        return _json_response(201, _view_body(view, location), {"Location": location})
    metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
    logger.info("idempotent retry answered from the existing schedule")
    return _json_response(200, _view_body(view, location), {"Location": location})


@app.get("/schedules/<schedule_id>")
def get_schedule(schedule_id: str) -> Response[str]:
    """``GET /schedules/{schedule_id}``: status and when it changed."""
    view = schedules.get_schedule_view(
        store, schedules.parse_schedule_id(schedule_id), now=clock(), settings=SETTINGS
    )
    return _json_response(200, _view_body(view, _location_of(view.schedule_id)))


@app.delete("/schedules/<schedule_id>")
def cancel_schedule(schedule_id: str) -> Response[str]:
    """``DELETE /schedules/{schedule_id}``: cancel a pending schedule (200, repeatable)."""
    view = schedules.cancel_schedule(
        store, scheduler, schedules.parse_schedule_id(schedule_id), now=clock()
    )
    metrics.add_metric(name="SchedulesCancelled", unit=MetricUnit.Count, value=1)
    logger.info("schedule cancelled", schedule_id=view.schedule_id)
    return _json_response(200, _view_body(view, _location_of(view.schedule_id)))


@app.exception_handler(schedules.InvalidScheduleTimeError)
def _invalid_time(exc: schedules.InvalidScheduleTimeError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(400, "invalid_time", str(exc))


@app.exception_handler(schedules.InvalidRequestError)
def _invalid_request(exc: schedules.InvalidRequestError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(400, "invalid_request", str(exc))


@app.exception_handler(schedules.PayloadTooLargeError)
def _payload_too_large(exc: schedules.PayloadTooLargeError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(400, "payload_too_large", str(exc))


@app.exception_handler(schedules.ScheduleNotFoundError)
def _schedule_not_found(exc: schedules.ScheduleNotFoundError) -> Response[str]:
    return _error(404, "not_found", str(exc))


@app.exception_handler(schedules.ScheduleNotCancellableError)
def _not_cancellable(exc: schedules.ScheduleNotCancellableError) -> Response[str]:
    return _error(409, "not_cancellable", str(exc))


@app.exception_handler(schedules.IdempotencyKeyReusedError)
def _idempotency_key_reused(exc: schedules.IdempotencyKeyReusedError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(422, "idempotency_key_reused", str(exc))


@app.exception_handler(schedules.ScheduleCreateFailedError)
def _create_failed(exc: schedules.ScheduleCreateFailedError) -> Response[str]:
    metrics.add_metric(name="ScheduleCreateFailed", unit=MetricUnit.Count, value=1)
    return _error(
        503,
        "service_unavailable",
        str(exc),
        **{"Retry-After": str(SETTINGS.retry_after_seconds)},
    )


@app.not_found
def _route_not_found(exc: NotFoundError) -> Response[str]:
    event = app.current_event
    return _error(404, "not_found", f"no route for {event.http_method} {event.path}")


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``schedule_api.handler``)."""
    return app.resolve(event, context)
