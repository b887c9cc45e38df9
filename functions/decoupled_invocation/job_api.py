"""REST API (v1 proxy) for decoupled invocation: ``POST /jobs`` and ``GET /jobs/{job_id}``.

A thin adapter: parse the event, call ``jobs``, shape the HTTP response. Every
client error is a JSON ``{"error", "message"}`` 4xx and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import jobs
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
SETTINGS = jobs.JobSettings.from_env()
_BOTO_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)
store = jobs.JobStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), jobs.require_env("JOB_TABLE_NAME")
)
queue = jobs.TaskQueue(boto3.client("sqs", config=_BOTO_CONFIG), jobs.require_env("TASK_QUEUE_URL"))
#: Replaced by a fake clock in tests.
clock: jobs.Clock = jobs.utc_now

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
        headers=headers or {},
    )


def _error(status_code: int, code: str, message: str, **headers: str) -> Response[str]:
    return _json_response(status_code, {"error": code, "message": message}, headers)


def _retry_after() -> str:
    return str(SETTINGS.retry_after_seconds)


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
        raise jobs.InvalidRequestError("Idempotency-Key must be given once")
    return jobs.validate_idempotency_key(values[0])


def _request_context(event: APIGatewayProxyEvent) -> dict[str, Any]:
    return event.raw_event.get("requestContext") or {}


def _caller(event: APIGatewayProxyEvent) -> str:
    identity = _request_context(event).get("identity") or {}
    return identity.get("userArn") or identity.get("caller") or "anonymous"


def _job_location(event: APIGatewayProxyEvent, job_id: str) -> str:
    # requestContext.path carries the stage (or custom domain base path): /api/jobs.
    collection = _request_context(event).get("path") or "/jobs"
    return f"{collection.rstrip('/')}/{job_id}"


@app.post("/jobs")
def create_job() -> Response[str]:
    """``POST /jobs``: store the job, queue it, answer 202 with Location and Retry-After."""
    event = app.current_event
    raw = jobs.decode_body(event.body, is_base64_encoded=bool(event.is_base64_encoded))
    idempotency_key = _idempotency_key(event)
    request = jobs.parse_job_request(raw)
    submission = jobs.submit_job(
        store,
        queue,
        request,
        now=clock(),
        settings=SETTINGS,
        caller=_caller(event),
        idempotency_key=idempotency_key,
        correlation_id=logger.get_correlation_id(),
    )
    view = submission.view
    logger.append_keys(job_id=view.job_id)
    if submission.created:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        logger.info("job submitted", task=request.task)
    else:
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
        logger.info("idempotent retry answered from the existing job", status=view.status.value)
    location = _job_location(event, view.job_id)
    return _json_response(
        202,
        {
            "job_id": view.job_id,
            "status": view.status.value,
            "created_at": view.created_at,
            "links": {"self": location},
        },
        {"Location": location, "Retry-After": _retry_after()},
    )


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response[str]:
    """``GET /jobs/{job_id}``: 202 + Retry-After while in progress, 200 once finished."""
    view = jobs.get_job_view(store, jobs.parse_job_id(job_id), now=clock())
    headers = {"Cache-Control": "no-store"}
    if view.is_finished:
        return _json_response(200, view.to_dict(), headers)
    return _json_response(202, view.to_dict(), {**headers, "Retry-After": _retry_after()})


@app.exception_handler(jobs.InvalidRequestError)
def _invalid_request(exc: jobs.InvalidRequestError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(400, "invalid_request", str(exc))


@app.exception_handler(jobs.PayloadTooLargeError)
def _payload_too_large(exc: jobs.PayloadTooLargeError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(400, "payload_too_large", str(exc))


@app.exception_handler(jobs.JobNotFoundError)
def _job_not_found(exc: jobs.JobNotFoundError) -> Response[str]:
    return _error(404, "not_found", str(exc))


@app.exception_handler(jobs.IdempotencyKeyReusedError)
def _idempotency_key_reused(exc: jobs.IdempotencyKeyReusedError) -> Response[str]:
    logger.info("rejected request", reason=str(exc))
    return _error(422, "idempotency_key_reused", str(exc))


@app.exception_handler(jobs.EnqueueFailedError)
def _enqueue_failed(exc: jobs.EnqueueFailedError) -> Response[str]:
    metrics.add_metric(name="EnqueueFailed", unit=MetricUnit.Count, value=1)
    return _error(503, "service_unavailable", str(exc), **{"Retry-After": _retry_after()})


@app.not_found
def _route_not_found(exc: NotFoundError) -> Response[str]:
    event = app.current_event
    return _error(404, "not_found", f"no route for {event.http_method} {event.path}")


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``job_api.handler``)."""
    return app.resolve(event, context)
