"""Reading API Gateway REST (v1 proxy) requests: body, headers, caller, idempotency key."""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from handler_kit.errors import (
    AmbiguousIdempotencyKeyError,
    InvalidRequestError,
    PayloadTooLargeError,
)

# Re-exported: the fingerprint of a keyed request lives with its normalization rules.
from handler_kit.fingerprints import request_fingerprint as request_fingerprint
from handler_kit.headers import header_values
from handler_kit.strict_json import parse_model

if TYPE_CHECKING:  # only annotations: importing data_classes loads every event class
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    # Only annotations too: a function whose events carry no model (the fan-out reducer)
    # does not import pydantic at all; the others import it with their models.
    from pydantic import BaseModel, ValidationError

#: An Idempotency-Key: 1..128 printable ASCII characters (it goes into logs and uuid5 names)
#: but the comma, which separates keys folded into one line (see :func:`idempotency_key`),
#: and with no space first or last: HTTP strips those from a field value (RFC 9110, 5.5),
#: so a key that has them can only come from a direct invocation and would name another
#: resource than the same key sent through API Gateway.
IDEMPOTENCY_KEY_RE = re.compile(
    r"^[\x21-\x2b\x2d-\x7e](?:[\x20-\x2b\x2d-\x7e]{0,126}[\x21-\x2b\x2d-\x7e])?$"
)


def decode_body(body: str | None, *, is_base64_encoded: bool, max_bytes: int) -> bytes:
    """Return the raw request body bytes, enforcing a size limit.

    Parameters
    ----------
    body : str or None
        ``event["body"]``.
    is_base64_encoded : bool
        ``event["isBase64Encoded"]``.
    max_bytes : int
        Largest accepted body, measured on the raw (base64-decoded) bytes.

    Raises
    ------
    PayloadTooLargeError
        If the raw body is larger than ``max_bytes``.
    InvalidRequestError
        If a base64 body does not decode.

    Examples
    --------
    >>> decode_body("eyJhIjoxfQ==", is_base64_encoded=True, max_bytes=64)
    b'{"a":1}'
    """
    if not body:
        return b""
    if is_base64_encoded:
        # Any base64 text longer than this decodes to more than max_bytes:
        # reject it before spending memory on decoding.
        if len(body) > 4 * math.ceil(max_bytes / 3):
            raise PayloadTooLargeError(f"request body exceeds {max_bytes} bytes")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("request body is not valid base64") from None
    else:
        # surrogatepass: a stray surrogate becomes invalid JSON (400), not a 500.
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"request body exceeds {max_bytes} bytes")
    return raw


def event_body(event: APIGatewayProxyEvent, *, max_bytes: int) -> bytes:
    """The raw body bytes of a REST proxy event; raises as :func:`decode_body` does.

    Examples
    --------
    >>> from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    >>> event_body(APIGatewayProxyEvent({"body": '{"a":1}'}), max_bytes=64)
    b'{"a":1}'
    """
    return decode_body(
        event.body, is_base64_encoded=bool(event.is_base64_encoded), max_bytes=max_bytes
    )


_ModelT = TypeVar("_ModelT", bound="BaseModel")


@dataclass(frozen=True)
class PostBody(Generic[_ModelT]):
    """The JSON body a route takes: the model it is validated as, the largest raw body read.

    Written once per route, so the limit its contract declares (``max_body_bytes``)
    and the limit its handler reads the body with cannot drift apart.

    Examples
    --------
    >>> from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    >>> from pydantic import BaseModel
    >>> body = PostBody(BaseModel, max_bytes=64)
    >>> sorted(body.declared())
    ['body', 'max_body_bytes']
    >>> body.read(APIGatewayProxyEvent({"body": '{"a":1}'}))
    b'{"a":1}'
    """

    model: type[_ModelT]
    max_bytes: int

    def declared(self) -> dict[str, Any]:
        """The keyword arguments of a contract route that declare this body."""
        return {"body": self.model, "max_body_bytes": self.max_bytes}

    def read(self, event: APIGatewayProxyEvent) -> bytes:
        """The raw body of ``event``, at most ``max_bytes`` (see :func:`event_body`)."""
        return event_body(event, max_bytes=self.max_bytes)


#: What JSON counts as whitespace (RFC 8259): ``bytes.strip()`` also strips \x0b and \x0c,
#: which are no JSON and must not read as an empty body.
JSON_WHITESPACE = b" \t\r\n"


def is_blank(raw: bytes) -> bool:
    """Whether a body is empty or JSON whitespace only (no document at all).

    Examples
    --------
    >>> is_blank(b"  "), is_blank(bytes([11]))  # a vertical tab is no JSON whitespace
    (True, False)
    """
    return not raw.strip(JSON_WHITESPACE)


