"""Client errors every REST API answers the same way (see :mod:`handler_kit.responses`)."""

from __future__ import annotations


class InvalidRequestError(ValueError):
    """The client sent something this API does not accept (HTTP 400 ``invalid_request``)."""


class AmbiguousIdempotencyKeyError(InvalidRequestError):
    """More than one ``Idempotency-Key`` arrived: repeated header lines, or one line holding
    a comma-separated list (HTTP 400 ``ambiguous_idempotency_key``)."""


class PayloadTooLargeError(ValueError):
    """The request body is larger than allowed (HTTP 400 ``payload_too_large``)."""


class UnsupportedMediaTypeError(ValueError):
    """The request body is declared as something else than JSON in UTF-8
    (HTTP 415 ``unsupported_media_type``)."""


class IdempotencyKeyReusedError(ValueError):
    """The Idempotency-Key was already used for a different request (HTTP 422)."""
