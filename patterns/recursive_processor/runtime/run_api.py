"""REST API (v1 proxy) of the recursive processor: ``GET /runs/{run_id}``.

A thin adapter: parse the path, read the run through ``batch_service``, shape the
response. Client errors are JSON ``{"error", "message"}`` 4xx; a DynamoDB failure after
the SDK's retries is 503 ``service_unavailable`` with ``Retry-After``.
"""

from __future__ import annotations

import os

import batch_events
import batch_models
import batch_service
import batch_store
import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from handler_kit import contract, error_answers, responses
from handler_kit.clients import api_client_config
from handler_kit.clock import Clock, utc_now
from handler_kit.config import int_env, require_env

# Configuration and clients are built once per execution environment.
_BOTO_CONFIG = api_client_config()
store = batch_store.RunStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), require_env("RUN_TABLE_NAME")
)
OUTPUT_BUCKET = require_env("OUTPUT_BUCKET_NAME")
#: A RUNNING run not updated for this long reads FAILED ``stalled`` (set by the stack).
STALLED_AFTER_SECONDS = int_env(os.environ, "RUN_STALLED_AFTER_SECONDS", 8_700)
#: Replaced by a fake clock in tests; decides whether a run has expired (TTL).
clock: Clock = utc_now

#: Seconds a client should wait before asking again after a 503.
RETRY_AFTER_SECONDS = 1

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
api = contract.ContractRoutes(app)
#: Runs progress at any time: no response of this API may be cached.
NO_STORE = {"Cache-Control": "no-store"}
# An invalid run id is an InvalidRequestError: 400 invalid_request.
responses.register_error_handlers(app, logger=logger, headers=NO_STORE)


@api.get(
    "/runs/<run_id>",
    summary="The run: its status, progress and counts",
    path={"run_id": contract.UUID_PARAMETER},
    responses={
        **contract.lookup("The run", body=batch_models.RunBody),
        503: contract.unavailable(),
    },
)
def get_run(run_id: str) -> Response[str]:
    """``GET /runs/{run_id}``: the run's status, progress and counts (200)."""
    view = batch_service.get_run_view(
        store,
        batch_events.parse_run_id(run_id),
        output_bucket=OUTPUT_BUCKET,
        now=clock(),
        stalled_after_seconds=STALLED_AFTER_SECONDS,
    )
    return responses.json_response(200, view, NO_STORE)


error_answers.answer_errors(
    app,
    {
        batch_models.RunNotFoundError: error_answers.ErrorAnswer(404, "not_found"),
        # DynamoDB throttled or down after the SDK's retries: 503 with Retry-After.
        **error_answers.dependency_failures(RETRY_AFTER_SECONDS),
    },
    logger=logger,
    metrics=metrics,
    headers=NO_STORE,
)


#: Lambda entry point (``run_api.handler``).
handler = responses.rest_api_handler(app, logger=logger, metrics=metrics)
