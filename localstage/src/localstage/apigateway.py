"""API Gateway REST APIs on localhost: one HTTP server per API stage.

Built from the template's ``AWS::ApiGateway::*`` resources (read into a
:class:`~localstage.apigateway_routes.RestApi`: resources and methods, path parameters,
``{proxy+}``, ``ANY``): IAM (SigV4) authorization, request validators with the
JSON-schema models, gateway responses, Lambda proxy integrations (``AWS_PROXY``) checked
against the functions' ``AWS::Lambda::Permission``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from localstage.apigateway_proxy import (
    DEFAULT_INTEGRATION_TIMEOUT_MS,
    INTERNAL_ERROR,
    MAX_REQUEST_BYTES,
    RAW_HEADERS_KEY,
    GatewayError,
    check_event_size,
    decompressed_body,
    event_headers,
    invoke_within,
    parse_json_body,
    proxy_response,
)
from localstage.apigateway_routes import ApiMethod, RestApi
from localstage.apigateway_sigv4 import authenticate
from localstage.cloud import ACCOUNT_ID, PARTITION, REGION, Credentials
from localstage.events import api_gateway_event, api_identity
from localstage.runtime import FunctionRuntime

logger = logging.getLogger(__name__)

#: "When authorization is enabled on a method, the maximum length of the method's ARN
#: ... is 1600 bytes" (API Gateway quotas): longer is a 414.
MAX_METHOD_ARN_BYTES = 1600

#: How often a gateway server's loop checks whether it is being stopped.
SERVER_POLL_SECONDS = 0.05

DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
_ERROR_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "INVALID_SIGNATURE": "InvalidSignatureException",
    "ACCESS_DENIED": "AccessDeniedException",
    "BAD_REQUEST_BODY": "BadRequestException",
    "BAD_REQUEST_PARAMETERS": "BadRequestException",
}
_FUNCTION_ARN = re.compile(r":lambda:path/[^/]+/functions/(?P<arn>.+)/invocations$")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        # The WSGI environ merges repeated headers; API Gateway keeps each value.
        environ[RAW_HEADERS_KEY] = list(self.headers.items())
        return environ


class ApiGatewayServer:
    """Serves one REST API stage on ``http://127.0.0.1:<port>/<stage>/``."""

    def __init__(
        self,
        api: RestApi,
        *,
        functions: Callable[[str], FunctionRuntime],
        permissions: list[dict[str, Any]],
        identities: Callable[[str], Credentials | None],
    ) -> None:
        self.api = api
        self._functions = functions
        self._permissions = permissions
        self._identities = identities
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.api.stage_name}/"

    def start(self) -> ApiGatewayServer:
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # How long a stop waits for the loop (not how fast a request is served).
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------ requests

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        try:
            response = self.handle(request, request_id)
        except GatewayError as error:
            response = self._gateway_response(error, request_id)
        except Exception:  # API Gateway never answers an HTML error page
            logger.exception("API Gateway emulation failed on %s %s", request.method, request.path)
            response = self._gateway_response(
                GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=500), request_id
            )
        response.headers["x-amzn-RequestId"] = request_id
        return response(environ, start_response)

    def handle(self, request: Request, request_id: str) -> Response:
        self.requests += 1
        prefix = f"/{self.api.stage_name}"
        if request.path != prefix and not request.path.startswith(prefix + "/"):
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        path = request.path[len(prefix) :] or "/"
        matched = self.api.match(path)
        method_name = request.method.upper()
        if matched is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        resource, path_parameters = matched
        method = resource.methods.get(method_name) or resource.methods.get("ANY")
        if method is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        method_arn = self._method_arn(method_name, path)
        check_method_arn_length(method, method_arn)
        body = request.get_data(cache=True)
        if len(body) > MAX_REQUEST_BYTES:
            raise GatewayError("REQUEST_TOO_LARGE", "Request Too Long")
        credentials = None
        if method.authorization_type == "AWS_IAM":
            credentials = authenticate(request, body, self._identities)
        elif method.authorization_type not in ("NONE", ""):
            raise GatewayError(
                "API_CONFIGURATION_ERROR",
                f"authorization type {method.authorization_type} is not emulated by localstage",
            )
        # SigV4 signs the bytes as sent; the validator and the function get them decompressed.
        body = decompressed_body(body, request.headers.getlist("Content-Encoding"))
        self._validate(request, method, body, path_parameters)
        integration = method.integration
        if integration.get("Type") != "AWS_PROXY":
            raise GatewayError(
                "API_CONFIGURATION_ERROR",
                f"integration type {integration.get('Type')} is not emulated by localstage",
            )
        match = _FUNCTION_ARN.search(str(integration.get("Uri", "")))
        if match is None:
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error", status=500)
        function_arn = match.group("arn")
        if not self._permitted(function_arn, method_arn):
            # What AWS logs as "Invalid permissions on Lambda function".
            raise GatewayError("DEFAULT_5XX", "Internal server error", status=500)
        binary = _is_binary(request.content_type or "", self.api.binary_media_types)
        event = api_gateway_event(
            api_id=self.api.api_id,
            stage=self.api.stage_name,
            resource_id=resource.resource_id,
            resource_path=resource.path,
            method=method_name,
            path=path,
            headers=event_headers(request.environ),
            query=list(request.args.items(multi=True)),
            path_parameters=path_parameters,
            stage_variables=self.api.stage_variables,
            body=body,
            binary=binary,
            identity=api_identity(
                access_key=credentials.access_key_id if credentials else None,
                principal_arn=credentials.principal_arn if credentials else None,
                source_ip=request.remote_addr or "127.0.0.1",
                user_agent=request.headers.get("User-Agent"),
            ),
            request_id=request_id,
        )
        check_event_size(event)
        timeout_ms = int(integration.get("TimeoutInMillis") or DEFAULT_INTEGRATION_TIMEOUT_MS)
        return proxy_response(invoke_within(self._functions(function_arn), event, timeout_ms))

    def _validate(
        self, request: Request, method: ApiMethod, body: bytes, path_parameters: dict[str, str]
    ) -> None:
        validator = method.validator
        if not validator:
            return
        if validator.get("ValidateRequestParameters"):
            missing = []
            for name, required in method.request_parameters.items():
                if not required:
                    continue
                location, _, key = name.removeprefix("method.request.").partition(".")
                present = {
                    "path": lambda k: bool(path_parameters.get(k)),
                    "querystring": lambda k: k in request.args,
                    "header": lambda k: k in request.headers,
                    "multivaluequerystring": lambda k: k in request.args,
                    "multivalueheader": lambda k: k in request.headers,
                }.get(location, lambda _k: True)(key)
                if not present:
                    missing.append(key)
            if missing:
                raise GatewayError(
                    "BAD_REQUEST_PARAMETERS",
                    f"Missing required request parameters: [{', '.join(missing)}]",
                )
        if validator.get("ValidateRequestBody") and method.request_models:
            content_type = (request.content_type or "application/json").split(";")[0].strip()
            model_name = method.request_models.get(content_type) or method.request_models.get(
                "$default"
            )
            schema = self.api.models.get(model_name) if model_name else None
            if schema is None or model_name == "Empty":
                return
            document = parse_json_body(body)
            try:
                errors = sorted(
                    jsonschema.Draft4Validator(schema).iter_errors(document),
                    # A path mixes indexes and names: compare them as text.
                    key=lambda e: [str(part) for part in e.path],
                )
            except RecursionError:  # a document nested deeper than the validator can go
                raise GatewayError(
                    "BAD_REQUEST_BODY", "Invalid request body", validation="Too deeply nested"
                ) from None
            if errors:
                raise GatewayError(
                    "BAD_REQUEST_BODY",
                    "Invalid request body",
                    validation="[" + ", ".join(error.message for error in errors) + "]",
                )

    def _method_arn(self, method_name: str, path: str) -> str:
        """The ARN of the method a request calls: what IAM authorizes and what a
        function's permission names as source ARN.

        A trailing slash routes to the resource without it (the one empty segment
        matching ignores), and AWS invokes a function whose permission names the path
        without it: Powertools' e2e test gets 200 for POST todos/ on CDK's ".../POST/todos".
        """
        return (
            f"arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT_ID}:{self.api.api_id}/"
            f"{self.api.stage_name}/{method_name}{path.rstrip('/') or '/'}"
        )

    def _permitted(self, function_arn: str, source_arn: str) -> bool:
        for permission in self._permissions:
            if permission.get("FunctionName") not in (
                function_arn,
                function_arn.rsplit(":", 1)[-1],
            ):
                continue
            if permission.get("Principal") != "apigateway.amazonaws.com":
                continue
            if permission.get("Action") not in ("lambda:InvokeFunction", "lambda:*"):
                continue
            pattern = permission.get("SourceArn")
            if pattern is None or fnmatch.fnmatchcase(source_arn, pattern):
                return True
        return False

    def _gateway_response(self, error: GatewayError, request_id: str) -> Response:
        configured = self.api.gateway_responses
        status = error.status or DEFAULT_STATUS.get(error.response_type, 500)
        family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        spec = configured.get(error.response_type) or configured.get(family) or {}
        if spec.get("StatusCode"):
            status = int(spec["StatusCode"])
        template = (spec.get("ResponseTemplates") or {}).get(
            "application/json", '{"message":$context.error.messageString}'
        )
        variables = {
            "$context.error.messageString": json.dumps(error.message),
            "$context.error.message": error.message,
            "$context.error.responseType": error.response_type,
            "$context.error.validationErrorString": error.extra.get("validation", ""),
            "$context.requestId": request_id,
        }
        body = template
        for name in sorted(variables, key=len, reverse=True):
            body = body.replace(name, variables[name])
        response = Response(body, status=status, content_type="application/json")
        for name, value in (spec.get("ResponseParameters") or {}).items():
            if name.startswith("gatewayresponse.header."):
                response.headers[name.removeprefix("gatewayresponse.header.")] = value.strip("'")
        response.headers["x-amzn-ErrorType"] = _ERROR_TYPES.get(
            error.response_type, "InternalServerErrorException" if status >= 500 else "Exception"
        )
        return response


