"""REST API (v1 proxy) of the recursive processor: ``GET /runs/{run_id}``.

A thin adapter: parse the path, read the run through ``batch_runs``, shape the
response. Client errors are JSON ``{"error", "message"}`` 4xx.
"""

from __future__ import annotations

import json
from typing import Any

import batch_runs
import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

# Configuration and clients are built once per execution environment.
_BOTO_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)
store = batch_runs.RunStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), batch_runs.require_env("RUN_TABLE_NAME")
)
OUTPUT_BUCKET = batch_runs.require_env("OUTPUT_BUCKET_NAME")

logger = Logger()
app = APIGatewayRestResolver()


def _json(status_code: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={"Cache-Control": "no-store"},
    )


@app.get("/runs/<run_id>")
def get_run(run_id: str) -> Response[str]:
    """``GET /runs/{run_id}``: the run's status, progress and counts (200)."""
    view = batch_runs.get_run_view(
        store, batch_runs.parse_run_id(run_id), output_bucket=OUTPUT_BUCKET
    )
    return _json(200, view)


@app.exception_handler(batch_runs.InvalidRunIdError)
def _invalid_run_id(exc: batch_runs.InvalidRunIdError) -> Response[str]:
    return _json(400, {"error": "invalid_request", "message": str(exc)})


@app.exception_handler(batch_runs.RunNotFoundError)
def _run_not_found(exc: batch_runs.RunNotFoundError) -> Response[str]:
    return _json(404, {"error": "not_found", "message": str(exc)})


@app.not_found
def _route_not_found(exc: NotFoundError) -> Response[str]:
    event = app.current_event
    message = f"no route for {event.http_method} {event.path}"
    return _json(404, {"error": "not_found", "message": message})


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``run_api.handler``)."""
    return app.resolve(event, context)
