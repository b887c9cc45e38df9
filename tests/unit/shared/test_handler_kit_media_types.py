"""handler_kit: a request body is read only when it is declared as JSON (415 otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from handler_kit import contract, headers, responses
from pydantic import BaseModel

from tests.support.events import HttpResponse, api_event
from tests.support.fakes import FakeLambdaContext


@pytest.mark.parametrize(
    ("value", "essence", "parameters"),
    [
        ("application/json", "application/json", ()),
        ("Application/JSON", "application/json", ()),
        ("application/json;charset=UTF-8", "application/json", (("charset", "UTF-8"),)),
        ('application/json ; Charset="utf-8"', "application/json", (("charset", "utf-8"),)),
        ('text/plain; x="a;b\\"c"; y=1', "text/plain", (("x", 'a;b"c'), ("y", "1"))),
        ("application/json;", "application/json", ()),
    ],
)
def test_media_types_parse_as_rfc_9110_writes_them(
    value: str, essence: str, parameters: tuple[tuple[str, str], ...]
) -> None:
    # GIVEN a Content-Type value WHEN parsed THEN its type/subtype in lower case and its
    # parameters, names in lower case, quoted values unquoted
    assert headers.parse_media_type(value) == headers.MediaType(essence, parameters)


#: Values that fail to match near their end after long runs of ";" and white space: with
#: two adjacent optional white-space runs (before and after each ";") the regular
#: expression retried every split of every run, exponential in the length (71 bytes of
#: " ; " then "x" took a minute; these would take longer than the universe's age).
_BACKTRACKING_BAIT = [
    "application/json" + " ; " * 3000 + "x",
    "application/json" + ";\t\t" * 3000 + ",",
    "application/json" + " ; a=b " * 1500 + ';a="',
]
_LAYER = Path(headers.__file__).resolve().parents[1]


def test_a_long_value_that_is_no_media_type_is_refused_without_backtracking() -> None:
    # GIVEN header-sized values (9-11 KB) built to make a backtracking parser explode
    # WHEN a separate interpreter parses them (a regression hangs it, not this test run)
    probe = (
        "import sys, json; from handler_kit import headers; "
        "print([headers.parse_media_type(v) for v in json.loads(sys.stdin.read())])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(_BACKTRACKING_BAIT),
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(_LAYER)},
        timeout=30,  # linear parsing takes milliseconds; the old expression, forever
    )

    # THEN none is a media type
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None, None, None]"


@pytest.mark.parametrize(
    "value",
    ["", "json", "application/", "/json", "application/json, text/plain", "a/b; charset", "a b/c"],
)
def test_what_is_no_media_type_does_not_parse(value: str) -> None:
    assert headers.parse_media_type(value) is None


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["application/json"],
        ["APPLICATION/Json"],
        ["application/json; charset=utf-8"],
        ['application/json; charset="UTF-8"'],
        ['application/json; profile="https://example.com/x"'],
    ],
)
def test_json_in_any_spelling_or_no_content_type_is_json(lines: list[str]) -> None:
    assert headers.json_content_problem(lines) is None


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (["text/plain"], "not text/plain"),
        (["application/xml"], "not application/xml"),
        (["application/merge-patch+json"], "not application/merge-patch+json"),
        (["application/json; charset=latin-1"], "UTF-8 only"),
        (["application/json; charset=utf-16"], "UTF-8 only"),
        (["application/json; charset=utf-8; charset=latin-1"], "UTF-8 only"),
        (["json"], "not a media type"),
        ([""], "not a media type"),
        (["application/json, text/plain"], "not a media type"),
        (["application/json", "application/json"], "given once"),
        ([f"text/{'x' * 500}"], "\u2026"),
    ],
)
def test_anything_else_is_refused_with_the_reason(lines: list[str], reason: str) -> None:
    problem = headers.json_content_problem(lines)
    assert problem is not None and reason in problem
    assert len(problem) < 120  # a client's long media type is not repeated whole


def test_a_media_type_is_echoed_whole_up_to_the_limit_and_cut_after_it() -> None:
    # GIVEN media types of exactly the echo limit and of one character more
    limit = headers.MAX_ECHOED_MEDIA_TYPE
    at_limit = "text/" + "x" * (limit - len("text/"))
    over_limit = at_limit + "y"
    # WHEN refused THEN the first is named whole, the second cut to the limit with an
    # ellipsis in place of its last character kept
    assert headers.json_content_problem([at_limit]) == (
        f"the body must be sent as application/json, not {at_limit}"
    )
    assert headers.json_content_problem([over_limit]) == (
        f"the body must be sent as application/json, not {at_limit[:-1]}\u2026"
    )


@pytest.mark.parametrize("coding", ["gzip", "deflate", "identity"])
def test_a_body_api_gateway_decompressed_is_json_whatever_its_content_encoding_says(
    coding: str,
) -> None:
    # GIVEN a JSON body as API Gateway hands it on after decompressing it (by default, for
    # gzip and deflate), its Content-Encoding header still as the client sent it
    # (dougmoscrop/serverless-http#194); a body not in its coding never gets here (415)
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    event = api_event(
        "POST",
        "/things",
        resource="/things",
        body='{"name": "x"}',
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    )

    # WHEN its media type is checked THEN it is JSON: the header is not a reason to refuse
    # it, nor to decode it again
    headers.require_json_content(APIGatewayProxyEvent(event))


class _Thing(BaseModel):
    name: str = ""


def _things_api() -> Any:
    app = APIGatewayRestResolver()
    api = contract.ContractRoutes(app)
    responses.register_error_handlers(app, logger=Logger(service="test"))
    ran: list[str] = []

    @api.post("/things", body=_Thing, body_required=False, responses={200: contract.ok("x")})
    def create_thing() -> Response[str]:
        ran.append("create_thing")
        return responses.json_response(200, {"created": True})

    @api.get("/things", responses={200: contract.ok("x")})
    def list_things() -> Response[str]:
        ran.append("list_things")
        return responses.json_response(200, {"things": []})

    handler = responses.rest_api_handler(app, logger=Logger(service="test"))

    def call(method: str, body: str | None, content_type: str | None) -> HttpResponse:
        event = api_event(
            method, "/things", resource="/things", body=body, headers={"Content-Type": content_type}
        )
        return HttpResponse.from_proxy(handler(event, FakeLambdaContext()))

    return api, call, ran


def test_a_route_that_takes_a_body_refuses_another_media_type_before_its_code_runs() -> None:
    # GIVEN a route that takes a JSON body and one that takes none
    api, call, ran = _things_api()

    # WHEN a JSON body is posted as text/plain
    refused = call("POST", '{"name": "x"}', "text/plain")

    # THEN 415 unsupported_media_type naming the type, and the route's code did not run
    assert refused.status == 415
    assert refused.body == {
        "error": "unsupported_media_type",
        "message": "the body must be sent as application/json, not text/plain",
    }
    assert ran == []
    # AND the route declares the 415, the route without a body does not
    post, get = api.operations
    assert post.responses[415].error_codes == ("unsupported_media_type",)
    assert 415 not in get.responses

    # WHEN JSON is declared (or nothing is), there is no body, or the route takes none
    assert call("POST", '{"name": "x"}', "application/json; charset=UTF-8").status == 200
    assert call("POST", '{"name": "x"}', None).status == 200
    assert call("POST", None, "text/plain").status == 200
    assert call("GET", None, "text/plain").status == 200
    # THEN each is served
    assert ran == ["create_thing", "create_thing", "create_thing", "list_things"]


def test_an_undeclared_query_parameter_is_400_before_the_media_type_is_checked() -> None:
    # GIVEN a route that takes a JSON body and declares no query parameter
    ran: list[str] = []
    app = APIGatewayRestResolver()
    api = contract.ContractRoutes(app)
    responses.register_error_handlers(app, logger=Logger(service="test"))

    @api.post("/things", body=_Thing, responses={200: contract.ok("x")})
    def create_thing() -> Response[str]:
        ran.append("create_thing")
        return responses.json_response(200, {"created": True})

    # WHEN a body declared as text/plain comes with a parameter the route does not read
    event = api_event(
        "POST",
        "/things",
        resource="/things",
        body='{"name": "x"}',
        headers={"Content-Type": "text/plain"},
        query={"amount": "999"},
    )
    refused = HttpResponse.from_proxy(app.resolve(event, FakeLambdaContext()))

    # THEN the request's target is refused first (400 naming the parameter), as for a
    # route without a body; the media type is the second check; the route did not run
    assert refused.status == 400
    assert refused.body["error"] == "invalid_request"
    assert "unknown query parameter" in refused.body["message"]
    assert ran == []
