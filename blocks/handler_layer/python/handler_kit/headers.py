"""Reading a REST proxy event's headers: every line of one, and the media type of the body.

API Gateway (REST API, Lambda proxy integration) hands a header sent on several lines
over with every value, in order, in ``multiValueHeaders`` and only the last one in
``headers``; it does not split a value at its commas, so a line an intermediary folded
from repeated lines (RFC 9110, section 5.3) arrives as one value ``a, b``. See "Input
format of a Lambda function for proxy integration" in
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from handler_kit.errors import UnsupportedMediaTypeError

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


#: The media type every API reads a request body as.
JSON_MEDIA_TYPE = "application/json"
#: The longest part of a client's Content-Type an error message repeats.
MAX_ECHOED_MEDIA_TYPE = 64

# RFC 9110, sections 5.6.2 (token), 5.6.4 (quoted-string) and 8.3.1 (media-type).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# Each run of whitespace has exactly one place in the match (after the subtype, after a
# ";", or after a parameter's value): with two adjacent optional runs (OWS before and
# after ";") a value that fails to match is retried in every split of every run, which
# takes exponential time ("application/json ; ; ; ... ; x": seconds at 60 bytes).
_PARAMETER = rf";[ \t]*(?:(?P<name>{_TOKEN})=(?P<value>{_TOKEN}|{_QUOTED})[ \t]*)?"
_PARAMETER_RE = re.compile(_PARAMETER)
_MEDIA_TYPE_RE = re.compile(
    rf"[ \t]*(?P<type>{_TOKEN})/(?P<subtype>{_TOKEN})[ \t]*(?P<parameters>(?:{_PARAMETER})*)"
)
_QUOTED_PAIR = re.compile(r"\\(.)")


# A NamedTuple, not a dataclass: this module is imported on every cold start of an API.
class MediaType(NamedTuple):
    """A parsed ``Content-Type``: ``type/subtype`` and parameters, compared as meant.

    Attributes
    ----------
    essence : str
        ``type/subtype`` in lower case (both are case-insensitive).
    parameters : tuple of (str, str)
        ``(name, value)`` in order, names in lower case, quoted values unquoted (a
        value's case is the parameter's business: ``charset`` ignores it).
    """

    essence: str
    parameters: tuple[tuple[str, str], ...]


def parse_media_type(value: str) -> MediaType | None:
    """``value`` as a media type (RFC 9110, section 8.3.1); None if it is not one.

    Examples
    --------
    >>> parse_media_type('Application/JSON; Charset="UTF-8"')
    MediaType(essence='application/json', parameters=(('charset', 'UTF-8'),))
    >>> parse_media_type("application/json, text/plain") is None  # a folded list
    True
    """
    match = _MEDIA_TYPE_RE.fullmatch(value)
    if match is None:
        return None
    parameters = tuple(
        (found["name"].lower(), _unquote(found["value"]))
        for found in _PARAMETER_RE.finditer(match["parameters"])
        if found["name"]
    )
    return MediaType(f"{match['type']}/{match['subtype']}".lower(), parameters)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return value


def json_content_problem(content_types: list[str]) -> str | None:
    """Why a body sent with these ``Content-Type`` lines is not JSON as the APIs read it;
    None when it is.

    JSON is ``application/json``, type and subtype in any case (RFC 9110, section 8.3.1),
    with any parameters: it defines none (RFC 8259, section 11), so others are ignored,
    but a ``charset`` other than UTF-8 says the bytes are not what the API reads them as
    (RFC 8259, section 8.1: JSON between systems is UTF-8) and is refused rather than
    misread. Another media type (``text/plain``, ``application/xml``, even
    ``application/merge-patch+json``, which means something else), a value that is no
    media type, or the field on two lines is refused too.

    No ``Content-Type`` at all reads as JSON: API Gateway has validated the body against
    the route's JSON model whatever its type (the stacks declare the model for
    ``$default``, "the same model regardless of the content type",
    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html),
    a recipient may examine content whose type is not given (RFC 9110, section 8.3),
    and the body must then be strict JSON of the route's model anyway. Common SigV4
    clients (``requests`` with ``data=``, botocore's ``AWSRequest``) send none.

    Examples
    --------
    >>> json_content_problem([]) is None, json_content_problem(["application/json"]) is None
    (True, True)
    >>> json_content_problem(["text/plain"])
    'the body must be sent as application/json, not text/plain'
    """
    if not content_types:
        return None
    if len(content_types) > 1:
        return "Content-Type must be given once"
    media_type = parse_media_type(content_types[0])
    if media_type is None:
        return "Content-Type is not a media type: send application/json"
    if media_type.essence != JSON_MEDIA_TYPE:
        essence = media_type.essence
        if len(essence) > MAX_ECHOED_MEDIA_TYPE:
            essence = essence[: MAX_ECHOED_MEDIA_TYPE - 1] + "\u2026"
        return f"the body must be sent as {JSON_MEDIA_TYPE}, not {essence}"
    if any(name == "charset" and value.lower() != "utf-8" for name, value in media_type.parameters):
        return "a JSON body is read as UTF-8 only: send charset=utf-8 or no charset"
    return None


def require_json_content(event: APIGatewayProxyEvent) -> None:
    """Refuse a request whose body is not declared as JSON (:func:`json_content_problem`).

    A request without a body is not checked: there is no content to have a media type.

    Raises
    ------
    UnsupportedMediaTypeError
        The body is declared as another media type, another charset, or ambiguously.
    """
    if not event.body:
        return
    problem = json_content_problem(header_values(event, "Content-Type"))
    if problem is not None:
        raise UnsupportedMediaTypeError(problem)