def parse_request(model: type[_ModelT], raw: bytes, *, missing: str) -> _ModelT:
    """A request body validated as ``model`` (strict JSON, see ``handler_kit.strict_json``).

    Raises
    ------
    InvalidRequestError
        ``missing`` for an empty body; malformed JSON or a body ``model`` rejects.
    """
    # Not an import on the request path: ``model`` is a pydantic model, so its module
    # imported pydantic when the function loaded; this only looks it up in sys.modules.
    from pydantic import ValidationError

    if is_blank(raw):
        raise InvalidRequestError(missing)
    try:
        return parse_model(model, raw)
    except ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc)) from None


_HEX = "[0-9a-fA-F]"
#: A UUID in its 8-4-4-4-12 hex digit form, either case.
UUID_RE = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")


def parse_uuid(value: str, name: str) -> str:
    """``value`` as a canonical lower-case UUID string.

    Raises
    ------
    InvalidRequestError
        ``<name> must be a UUID`` if it does not look like one (8-4-4-4-12 hex digits).
    """
    if not UUID_RE.fullmatch(value):
        raise InvalidRequestError(f"{name} must be a UUID")
    return value.lower()


#: The longest field path a 400 message repeats (longer ones end in an ellipsis).
MAX_ECHOED_LOCATION = 64


def describe_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """Turn a pydantic error into one human-readable line naming the fields.

    The offending values are not echoed back (they may be large or sensitive), and a
    field's path is cut to :data:`MAX_ECHOED_LOCATION` characters: an unknown field's
    name is the client's own text, of any length.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error of ``model_validate``/``model_validate_json``.
    limit : int, optional
        How many errors are described; the rest are counted.
    """
    parts: list[str] = []
    for error in exc.errors(include_url=False)[:limit]:
        if error["type"] == "json_invalid":
            parts.append(f"body is not valid JSON ({error['msg']})")
            continue
        if not error["loc"] and error["type"] == "value_error":
            # A rule of the model as a whole (its own words, e.g. "give exactly one of
            # ..."): the body is an object, no one field is at fault.
            parts.append(str(error["ctx"]["error"]) if "ctx" in error else error["msg"])
            continue
        if not error["loc"]:
            # The document itself (not an object): no field to name.
            parts.append(f"body must be a JSON object ({error['msg']})")
            continue
        # A member named "" is a field too: it is named as such, not taken for the body.
        location = ".".join(str(part) or '""' for part in error["loc"])
        if len(location) > MAX_ECHOED_LOCATION:
            location = location[: MAX_ECHOED_LOCATION - 1] + "\u2026"
        parts.append(f"{location}: {error['msg']}")
    extra = exc.error_count() - limit
    if extra > 0:
        parts.append(f"and {extra} more error(s)")
    return "; ".join(parts)


def validate_idempotency_key(value: str) -> str:
    """Check an ``Idempotency-Key`` header value: 1..128 printable ASCII characters, no comma,
    no space first or last.

    Raises
    ------
    InvalidRequestError
        If the key is empty, too long or has other characters.
    """
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidRequestError(
            "Idempotency-Key must be 1 to 128 printable ASCII characters other than a comma, "
            "with no space first or last"
        )
    return value


def single_query_parameter(event: APIGatewayProxyEvent, name: str) -> str | None:
    """The one value of a query string parameter (its name as sent); None when absent.

    As ``headers`` does for a header, ``queryStringParameters`` holds only the last
    value of a repeated parameter: ``?limit=1&limit=500`` must not silently be
    ``limit=500``. The same value repeated is accepted as that value.

    Raises
    ------
    InvalidRequestError
        If the parameter arrives with different values, naming it.

    Examples
    --------
    >>> from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    >>> event = APIGatewayProxyEvent({"multiValueQueryStringParameters": {"limit": ["5", "5"]}})
    >>> single_query_parameter(event, "limit")
    '5'
    """
    values = set((event.raw_event.get("multiValueQueryStringParameters") or {}).get(name) or [])
    single = (event.raw_event.get("queryStringParameters") or {}).get(name)
    if single is not None:
        values.add(single)
    if len(values) > 1:
        raise InvalidRequestError(
            f"{name} must be given once: it was sent more than once with different values"
        )
    return next(iter(values), None)


def query_parameter_names(event: APIGatewayProxyEvent) -> set[str]:
    """The names of the query string parameters in either of the event's maps."""
    raw = event.raw_event
    return set(raw.get("queryStringParameters") or {}) | set(
        raw.get("multiValueQueryStringParameters") or {}
    )


