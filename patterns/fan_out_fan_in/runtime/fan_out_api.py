"""REST API (v1 proxy) and ventilator: ``POST /jobs`` and ``GET /jobs/{job_id}``.

A thin adapter: parse the event, call ``fan_out_service``, shape the HTTP response. Every
client error is a JSON ``{"error", "message"}`` 4xx and writes nothing. ``POST`` is the
ventilator: it records the job, then sends its subtasks in parallel before answering.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import boto3
import fan_out_messages
import fan_out_models
import fan_out_service
import fan_out_store
import fan_out_views
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from handler_kit import contract, error_answers, http_requests, responses
from handler_kit.clients import SHORT_ATTEMPT_S, api_client_config, one_attempt_client_config
from handler_kit.clock import Clock, Sleep, utc_now
from handler_kit.config import require_env

if TYPE_CHECKING:  # annotations only
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    from aws_lambda_powertools.utilities.typing import LambdaContext

#: What the answer needs after ventilation, before the function's timeout or API
#: Gateway's, whichever comes first: marking a job whose subtasks could not all be sent
#: FAILED and reading it back, so it is answered (503) instead of cut off. The DynamoDB
#: calls take milliseconds; this covers one stalled attempt among them (1 s to connect,
#: 3 s to read: ``api_client_config``), up to 1 s of backoff before its retry (botocore
#: before its 2026 retry update waited that long after a timeout; Lambda's runtime
#: brings its own botocore) and the calls.
SAFETY_MARGIN_SECONDS = 6.0
#: API Gateway's integration timeout (the REST default, not raised here). It runs from
#: the request's arrival (``requestTimeEpoch``), so it also counts a cold start's init,
#: which the function's own timeout does not.
GATEWAY_TIMEOUT_SECONDS = 29.0

# Configuration and clients are built once per execution environment.
SETTINGS = fan_out_models.FanOutSettings.from_env()
_DYNAMODB_CONFIG = api_client_config()
# One short attempt per call: the ventilator retries a failed call itself
# (SEND_ATTEMPTS), each time only if a whole attempt still fits, so no call can run past
# the margin (botocore's three attempts of a stalled call took 12 s). One connection per
# parallel sender (the default pool of 10 would queue them).
_SQS_CONFIG = one_attempt_client_config(max_pool_connections=SETTINGS.send_concurrency)
#: The longest a SendMessageBatch call can take: a call starts only with this much
#: time left before the safety margin.
SEND_CALL_SECONDS = float(SHORT_ATTEMPT_S)
store = fan_out_store.JobStore(
    boto3.client("dynamodb", config=_DYNAMODB_CONFIG),
    require_env("JOB_TABLE_NAME"),
    require_env("RESULT_TABLE_NAME"),
)
queue = fan_out_store.SubtaskQueue(
    boto3.client("sqs", config=_SQS_CONFIG), require_env("SUBTASK_QUEUE_URL")
)
#: Replaced by fakes in tests.
clock: Clock = utc_now
sleep: Sleep = time.sleep

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
api = contract.ContractRoutes(app)
responses.register_error_handlers(app, logger=logger)


def _accepted(view: fan_out_models.JobView) -> responses.StoredResponse:
    """The 202 answer of a submitted job (stored with a keyed job, replayed as is)."""
    location = http_requests.item_location(app.current_event, "/jobs", view.job_id)
    body: fan_out_models.AcceptedJobBody = {
        "job_id": view.job_id,
        "status": view.status,
        "total": view.total,
        "created_at": view.created_at,
        "links": {"self": location},
    }
    return responses.stored_json(
        202, body, {"Location": location, "Retry-After": str(SETTINGS.retry_after_seconds)}
    )


#: The body of ``POST /jobs``: declared by the route, read with the same limit.
_JOB_BODY = http_requests.PostBody(
    fan_out_messages.JobRequest, max_bytes=fan_out_models.MAX_BODY_BYTES
)


@api.post(
    "/jobs",
    summary="Submit a job of N subtasks: recorded, its subtasks sent; poll its Location",
    **_JOB_BODY.declared(),
    idempotency_key=True,
    responses=contract.accepted_submission("The accepted job", body=fan_out_models.AcceptedJobBody),
)
def create_job() -> Response[str]:
    """``POST /jobs``: record the job, send its subtasks, answer 202 with Location.

    A retry with the same ``Idempotency-Key`` (same caller, same body) answers from the
    job the first attempt recorded and sends nothing; another body with that key: 422.
    """
    event = app.current_event
    raw = _JOB_BODY.read(event)
    idempotency_key = http_requests.idempotency_key(event)
    request = fan_out_messages.parse_job_request(raw)
    context = app.lambda_context
    submission = fan_out_service.submit_job(
        store,
        queue,
        request,
        now=clock(),
        settings=SETTINGS,
        caller=http_requests.caller(event),
        idempotency_key=idempotency_key,
        render=_accepted,
        sleep=sleep,
        time_left=lambda: _seconds_left(event, context) - SEND_CALL_SECONDS,
    )
    view, report = submission.view, submission.report
    logger.append_keys(job_id=view.job_id)
    if submission.created:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="SubtasksSent", unit=MetricUnit.Count, value=report.sent)
        metrics.add_metric(name="SendMessageBatchCalls", unit=MetricUnit.Count, value=report.calls)
        logger.info("job ventilated", total=view.total, send_calls=report.calls)
    else:
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
        logger.info("idempotent retry answered from the existing job", status=view.status.value)
    # The first answer and every replay: the same status and bytes.
    return responses.replay(submission.response)


def _seconds_left(event: APIGatewayProxyEvent, context: LambdaContext) -> float:
    """Seconds ventilation may still take: to the function's deadline or API Gateway's,
    whichever comes first, less the safety margin."""
    left = context.get_remaining_time_in_millis() / 1000
    arrived_ms = http_requests.request_context(event).get("requestTimeEpoch")
    if isinstance(arrived_ms, int):
        gateway_deadline = arrived_ms / 1000 + GATEWAY_TIMEOUT_SECONDS
        left = min(left, gateway_deadline - clock().timestamp())
    return left - SAFETY_MARGIN_SECONDS


@api.get(
    "/jobs/<job_id>",
    summary="The job: 202 while it runs, 200 once it is finished",
    path={"job_id": contract.UUID_PARAMETER},
    responses={
        200: contract.ok(
            "The finished job (DONE, FAILED or TIMED_OUT)", body=fan_out_models.JobBody
        ),
        202: contract.ok(
            "The job in progress", headers=("Retry-After",), body=fan_out_models.JobBody
        ),
        400: contract.errors("invalid_request"),
        404: contract.errors("not_found"),
        503: contract.unavailable(),
    },
)
def get_job(job_id: str) -> Response[str]:
    """``GET /jobs/{job_id}``: 202 + Retry-After while running, 200 once finished."""
    view = fan_out_views.get_job_view(store, fan_out_models.parse_job_id(job_id), now=clock())
    return responses.progress_response(
        view.to_dict(), finished=view.is_finished, retry_after_seconds=SETTINGS.retry_after_seconds
    )


error_answers.answer_errors(
    app,
    {
        fan_out_models.JobNotFoundError: error_answers.ErrorAnswer(404, "not_found"),
        fan_out_models.VentilationFailedError: error_answers.unavailable(
            SETTINGS.retry_after_seconds, "VentilationFailed", log=("error", "ventilation failed")
        ),
        # DynamoDB throttled or down after the SDK's retries (SendMessageBatch's own
        # failures end in VentilationFailedError above): 503 with Retry-After.
        **error_answers.dependency_failures(SETTINGS.retry_after_seconds),
    },
    logger=logger,
    metrics=metrics,
)


#: Lambda entry point (``fan_out_api.handler``).
handler = responses.rest_api_handler(app, logger=logger, metrics=metrics)
