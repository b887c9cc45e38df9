"""REST API (v1 proxy) for decoupled invocation: ``POST /jobs`` and ``GET /jobs/{job_id}``.

A thin adapter: parse the event, call ``job_service``, shape the HTTP response. Every
client error is a JSON ``{"error", "message"}`` 4xx and writes nothing.
"""

from __future__ import annotations

import boto3
import job_models
import job_service
import job_store
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from handler_kit import contract, error_answers, http_requests, responses
from handler_kit.clients import api_client_config
from handler_kit.clock import Clock, utc_now
from handler_kit.config import require_env

# Configuration and clients are built once per execution environment.
SETTINGS = job_models.JobSettings.from_env()
_BOTO_CONFIG = api_client_config()
store = job_store.JobStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), require_env("JOB_TABLE_NAME")
)
queue = job_store.TaskQueue(boto3.client("sqs", config=_BOTO_CONFIG), require_env("TASK_QUEUE_URL"))
#: Replaced by a fake clock in tests.
clock: Clock = utc_now

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
api = contract.ContractRoutes(app)
responses.register_error_handlers(app, logger=logger)


def _retry_after() -> str:
    return str(SETTINGS.retry_after_seconds)


def _accepted(view: job_models.JobView) -> responses.StoredResponse:
    """The 202 answer of a submitted job (stored with a keyed job, replayed as is)."""
    location = http_requests.item_location(app.current_event, "/jobs", view.job_id)
    body: job_models.AcceptedJobBody = {
        "job_id": view.job_id,
        "status": view.status,
        "created_at": view.created_at,
        "links": {"self": location},
    }
    return responses.stored_json(202, body, {"Location": location, "Retry-After": _retry_after()})


#: The body of ``POST /jobs``: declared by the route, read with the same limit.
_JOB_BODY = http_requests.PostBody(job_models.JobRequest, max_bytes=job_models.MAX_BODY_BYTES)


@api.post(
    "/jobs",
    summary="Submit a job: stored PENDING and queued; poll its Location",
    **_JOB_BODY.declared(),
    idempotency_key=True,
    responses=contract.accepted_submission("The accepted job", body=job_models.AcceptedJobBody),
)
def create_job() -> Response[str]:
    """``POST /jobs``: store the job, queue it, answer 202 with Location and Retry-After."""
    event = app.current_event
    raw = _JOB_BODY.read(event)
    idempotency_key = http_requests.idempotency_key(event)
    request = job_models.parse_job_request(raw)
    submission = job_service.submit_job(
        store,
        queue,
        request,
        now=clock(),
        settings=SETTINGS,
        caller=http_requests.caller(event),
        idempotency_key=idempotency_key,
        correlation_id=logger.get_correlation_id(),
        render=_accepted,
    )
    view = submission.view
    logger.append_keys(job_id=view.job_id)
    if submission.created:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        logger.info("job submitted", task=request.task)
    else:
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
        logger.info("idempotent retry answered from the existing job", status=view.status.value)
    # The first answer and every replay: the same status and bytes.
    return responses.replay(submission.response)


@api.get(
    "/jobs/<job_id>",
    summary="The job: 202 while it is in progress, 200 once it is finished",
    path={"job_id": contract.UUID_PARAMETER},
    responses={
        200: contract.ok("The finished job (DONE, FAILED or TIMED_OUT)", body=job_models.JobBody),
        202: contract.ok("The job in progress", headers=("Retry-After",), body=job_models.JobBody),
        400: contract.errors("invalid_request"),
        404: contract.errors("not_found"),
        503: contract.unavailable(),
    },
)
def get_job(job_id: str) -> Response[str]:
    """``GET /jobs/{job_id}``: 202 + Retry-After while in progress, 200 once finished."""
    view = job_service.get_job_view(store, job_models.parse_job_id(job_id), now=clock())
    return responses.progress_response(
        view.to_dict(), finished=view.is_finished, retry_after_seconds=SETTINGS.retry_after_seconds
    )


error_answers.answer_errors(
    app,
    {
        job_models.JobNotFoundError: error_answers.ErrorAnswer(404, "not_found"),
        job_models.EnqueueFailedError: error_answers.unavailable(_retry_after(), "EnqueueFailed"),
        # DynamoDB throttled or down after the SDK's retries (SendMessage's own failure is
        # EnqueueFailedError above): 503 with Retry-After on every route.
        **error_answers.dependency_failures(_retry_after()),
    },
    logger=logger,
    metrics=metrics,
)


#: Lambda entry point (``job_api.handler``).
handler = responses.rest_api_handler(app, logger=logger, metrics=metrics)