def check_method_arn_length(method: ApiMethod, method_arn: str) -> None:
    """Refuse a request whose method ARN is too long to authorize: 414.

    API Gateway quotas: "When authorization is enabled on a method, the maximum length
    of the method's ARN (for example,
    ``arn:aws:execute-api:{region-id}:{account-id}:{api-id}/{stage-id}/{method}/{resource}/{path}``)
    is 1600 bytes. The path parameter values (whose size is determined at runtime) can
    cause the ARN length to exceed the limit. When this happens, the API client receives
    a ``414 Request URI too long`` response."
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html)

    The page gives no body; the answer is localstage's usual gateway-error shape (the
    API's ``DEFAULT_4XX`` template, message "Request URI too long"). The path is counted
    as routed (percent-decoded, UTF-8), as localstage builds the ARN; whether AWS counts
    the encoded form is not documented.

    Raises
    ------
    GatewayError
        A 414 when ``method`` has authorization and ``method_arn`` is over 1600 bytes.
    """
    if method.authorization_type in ("NONE", ""):
        return
    if len(method_arn.encode("utf-8")) > MAX_METHOD_ARN_BYTES:
        raise GatewayError("DEFAULT_4XX", "Request URI too long", status=414)


def _is_binary(content_type: str, binary_media_types: list[str]) -> bool:
    media_type = content_type.split(";")[0].strip()
    return any(
        fnmatch.fnmatchcase(media_type, pattern.replace("~1", "/"))
        for pattern in binary_media_types
    )
