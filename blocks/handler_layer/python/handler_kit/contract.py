"""An API's contract, declared where its routes are: bodies, parameters, answers.

A handler module routes through :class:`ContractRoutes` instead of the resolver's own
decorators; each route is registered with the resolver as before and its declaration
(request body model, path and query parameters, ``Idempotency-Key``, the statuses, the
error codes and the success bodies it answers) is kept in
:attr:`ContractRoutes.operations`. Nothing here runs per request and nothing is
imported for it: the OpenAPI document is generated offline from these declarations,
the pydantic request models and each success body's ``TypedDict``
(``blocks/openapi_docs.py``). That ``TypedDict`` is also the return type of the function
that builds the body, so mypy checks that the handler builds the documented shape.

Examples
--------
>>> from aws_lambda_powertools.event_handler import APIGatewayRestResolver
>>> api = ContractRoutes(APIGatewayRestResolver())
>>> @api.get("/things/<thing_id>", path={"thing_id": UUID_PARAMETER},
...          responses={200: ok("the thing"), 404: errors("not_found")})
... def get_thing(thing_id: str) -> dict[str, str]:
...     return {"thing_id": thing_id}
>>> [(o.method, o.rule) for o in api.operations]
[('GET', '/things/<thing_id>')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel

from handler_kit.errors import InvalidRequestError
from handler_kit.headers import require_json_content
from handler_kit.http_requests import IDEMPOTENCY_KEY_RE, UUID_RE, query_parameter_names

_F = TypeVar("_F", bound=Callable[..., Any])

#: A path parameter the handler parses as a UUID (400 ``invalid_request`` otherwise).
UUID_PARAMETER: Mapping[str, Any] = {"type": "string", "pattern": UUID_RE.pattern}
#: The ``Idempotency-Key`` header's schema (``http_requests.validate_idempotency_key``).
IDEMPOTENCY_KEY_SCHEMA: Mapping[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": IDEMPOTENCY_KEY_RE.pattern,
}


# NamedTuples, not dataclasses: a frozen dataclass costs ~1 ms per class at import, and
# this module is imported on every cold start of an API function.
class Answer(NamedTuple):
    """One status an operation answers.

    Attributes
    ----------
    description : str
        What it means (may be empty for an error answer).
    error_codes : tuple of str
        For an error answer (``{"error", "message"}``): the ``error`` values it carries.
        Empty for a success answer (a JSON object).
    headers : tuple of str
        Headers the answer carries (``Location``, ``Retry-After``, ...).
    body : type or None
        For a success answer: the ``TypedDict`` of its body (None: any JSON object).
    """

    description: str
    error_codes: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    body: type[Any] | None = None


def ok(description: str, *, headers: tuple[str, ...] = (), body: type[Any] | None = None) -> Answer:
    """A success answer: a JSON object, of the ``TypedDict`` ``body`` when given.

    Only the class is kept: its JSON schema is made offline, never at import.
    """
    return Answer(description, headers=headers, body=body)


def errors(*codes: str, headers: tuple[str, ...] = (), description: str = "") -> Answer:
    """An error answer ``{"error": <one of codes>, "message": <text>}``.

    Without a description, the document says the status's name and the codes.
    """
    return Answer(description, error_codes=codes, headers=headers)


def unavailable() -> Answer:
    """503 ``service_unavailable`` with ``Retry-After``: what every route answers when an
    AWS call failed after the SDK's retries (``error_answers.dependency_failures``), and what
    some answer for a failure of their own (a message that could not be queued)."""
    return errors("service_unavailable", headers=("Retry-After",))


def lookup(description: str, *, body: type[Any] | None = None) -> dict[int, Answer]:
    """The answers of a read by id: 200 ``description`` (of ``body``), 400 for a malformed
    id, 404 when there is none. Extend it for a route that answers more
    (``{**lookup(...), 503: unavailable()}``).
    """
    return {
        200: ok(description, body=body),
        400: errors("invalid_request"),
        404: errors("not_found"),
    }


def accepted_submission(description: str, *, body: type[Any] | None = None) -> dict[int, Answer]:
    """The answers of a keyed ``POST`` that accepts work for later (202 of ``body`` with
    Location and Retry-After; the first answer replayed for the same Idempotency-Key)."""
    return {
        202: ok(description, headers=("Location", "Retry-After"), body=body),
        400: errors("invalid_request", "payload_too_large"),
        422: errors("idempotency_key_reused"),
        503: unavailable(),
    }


def with_error(responses: Mapping[int, Answer], status: int, code: str) -> dict[int, Answer]:
    """``responses`` with ``code`` among the error codes of ``status`` (added if missing).

    Examples
    --------
    >>> with_error({400: errors("invalid_request")}, 400, "payload_too_large")[400].error_codes
    ('invalid_request', 'payload_too_large')
    """
    merged = dict(responses)
    answer = merged.get(status)
    if answer is None:
        merged[status] = errors(code)
    elif code not in answer.error_codes:
        merged[status] = answer._replace(error_codes=(*answer.error_codes, code))
    return merged


class Operation(NamedTuple):
    """One route's contract (see :meth:`ContractRoutes.route`)."""

    method: str
    rule: str
    handler: Callable[..., Any]
    summary: str
    responses: Mapping[int, Answer]
    body: type[BaseModel] | None
    body_required: bool
    max_body_bytes: int | None
    idempotency_key: bool
    path: Mapping[str, Mapping[str, Any]]
    query: Mapping[str, Mapping[str, Any]]