def idempotency_key(event: APIGatewayProxyEvent) -> str | None:
    """The request's ``Idempotency-Key`` header, validated; None when absent.

    One key on one line. The field's draft standard lets a client send no more than one
    (draft-ietf-httpapi-idempotency-key-header, section 2: "Clients MUST NOT include
    more than one"), and an intermediary may fold repeated lines into one,
    comma-separated (RFC 9110, section 5.3): ``k, k`` cannot be told from two keys, so no
    key has a comma. Either way the key the client meant is a guess, the same key twice
    as much as two different ones (its second line may come from somewhere else), and a
    guess would replay or create for a request the client may not have sent: refused.

    Raises
    ------
    AmbiguousIdempotencyKeyError
        The header arrived on more than one line, or its value holds a comma.
    InvalidRequestError
        The key is not 1..128 printable ASCII characters.
    """
    values = header_values(event, "Idempotency-Key")
    if not values:
        return None
    if len(values) > 1:
        raise AmbiguousIdempotencyKeyError(
            f"Idempotency-Key must be sent once: it arrived on {len(values)} header lines"
        )
    if "," in values[0]:
        raise AmbiguousIdempotencyKeyError(
            "Idempotency-Key must be one key: a comma separates keys folded into one line"
        )
    return validate_idempotency_key(values[0])


def request_context(event: APIGatewayProxyEvent) -> dict[str, Any]:
    """``requestContext`` of the event (empty if missing)."""
    return event.raw_event.get("requestContext") or {}


def item_location(event: APIGatewayProxyEvent, collection: str, item_id: str) -> str:
    """The path of ``<collection>/<item_id>`` as this request's client addresses the API.

    ``requestContext.path`` starts with the stage (``/api``) or a custom domain's base
    path, which the location keeps; the id is written as given (its canonical form), not
    as the client spelled it in the request path.

    Examples
    --------
    >>> from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    >>> event = APIGatewayProxyEvent({"path": "/schedules/AB-1",
    ...                               "requestContext": {"path": "/api/schedules/AB-1"}})
    >>> item_location(event, "/schedules", "ab-1")
    '/api/schedules/ab-1'
    """
    path = str(request_context(event).get("path") or event.path or "")
    # The last occurrence: a base path may itself be named like the collection.
    at = path.rfind(collection)
    return f"{path[:at] if at >= 0 else ''}{collection}/{item_id}"


#: An assumed-role session's ARN: ``arn:<partition>:sts::<account>:assumed-role/<role>/<session>``.
_ROLE_SESSION = re.compile(r"(arn:[^:]+:sts::\d{12}:assumed-role/[^/]+)/.+")


def caller(event: APIGatewayProxyEvent) -> str:
    """Who signed the request (IAM auth): the signer's ARN, its role for a role session;
    else the caller id, else ``anonymous``.

    The caller scopes Idempotency-Keys and is the tenant of queued work. A role
    session counts as its role: the session name is the client's to choose, and
    botocore's assume-role provider picks a new one per process
    (``botocore-session-<time>``), so a retry from a restarted client would otherwise
    get a second resource instead of the first answer, and one client could split a
    backlog over as many sessions as it likes.

    Examples
    --------
    >>> from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    >>> def signed_by(arn):
    ...     return APIGatewayProxyEvent({"requestContext": {"identity": {"userArn": arn}}})
    >>> caller(signed_by("arn:aws:sts::123456789012:assumed-role/Submitter/run-7"))
    'arn:aws:sts::123456789012:assumed-role/Submitter'
    >>> caller(signed_by("arn:aws:iam::123456789012:user/alice"))
    'arn:aws:iam::123456789012:user/alice'
    """
    identity = request_context(event).get("identity") or {}
    signer = identity.get("userArn") or identity.get("caller") or "anonymous"
    session = _ROLE_SESSION.fullmatch(signer)
    return session.group(1) if session else signer


def resource_id_for(namespace: uuid.UUID, caller: str, idempotency_key: str | None) -> str:
    """Id of a new resource: uuid5 over (caller, key) when a key is given, else uuid4.

    A retry with the same key finds the same id, so a conditional put of the new item
    fails and the first outcome can be answered. Scoping by caller keeps two callers
    using the same key apart.

    Examples
    --------
    >>> ns = uuid.UUID("00000000-0000-0000-0000-000000000001")
    >>> resource_id_for(ns, "alice", "k1") == resource_id_for(ns, "alice", "k1")
    True
    >>> resource_id_for(ns, "alice", "k1") == resource_id_for(ns, "bob", "k1")
    False
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    # The key is printable ASCII, so the newline cannot be forged from inside it.
    return str(uuid.uuid5(namespace, f"{caller}\n{idempotency_key}"))
