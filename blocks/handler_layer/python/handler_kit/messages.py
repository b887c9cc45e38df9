"""Message bodies (queue messages, stream records) validated as models.

A body that is not strict JSON or does not fit its model is poison: the consumer
raises one error of its own for both, whose text says which message and why.
"""

from __future__ import annotations

from pydantic import ValidationError

from handler_kit.http_requests import describe_validation_error
from handler_kit.strict_json import InvalidJsonError, ModelT, parse_model


def parse_message(model: type[ModelT], body: str, *, error: type[Exception], what: str) -> ModelT:
    """``body`` validated as ``model`` (strict JSON, see ``handler_kit.strict_json``).

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The message model.
    body : str
        The message body.
    error : type of Exception
        What to raise for a poison message.
    what : str
        The message's name in the error text (``invalid <what>: <reason>``).

    Raises
    ------
    Exception
        ``error`` if the body is not strict JSON or does not fit ``model``.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class Ping(BaseModel):
    ...     id: int
    >>> parse_message(Ping, '{"id": 1}', error=ValueError, what="ping")
    Ping(id=1)
    >>> parse_message(Ping, "{", error=ValueError, what="ping")
    Traceback (most recent call last):
    ...
    ValueError: invalid ping: ...
    """
    try:
        return parse_model(model, body)
    except InvalidJsonError as exc:
        raise error(f"invalid {what}: {exc}") from None
    except ValidationError as exc:
        raise error(f"invalid {what}: {describe_validation_error(exc)}") from None