class ContractRoutes:
    """Registers routes with ``app`` and keeps each one's :class:`Operation`."""

    def __init__(self, app: APIGatewayRestResolver) -> None:
        self.app = app
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        rule: str,
        *,
        responses: Mapping[int, Answer],
        summary: str = "",
        body: type[BaseModel] | None = None,
        body_required: bool = True,
        max_body_bytes: int | None = None,
        idempotency_key: bool = False,
        path: Mapping[str, Mapping[str, Any]] | None = None,
        query: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Callable[[_F], _F]:
        """Route ``method rule`` (Powertools syntax, ``/jobs/<job_id>``) and declare it.

        Parameters
        ----------
        responses : Mapping[int, Answer]
            Every status the handler answers on this route (API Gateway's own answers,
            403, 429 and 5xx, are added to the document by the generator).
        summary : str, optional
            One line; the handler's docstring's first line when empty.
        body : type[BaseModel], optional
            The pydantic model the handler validates the body with. A body that is not
            declared as JSON (``headers.require_json_content``) is refused with 415
            ``unsupported_media_type`` before the handler runs (so before any lookup of
            its Idempotency-Key, as every other check of the request's form), and the
            415 is added to the route's answers.
        body_required : bool, optional
            False when an empty body is accepted too.
        max_body_bytes : int, optional
            The largest raw body the handler reads (the limit it passes to
            ``http_requests.event_body``); a larger one is refused with a 400.
        idempotency_key : bool, optional
            The route reads an optional ``Idempotency-Key`` header
            (``http_requests.idempotency_key``): 400 ``ambiguous_idempotency_key`` is
            added to its answers.
        path, query : Mapping[str, Mapping[str, Any]], optional
            JSON schema of each path and query parameter.
        """

        if idempotency_key:
            responses = with_error(responses, 400, "ambiguous_idempotency_key")
        middlewares = [self._declared_query_only(set(query or {}))]
        if body is not None:
            responses = with_error(responses, 415, "unsupported_media_type")
            middlewares.append(self._json_content_only)

        def register(handler: _F) -> _F:
            self.operations.append(
                Operation(
                    method=method,
                    rule=rule,
                    handler=handler,
                    summary=summary,
                    responses=dict(responses),
                    body=body,
                    body_required=body_required,
                    max_body_bytes=max_body_bytes,
                    idempotency_key=idempotency_key,
                    path=dict(path or {}),
                    query=dict(query or {}),
                )
            )
            self.app.route(rule, method, middlewares=middlewares)(handler)
            return handler

        return register

    @staticmethod
    def _declared_query_only(declared: set[str]) -> Callable[..., Any]:
        """A route middleware refusing (400) a query parameter the route does not declare:
        a client that sends ``?amount=999`` to a route that reads its body is told so,
        not answered as if it had not sent it."""

        def middleware(app: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Any:
            unknown = query_parameter_names(app.current_event) - declared
            if unknown:
                raise InvalidRequestError(f"unknown query parameter(s): {sorted(unknown)}")
            return next_middleware(app)

        return middleware

    @staticmethod
    def _json_content_only(app: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Any:
        """A route middleware refusing (415) a body not declared as JSON: a client that
        posts JSON as ``text/plain`` is told so, not read as if it had said JSON."""
        require_json_content(app.current_event)
        return next_middleware(app)

    def get(self, rule: str, **declaration: Any) -> Callable[[_F], _F]:
        """:meth:`route` with GET."""
        return self.route("GET", rule, **declaration)

    def post(self, rule: str, **declaration: Any) -> Callable[[_F], _F]:
        """:meth:`route` with POST."""
        return self.route("POST", rule, **declaration)

    def delete(self, rule: str, **declaration: Any) -> Callable[[_F], _F]:
        """:meth:`route` with DELETE."""
        return self.route("DELETE", rule, **declaration)
