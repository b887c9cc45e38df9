"""Parsing and validating account requests: bodies, ids, limits, cursors, keys.

The request models, and plain functions that raise ``InvalidRequestError`` (HTTP 400)
for anything malformed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Annotated

from account_models import (
    ACCOUNT_ID_NAMESPACE,
    IDEMPOTENCY_PREFIX,
    MAX_AMOUNT,
    AccountSettings,
    CommandType,
)
from handler_kit import http_requests
from handler_kit.errors import InvalidRequestError
from handler_kit.strict_json import parse_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError

_CURSOR_RE = re.compile(r"^v2:([0-9a-f-]{36}):([1-9][0-9]{0,17})$")


# The request models live here, not in account_models: only the API validates
# requests, and the stream publisher imports account_models without pydantic.


class AmountRequest(BaseModel):
    """The body of ``POST /accounts/{id}/credit`` and ``/withdraw``.

    Strict: ``10`` only, never ``10.0``, ``"10"`` or ``true``; no extra fields.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    amount: Annotated[int, Field(ge=1, le=MAX_AMOUNT)]


class OpenRequest(BaseModel):
    """The (optional) body of ``POST /accounts``: an empty JSON object."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def parse_amount_request(raw: bytes) -> AmountRequest:
    """Validate a credit or withdrawal body.

    Raises
    ------
    InvalidRequestError
        Empty body, malformed JSON, missing/extra fields, a non-integer amount or one
        outside ``1..MAX_AMOUNT``.
    """
    missing = f"request body is required: {{'amount': <integer minor units 1..{MAX_AMOUNT}>}}"
    return http_requests.parse_request(AmountRequest, raw, missing=missing)


def parse_open_request(raw: bytes) -> OpenRequest:
    """Validate a ``POST /accounts`` body: none, or ``{}``.

    Raises
    ------
    InvalidRequestError
        For anything else.
    """
    if http_requests.is_blank(raw):
        return OpenRequest()
    try:
        return parse_model(OpenRequest, raw)
    except ValidationError as exc:
        raise InvalidRequestError(http_requests.describe_validation_error(exc)) from None


def parse_account_id(value: str) -> str:
    """``value`` as a canonical lower-case UUID (InvalidRequestError if it is not one)."""
    return http_requests.parse_uuid(value, "account_id")


def parse_limit(value: str | None, settings: AccountSettings) -> int:
    """``limit`` query parameter of the history: 1..``max_history_page_size``.

    Raises
    ------
    InvalidRequestError
        If it is not an integer in range.
    """
    if value is None:
        return settings.history_page_size
    if not re.fullmatch(r"[0-9]{1,4}", value) or not (
        1 <= int(value) <= settings.max_history_page_size
    ):
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {settings.max_history_page_size}"
        )
    return int(value)


def encode_cursor(account_id: str, after_version: int) -> str:
    """An opaque cursor: ``account_id``'s history continues after ``after_version``."""
    text = f"v2:{account_id}:{after_version}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii")


def decode_cursor(value: str | None, account_id: str) -> int:
    """The version a page of ``account_id``'s history starts after (0 without a cursor).

    Raises
    ------
    InvalidRequestError
        If the cursor was not made by :func:`encode_cursor` for this account (another
        account's cursor would page this one's history from the wrong place, and past
        its end as if it had ended there).
    """
    if value is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(value.encode("ascii")).decode("ascii")
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidRequestError("cursor is not valid") from None
    match = _CURSOR_RE.fullmatch(text)
    # Exactly as issued: urlsafe_b64decode skips characters outside its alphabet, so
    # "d!j!E6MQ==" would otherwise read as "djE6MQ==".
    if match is None or encode_cursor(account_id, int(match.group(2))) != value:
        raise InvalidRequestError("cursor is not valid for this account")
    return int(match.group(2))


def account_id_for(caller: str, idempotency_key: str | None) -> str:
    """New account id: uuid5 over (caller, key) when a key is given, else uuid4."""
    return http_requests.resource_id_for(ACCOUNT_ID_NAMESPACE, caller, idempotency_key)


def idempotency_record_id(caller: str, account_id: str, idempotency_key: str) -> str:
    """Partition key of the idempotency record of a keyed command (scoped by caller)."""
    digest = hashlib.sha256(f"{caller}\n{account_id}\n{idempotency_key}".encode()).hexdigest()
    return f"{IDEMPOTENCY_PREFIX}{digest}"


def command_fingerprint(command: CommandType, amount: int) -> str:
    """What a keyed command asked for; a retry with the same key must match it."""
    return f"{command.value}:{amount}"
