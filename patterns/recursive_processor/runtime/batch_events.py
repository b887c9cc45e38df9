"""Recursive processor: parsing what an invocation receives.

The processor is invoked with an S3 ObjectCreated notification, S3's test event, or a
hop request it sent itself; the run API with a run id in its path. These functions
tell them apart and validate them, so the handlers stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from batch_models import (
    HOP_REQUEST_KIND,
    HopRequest,
    InvalidEventError,
    InvalidRunIdError,
    ObjectCreated,
)
from handler_kit.http_requests import UUID_RE
from pydantic import ValidationError

logger = Logger(child=True)


def is_s3_test_event(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is the ``s3:TestEvent`` S3 may send when a notification is set up."""
    return event.get("Service") == "Amazon S3" and event.get("Event") == "s3:TestEvent"


def is_hop_request(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is a self-invocation (else it should be an S3 notification)."""
    return event.get("kind") == HOP_REQUEST_KIND


def parse_hop_request(event: Mapping[str, Any]) -> HopRequest:
    """Validate a self-invocation payload.

    Parameters
    ----------
    event : Mapping
        The invocation's event, a hop request by ``is_hop_request``.

    Returns
    -------
    HopRequest
        The validated request.

    Raises
    ------
    InvalidEventError
        With the validation problems.
    """
    try:
        return HopRequest.model_validate(dict(event))
    except ValidationError as exc:
        raise InvalidEventError(f"invalid hop request: {exc.errors()}") from exc


def parse_s3_records(event: Mapping[str, Any]) -> tuple[list[ObjectCreated], list[str]]:
    """Every ObjectCreated record of an S3 notification event, and the invalid ones.

    Records of other event types are skipped (the notification only sends
    ObjectCreated; anything else is not this function's business).

    Parameters
    ----------
    event : Mapping
        An S3 notification event (``Records``).

    Returns
    -------
    tuple
        The parsed records and a description of each record that did not validate.

    Raises
    ------
    InvalidEventError
        The event has no ``Records`` list (nor is it a hop request).
    """
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise InvalidEventError("event has no Records and is not a hop request")
    # Imported on first use: the parser's models package builds its ~100 pydantic models
    # when imported (about 200 ms of CPU), and hop requests never need it.
    from aws_lambda_powertools.utilities.parser.models import S3RecordModel

    parsed: list[ObjectCreated] = []
    invalid: list[str] = []
    for index, raw in enumerate(records):
        try:
            record = S3RecordModel.model_validate(raw)
        except ValidationError as exc:
            invalid.append(f"record {index}: {exc.error_count()} validation errors")
            continue
        if not record.eventName.startswith("ObjectCreated:"):
            logger.info("skipping a non-ObjectCreated record", event_name=record.eventName)
            continue
        s3_object = record.s3.object
        if s3_object is None or s3_object.size is None or not s3_object.eTag:
            invalid.append(f"record {index}: ObjectCreated without size or eTag")
            continue
        parsed.append(
            ObjectCreated(
                bucket=record.s3.bucket.name,
                # Keys arrive URL-encoded, spaces as '+'.
                key=unquote_plus(s3_object.key),
                size=int(s3_object.size),
                etag=s3_object.eTag.strip('"'),
                sequencer=s3_object.sequencer or "",
            )
        )
    return parsed, invalid


def parse_run_id(raw: str) -> str:
    """The canonical form of a run id (a UUID).

    Parameters
    ----------
    raw : str
        The run id as the request spells it.

    Returns
    -------
    str
        The UUID in its canonical (lower-case, hyphenated) form.

    Raises
    ------
    InvalidRunIdError
        ``raw`` is not a UUID.
    """
    # The documented 8-4-4-4-12 ASCII hex digits only: uuid.UUID also takes "urn:uuid:",
    # braces, no hyphens and non-ASCII digits, other spellings of one id.
    if not isinstance(raw, str) or not UUID_RE.fullmatch(raw):
        raise InvalidRunIdError("run_id must be a UUID")
    return raw.lower()
