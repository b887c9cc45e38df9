"""Generate each pattern's OpenAPI document from its API handler: ``make api-docs``.

A pattern with an API has one handler module ``patterns/<name>/runtime/*_api.py`` that
routes through ``handler_kit.contract.ContractRoutes``. Its declarations (routes, path
and query parameters, ``Idempotency-Key``, statuses and error codes), its pydantic
request models (``model_json_schema()``) and the ``TypedDict`` of each success body
(``pydantic.TypeAdapter(...).json_schema()``) give ``patterns/<name>/openapi.json``, an
OpenAPI 3.1 document; API Gateway's own answers (403 and 429 ``client_error``, 413 on
a body over its limit, 414 on a path over its method ARN limit, 5xx ``server_error``,
see ``blocks/api.py``) are added to every operation they can answer. The stack builds
its API Gateway request models from that checked-in file (``blocks/openapi.py``), so
the document, the gateway and the handler cannot drift:
``tests/unit/test_api_contracts.py`` fails when a document differs from what the code
generates or is not valid OpenAPI.

Each handler module is imported in its own interpreter (runtimes of copied patterns
share module names) with placeholder settings; nothing is called.

Usage::

    python -m blocks.openapi_docs            # (re)write every patterns/*/openapi.json
    python -m blocks.openapi_docs --check    # exit 1 and name the documents out of date
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATTERNS_DIR = ROOT / "patterns"
LAYER_DIR = ROOT / "blocks" / "handler_layer" / "python"
DOCUMENT_NAME = "openapi.json"
OPENAPI_VERSION = "3.1.0"
#: Where the error shape, request bodies and success bodies live in a document.
COMPONENTS = "#/components/schemas/"
#: The REST API stage every pattern deploys (``blocks.api.API_STAGE_NAME``).
STAGE_PATH = "/api"

#: ``{"error": <code>, "message": <text>}``: every 4xx and 5xx of every API.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. invalid_request"},
        "message": {"type": "string", "description": "What went wrong, for a person"},
    },
    "additionalProperties": False,
}

#: Answers of API Gateway itself, on any operation (its gateway responses in blocks/api.py).
GATEWAY_ANSWERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "403": ("The request is not signed (SigV4), or the caller may not call it", ("client_error",)),
    "429": ("Throttled: retry later", ("client_error",)),
    "5XX": ("The function failed or timed out, or AWS refused one of its calls", ("server_error",)),
}
#: API Gateway refuses a REST request over its payload limit (10 MB) itself.
GATEWAY_BODY_ANSWER = ("The body is over API Gateway's payload limit", ("client_error",))
#: "When authorization is enabled on a method, the maximum length of the method's ARN ...
#: is 1600 bytes. The path parameter values ... can cause the ARN length to exceed the
#: limit. When this happens, the API client receives a 414 Request URI too long response"
#: (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html). Every
#: method here uses IAM authorization, so an operation with path parameters can get it.
GATEWAY_URI_ANSWER = (
    "Request URI too long: a path parameter makes the method's ARN longer than API "
    "Gateway's 1600 bytes",
    ("client_error",),
)

_RULE_PARAMETER = re.compile(r"<(\w+)>")


def pattern_dirs() -> list[Path]:
    """Every pattern folder with an API handler (``runtime/*_api.py``), sorted."""
    return sorted(p.parent.parent for p in PATTERNS_DIR.glob("*/runtime/*_api.py"))


def api_module_of(pattern_dir: Path) -> str:
    """The name of the pattern's one API handler module."""
    found = sorted((pattern_dir / "runtime").glob("*_api.py"))
    if len(found) != 1:
        raise ValueError(f"{pattern_dir.name}: expected one runtime/*_api.py, found {found}")
    return found[0].stem


def title_of(pattern_dir: Path) -> str:
    """``decoupled_invocation`` -> ``DecoupledInvocation API``."""
    return "".join(part.title() for part in pattern_dir.name.split("_")) + " API"


# --------------------------------------------------------------------------- in the child


def _import_api(pattern_dir: Path) -> Any:
    """Import the API module with placeholder settings for what it requires."""
    from handler_kit.config import MissingSettingError

    runtime = pattern_dir / "runtime"
    sys.path[:0] = [str(runtime), str(LAYER_DIR)]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "openapi-docs")
    local = {p.stem for p in runtime.glob("*.py")}
    name = api_module_of(pattern_dir)
    for _ in range(32):
        try:
            return importlib.import_module(name)
        except MissingSettingError as exc:
            variable = re.search(r"variable (\w+)", str(exc))
            if variable is None:
                raise
            os.environ[variable.group(1)] = _placeholder(variable.group(1))
            for module in local & set(sys.modules):
                del sys.modules[module]
    raise RuntimeError(f"{name}: too many required settings")


def _placeholder(variable: str) -> str:
    if variable.endswith("_ARN"):
        return "arn:aws:iam::000000000000:role/openapi-docs"
    if variable.endswith("_URL"):
        return "https://sqs.us-east-1.amazonaws.com/000000000000/openapi-docs"
    return "openapi-docs"


def _openapi_path(rule: str) -> str:
    return _RULE_PARAMETER.sub(r"{\1}", rule)


def _error_response(
    description: str, codes: Iterable[str], headers: Iterable[str]
) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": COMPONENTS + "Error"}
    codes = list(codes)
    if codes:
        schema = {"allOf": [schema, {"properties": {"error": {"enum": codes}}}]}
    return _response(description, schema, headers)


def _response(description: str, schema: dict[str, Any], headers: Iterable[str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    header_map = {name: {"schema": {"type": "string"}} for name in headers}
    if header_map:
        response["headers"] = header_map
    response["content"] = {"application/json": {"schema": schema}}
    return response


def _add_model(schemas: dict[str, Any], model: Any) -> str:
    """Put ``model``'s JSON schema (and its ``$defs``) into ``schemas``; its name."""
    return _add_schema(schemas, model, model.model_json_schema(ref_template=COMPONENTS + "{model}"))


def _add_body(schemas: dict[str, Any], body: Any) -> str:
    """Put the JSON schema of ``body``, a success body's ``TypedDict``, (and its
    ``$defs``) into ``schemas``; its name."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(body).json_schema(ref_template=COMPONENTS + "{model}")
    return _add_schema(schemas, body, schema)


def _add_schema(schemas: dict[str, Any], named: Any, schema: dict[str, Any]) -> str:
    schema = dict(schema)
    for name, definition in schema.pop("$defs", {}).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are named {name}")
    name = str(named.__name__)
    # The same body may answer on several routes (GET and DELETE of one resource).
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name}")
    return name


def _operation(op: Any, schemas: dict[str, Any], idempotency_key: dict[str, Any]) -> dict[str, Any]:
    names = _RULE_PARAMETER.findall(op.rule)
    if set(names) != set(op.path):
        raise ValueError(f"{op.method} {op.rule}: parameters {names}, declared {list(op.path)}")
    summary = op.summary or (inspect.getdoc(op.handler) or "").split("\n")[0]
    operation: dict[str, Any] = {"operationId": op.handler.__name__, "summary": summary}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": dict(op.path[name])}
        for name in names
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": dict(schema)}
        for name, schema in op.query.items()
    ]
    if op.idempotency_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key (same caller, same request) gets the "
                "first answer and does nothing again; another request with it: 422. One key on "
                "one header line: a repeated header, or a comma-separated list, is 400 "
                "ambiguous_idempotency_key",
                "schema": dict(idempotency_key),
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        name = _add_model(schemas, op.body)
        request_body: dict[str, Any] = {"required": op.body_required}
        if op.max_body_bytes is not None:
            request_body["description"] = (
                f"Strict JSON (no duplicate keys, NaN or Infinity) of at most "
                f"{op.max_body_bytes} bytes; a larger body is refused with 400. Sent as "
                f"application/json (a charset, if any, utf-8; no Content-Type reads as "
                f"JSON): another media type is refused with 415"
            )
            request_body["x-max-body-bytes"] = op.max_body_bytes
        request_body["content"] = {"application/json": {"schema": {"$ref": COMPONENTS + name}}}
        operation["requestBody"] = request_body
    responses: dict[str, Any] = {}
    for status, answer in sorted(op.responses.items()):
        if answer.error_codes:
            description = answer.description or (
                f"{HTTPStatus(status).phrase}: {' or '.join(answer.error_codes)}"
            )
            responses[str(status)] = _error_response(
                description, answer.error_codes, answer.headers
            )
        else:
            schema = {"type": "object"}
            if answer.body is not None:
                schema = {"$ref": COMPONENTS + _add_body(schemas, answer.body)}
            responses[str(status)] = _response(answer.description, schema, answer.headers)
    gateway = dict(GATEWAY_ANSWERS)
    if op.body is not None:
        gateway["413"] = GATEWAY_BODY_ANSWER
    if op.path:
        gateway["414"] = GATEWAY_URI_ANSWER
    for status, (description, codes) in sorted(gateway.items()):
        responses.setdefault(status, _error_response(description, codes, ()))
    operation["responses"] = responses
    return operation


def build_document(pattern_dir: Path) -> dict[str, Any]:
    """The OpenAPI document of the pattern's API (imports its handler module)."""
    from handler_kit.contract import IDEMPOTENCY_KEY_SCHEMA, ContractRoutes

    module = _import_api(pattern_dir)
    routes = [v for v in vars(module).values() if isinstance(v, ContractRoutes)]
    if len(routes) != 1:
        raise ValueError(f"{module.__name__}: expected one ContractRoutes, found {len(routes)}")
    contract = routes[0]
    _check_every_route_declared(contract)
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in contract.operations:
        path = paths.setdefault(_openapi_path(op.rule), {})
        path[op.method.lower()] = _operation(op, schemas, dict(IDEMPOTENCY_KEY_SCHEMA))
    description = (inspect.getdoc(module) or "").split("\n\n")[0].replace("\n", " ")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title_of(pattern_dir), "version": "1", "description": description},
        "servers": [
            {
                "url": "https://{restApiId}.execute-api.{region}.amazonaws.com" + STAGE_PATH,
                "variables": {
                    "restApiId": {"default": "example", "description": "The API's id"},
                    "region": {"default": "us-east-1"},
                },
            }
        ],
        "security": [{"sigv4": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (IAM authorization)",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
            "schemas": schemas,
        },
    }


def _check_every_route_declared(contract: Any) -> None:
    """The resolver has no route the contract does not declare (e.g. one added with
    ``app.get`` directly): Powertools' own schema lists what the resolver routes."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        routed = contract.app.get_openapi_schema().paths or {}
    resolver = {
        (method.upper(), path)
        for path, item in routed.items()
        for method in ("get", "put", "post", "delete", "patch", "head", "options")
        if getattr(item, method, None) is not None
    }
    declared = {(op.method, _openapi_path(op.rule)) for op in contract.operations}
    if resolver != declared:
        raise ValueError(f"routes without a declaration: {sorted(resolver - declared)}")


def render(document: dict[str, Any]) -> str:
    """The document as it is stored: indented JSON, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- in the parent


def generate(pattern_dir: Path) -> str:
    """The document text the code of ``pattern_dir`` gives (in a fresh interpreter)."""
    done = subprocess.run(
        [sys.executable, "-m", "blocks.openapi_docs", "--emit", str(pattern_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    if done.returncode != 0:
        raise RuntimeError(f"generating {pattern_dir.name}'s document failed:\n{done.stderr}")
    return done.stdout


def validate(document: dict[str, Any]) -> None:
    """Raise if ``document`` is not a valid OpenAPI 3.1 document."""
    from openapi_spec_validator import validate as validate_spec

    validate_spec(document)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blocks.openapi_docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report outdated documents")
    parser.add_argument("--emit", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.emit is not None:
        sys.path.insert(0, str(LAYER_DIR))
        sys.stdout.write(render(build_document(args.emit.resolve())))
        return 0
    outdated = []
    for pattern_dir in pattern_dirs():
        text = generate(pattern_dir)
        validate(json.loads(text))
        target = pattern_dir / DOCUMENT_NAME
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        outdated.append(target.relative_to(ROOT))
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if args.check and outdated:
        print("out of date (run `make api-docs`):", *outdated, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
