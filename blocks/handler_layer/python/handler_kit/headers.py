"""Reading a REST proxy event's headers: every line of one.

API Gateway (REST API, Lambda proxy integration) hands a header sent on several lines
over with every value, in order, in ``multiValueHeaders`` and only the last one in
``headers``; it does not split a value at its commas, so a line an intermediary folded
from repeated lines (RFC 9110, section 5.3) arrives as one value ``a, b``. See "Input
format of a Lambda function for proxy integration" in
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: importing data_classes loads every event class
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent


def header_values(event: APIGatewayProxyEvent, name: str) -> list[str]:
    """Every value a header arrived with, one per field line, names matched case-insensitively.

    ``multiValueHeaders`` holds every line; a value of ``headers`` that is not among them
    (an event invoked directly whose maps disagree) counts as one more line, and an
    event with ``headers`` alone gives its values.

    Examples
    --------
    >>> from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    >>> header_values(APIGatewayProxyEvent({
    ...     "headers": {"X-Key": "b"}, "multiValueHeaders": {"x-key": ["a", "b"]}}), "X-Key")
    ['a', 'b']
    >>> header_values(APIGatewayProxyEvent({"headers": {"X-Key": "a, b"}}), "x-key")
    ['a, b']
    """
    wanted = name.lower()
    raw = event.raw_event
    values = [
        value
        for key, items in (raw.get("multiValueHeaders") or {}).items()
        if key.lower() == wanted
        for value in items or []
        if value is not None
    ]
    singles = [
        value
        for key, value in (raw.get("headers") or {}).items()
        if key.lower() == wanted and value is not None
    ]
    return values + [value for value in singles if value not in values]
