"""REST API (v1 proxy) of the event-sourced bank account.

``POST /accounts``, ``POST /accounts/{account_id}/credit|withdraw``,
``GET /accounts/{account_id}`` and ``GET /accounts/{account_id}/events``.

A thin adapter: parse the event, call ``account_parsing`` and ``account_service``,
shape the HTTP response. Every client error is a JSON ``{"error", "message"}`` 4xx and
writes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import account_models
import account_parsing
import account_service
import account_store
import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from handler_kit import contract, error_answers, http_requests, responses
from handler_kit.clients import api_client_config, one_attempt_client_config
from handler_kit.clock import Clock, Sleep, utc_now
from handler_kit.config import require_env

# Configuration and clients are built once per execution environment.
SETTINGS = account_models.AccountSettings.from_env()
_BOTO_CONFIG = api_client_config()
store = account_store.EventStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), require_env("EVENT_TABLE_NAME")
)
# The snapshot is written after the event is committed: on the API client (three
# attempts of 4 s) a stalled write would outlast the function's 10 s and the client
# would get a 5xx for an applied command. One short attempt bounds it (the command
# also skips it when less than SNAPSHOT_BUDGET_MS is left); a lost snapshot only
# makes later reads longer.
snapshot_store = account_store.EventStore(
    boto3.client("dynamodb", config=one_attempt_client_config()), require_env("EVENT_TABLE_NAME")
)
#: Replaced by fakes in tests.
clock: Clock = utc_now
sleep: Sleep = time.sleep
rng = random.Random()

#: Seconds a client should wait before retrying a 409 concurrent_update or a 503.
RETRY_AFTER_SECONDS = "1"

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
api = contract.ContractRoutes(app)
responses.register_error_handlers(app, logger=logger)

_ACCOUNT = {"account_id": contract.UUID_PARAMETER}
_REPLAYED = ("Idempotent-Replayed",)
_RETRY = ("Retry-After",)
#: Every route may meet DynamoDB throttling or an outage after the SDK's retries.
_UNAVAILABLE = contract.unavailable()
#: A route handler of one account (its id from the path).
_AccountRoute = Callable[[str], Response[str]]


#: The bodies the routes declare and read, with the one limit of both (an oversize body
#: is 400 ``payload_too_large``, as in every API of the app).
_OPEN_BODY = http_requests.PostBody(
    account_parsing.OpenRequest, max_bytes=account_models.MAX_BODY_BYTES
)
_AMOUNT_BODY = http_requests.PostBody(
    account_parsing.AmountRequest, max_bytes=account_models.MAX_BODY_BYTES
)


def _replay_headers(result: account_models.CommandResult) -> dict[str, str]:
    if result.replayed:
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
        return {"Idempotent-Replayed": "true"}
    return {}


@api.post(
    "/accounts",
    summary="Open an account (balance 0); no body or {}",
    **_OPEN_BODY.declared(),
    body_required=False,
    idempotency_key=True,
    responses={
        201: contract.ok(
            "The new account",
            headers=("Location", *_REPLAYED),
            body=account_models.OpenedAccountBody,
        ),
        400: contract.errors("invalid_request", "payload_too_large"),
        503: _UNAVAILABLE,
    },
)
def open_account() -> Response[str]:
    """``POST /accounts``: append AccountCreated, answer 201 with Location."""
    event = app.current_event
    account_parsing.parse_open_request(_OPEN_BODY.read(event))
    result = account_service.open_account(
        store,
        now=clock(),
        caller=http_requests.caller(event),
        idempotency_key=http_requests.idempotency_key(event),
        render=_opened,
    )
    logger.append_keys(account_id=result.body["account_id"])
    if not result.replayed:
        metrics.add_metric(name="AccountsOpened", unit=MetricUnit.Count, value=1)
    # The first answer and every replay (kept with a keyed account): the same bytes.
    assert result.response is not None
    return responses.replay(result.response, _replay_headers(result))


def _opened(account: account_models.AccountBody) -> responses.StoredResponse:
    """The 201 answer of a new account (kept with a keyed account, replayed as is)."""
    location = http_requests.item_location(app.current_event, "/accounts", account["account_id"])
    body: account_models.OpenedAccountBody = {
        **account,
        "links": {"self": location, "events": f"{location}/events"},
    }
    return responses.stored_json(201, body, {"Location": location})


_COMMAND_METRICS = {
    account_models.CommandType.CREDIT: "Credits",
    account_models.CommandType.WITHDRAW: "Withdrawals",
}


def _command(account_id: str, command: account_models.CommandType) -> Response[str]:
    event = app.current_event
    account_id = account_parsing.parse_account_id(account_id)
    logger.append_keys(account_id=account_id)
    idempotency_key = http_requests.idempotency_key(event)
    request = account_parsing.parse_amount_request(_AMOUNT_BODY.read(event))
    result = account_service.execute_command(
        store,
        account_id,
        command,
        request.amount,
        settings=SETTINGS,
        clock=clock,
        sleep=sleep,
        rng=rng,
        caller=http_requests.caller(event),
        idempotency_key=idempotency_key,
        snapshot_store=snapshot_store,
        remaining_ms=app.lambda_context.get_remaining_time_in_millis,
    )
    if not result.replayed:
        metrics.add_metric(name=_COMMAND_METRICS[command], unit=MetricUnit.Count, value=1)
        logger.info("command applied", command=command.value, version=result.body["version"])
    # The stored answer, first time and on every replay: the same status and bytes.
    stored = result.response or responses.stored_json(200, result.body)
    return responses.replay(stored, _replay_headers(result))


def _amount_command_route(
    verb: str, *, summary: str, answer: str, refusal: str
) -> Callable[[_AccountRoute], _AccountRoute]:
    """Declare ``POST /accounts/{id}/<verb>``, an amount command.

    Credit and withdraw take the same body and key and answer alike, but for what
    their 200 describes and the 409 ``refusal`` their own rule can end in.
    """
    return api.post(
        f"/accounts/<account_id>/{verb}",
        summary=summary,
        **_AMOUNT_BODY.declared(),
        idempotency_key=True,
        path=_ACCOUNT,
        responses={
            200: contract.ok(answer, headers=_REPLAYED, body=account_models.CommandBody),
            400: contract.errors("invalid_request", "payload_too_large"),
            404: contract.errors("not_found"),
            409: contract.errors(refusal, "concurrent_update", headers=_RETRY),
            422: contract.errors("idempotency_key_reused"),
            503: _UNAVAILABLE,
        },
    )


@_amount_command_route(
    "credit",
    summary="Credit the account with an amount in minor units",
    answer="The account after the credit",
    refusal="balance_limit_exceeded",
)
def credit(account_id: str) -> Response[str]:
    """``POST /accounts/{id}/credit`` with ``{"amount": <minor units>}``."""
    return _command(account_id, account_models.CommandType.CREDIT)


@_amount_command_route(
    "withdraw",
    summary="Withdraw an amount in minor units; refused if it would overdraw",
    answer="The account after the withdrawal",
    refusal="insufficient_funds",
)
def withdraw(account_id: str) -> Response[str]:
    """``POST /accounts/{id}/withdraw``; refused (409) if it would overdraw."""
    return _command(account_id, account_models.CommandType.WITHDRAW)


@api.get(
    "/accounts/<account_id>",
    summary="The account: balance, version, created and last updated",
    path=_ACCOUNT,
    responses={
        **contract.lookup("The account", body=account_models.AccountBody),
        503: _UNAVAILABLE,
    },
)
def get_account(account_id: str) -> Response[str]:
    """``GET /accounts/{id}``: balance, version, created and last updated."""
    state = account_service.get_account(
        store, account_parsing.parse_account_id(account_id), settings=SETTINGS
    )
    return responses.json_response(200, state.to_dict(), {"Cache-Control": "no-store"})


@api.get(
    "/accounts/<account_id>/events",
    summary="The account's events, oldest first, a page at a time",
    path=_ACCOUNT,
    query={
        "limit": {
            "type": "integer",
            "minimum": 1,
            "description": "Page size, at most the API's maximum (MAX_HISTORY_PAGE_SIZE)",
        },
        "cursor": {"type": "string", "description": "The previous page's next cursor"},
    },
    responses={
        **contract.lookup(
            "A page of events and the cursor of the next one", body=account_models.HistoryBody
        ),
        503: _UNAVAILABLE,
    },
)
def get_events(account_id: str) -> Response[str]:
    """``GET /accounts/{id}/events?limit=&cursor=``: history, oldest first."""
    account_id = account_parsing.parse_account_id(account_id)
    event = app.current_event
    page = account_service.get_history(
        store,
        account_id,
        cursor=http_requests.single_query_parameter(event, "cursor"),
        limit=account_parsing.parse_limit(
            http_requests.single_query_parameter(event, "limit"), SETTINGS
        ),
    )
    return responses.json_response(200, page.to_dict(), {"Cache-Control": "no-store"})


error_answers.answer_errors(
    app,
    {
        # Throttling or an outage of DynamoDB after the SDK's own retries: retryable.
        **error_answers.dependency_failures(RETRY_AFTER_SECONDS),
        account_models.AccountNotFoundError: error_answers.ErrorAnswer(404, "not_found"),
        account_models.InsufficientFundsError: error_answers.ErrorAnswer(
            409, "insufficient_funds", metric="OverdraftRefused"
        ),
        account_models.BalanceLimitError: error_answers.ErrorAnswer(409, "balance_limit_exceeded"),
        account_models.ConcurrentUpdateError: error_answers.ErrorAnswer(
            409,
            "concurrent_update",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
            metric="ConflictsExhausted",
            log=("warning", "optimistic locking gave up"),
        ),
    },
    logger=logger,
    metrics=metrics,
)


#: Lambda entry point (``account_api.handler``).
handler = responses.rest_api_handler(app, logger=logger, metrics=metrics)
