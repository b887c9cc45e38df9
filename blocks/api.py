"""A REST API with this app's defaults: IAM auth, throttling, JSON access logs, validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IValidation

from blocks.compliance import acknowledge
from blocks.openapi import ApiDocument
from blocks.stage_settings import StageSettings

API_STAGE_NAME = "api"

# One JSON object per request; field names follow the Powertools logger keys where they
# overlap so access logs and function logs join on the request id.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "errorMessage": "$context.error.message",
    "errorType": "$context.error.responseType",
    "validationError": "$context.error.validationErrorString",
}

# Errors produced by API Gateway itself (validation, auth, throttling) get the same JSON
# shape as the handlers' errors: {"error": <code>, "message": <text>}.
_GATEWAY_ERRORS: dict[str, tuple[apigw.ResponseType, str]] = {
    "BadRequestBody": (apigw.ResponseType.BAD_REQUEST_BODY, "invalid_request"),
    "BadRequestParameters": (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "invalid_request"),
    # A body API Gateway cannot decompress from its Content-Encoding (by default it
    # decompresses gzip and deflate): the handlers' 415 code, as for another media type.
    "UnsupportedMediaType": (apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    "Default4xx": (apigw.ResponseType.DEFAULT_4_XX, "client_error"),
    "Default5xx": (apigw.ResponseType.DEFAULT_5_XX, "server_error"),
}


def _error_template(code: str) -> str:
    # Gateway response templates only substitute variables (no VTL, no escaping), so only
    # messageString, which API Gateway quotes itself, is safe inside JSON. The validator's
    # detail (validationErrorString, unescaped) goes to the access log instead.
    return f'{{"error": "{code}", "message": $context.error.messageString}}'


class ServiceApi(Construct):
    """A regional REST API whose every method needs SigV4 (IAM) and is throttled.

    Stage ``api`` has JSON access logs in a log group with retention, X-Ray tracing and
    per-method throttling; bodies are validated against JSON schema models before a
    function is invoked, and API Gateway's own errors are JSON like the handlers'.

    With ``openapi`` (the pattern's ``openapi.json``, generated from its handler),
    every route must be one the document declares, and each route's request model is
    the document's request body converted to draft 4 (``blocks/openapi.py``): no body
    schema is written by hand.

    Attributes
    ----------
    api:
        The ``aws_apigateway.RestApi``.
    access_log_group:
        Where the access logs go.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        description: str,
        throttling_rate_limit: float = 50,
        throttling_burst_limit: int = 100,
        method_throttling: Mapping[str, tuple[float, int]] | None = None,
        openapi: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.document = ApiDocument(openapi) if openapi is not None else None
        self._routed: set[tuple[str, str]] = set()
        if self.document is not None:
            self.node.add_validation(_EveryOperationRouted(self.document, self._routed))
        self.access_log_group = settings.log_group(self, "AccessLogs")
        self.api = apigw.RestApi(
            self,
            "Api",
            # REST API names need not be unique; CDK would name every one "Api". The
            # stack name (<stage>-<Pattern>) says in the console whose API it is.
            rest_api_name=cdk.Stack.of(self).stack_name,
            description=description,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            default_method_options=apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.IAM
            ),
            deploy_options=apigw.StageOptions(
                stage_name=API_STAGE_NAME,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                throttling_rate_limit=throttling_rate_limit,
                throttling_burst_limit=throttling_burst_limit,
                # Stage-wide limits apply to every method ("/*/*"); these override them
                # per method, keyed "<resource path>/<HTTP method>", e.g. "/jobs/POST".
                method_options={
                    key: apigw.MethodDeploymentOptions(
                        throttling_rate_limit=rate, throttling_burst_limit=burst
                    )
                    for key, (rate, burst) in (method_throttling or {}).items()
                },
            ),
        )
        # RestApi adds an "Endpoint" output to its stack; stacks publish their own outputs.
        self.api.node.try_remove_child("Endpoint")
        self._validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        for response_id, (response_type, code) in _GATEWAY_ERRORS.items():
            self.api.add_gateway_response(
                response_id,
                type=response_type,
                templates={"application/json": _error_template(code)},
            )
        self._acknowledge_findings()

    def add_route(
        self,
        method: str,
        path: str,
        handler: lambda_.IFunction,
        *,
        required_path_parameters: tuple[str, ...] = (),
    ) -> apigw.Method:
        """Route ``method path`` to ``handler`` through a Lambda proxy integration.

        With a document, a body the route's request model (from the document) refuses
        gets API Gateway's 400 without invoking the function.

        Parameters
        ----------
        required_path_parameters:
            Path parameters API Gateway must see before it invokes the function.

        Raises
        ------
        KeyError
            If the API has a document and it does not declare ``method path``.
        """
        resource = self.api.root.resource_for_path(path)
        self._routed.add((method.upper(), path))
        request_models = None
        request_schema = (
            self.document.request_schema(method, path) if self.document is not None else None
        )
        if request_schema is not None:
            model = self.api.add_model(
                f"{method.title()}{''.join(p.strip('{}').title() for p in path.split('/'))}Body",
                content_type="application/json",
                schema=_json_schema(request_schema, root=True),
            )
            # `$default`, not `application/json`: API Gateway validates a body only
            # against the model of the request's Content-Type and skips validation when
            # none matches, so a client could bypass the model by sending text/plain.
            request_models = {"$default": model}
        api_method = resource.add_method(
            method,
            # No grant to the test-invoke stage (the console's Test tab, TestInvokeMethod):
            # the functions are reached through the deployed stage only, and each route
            # adds one resource-policy statement to its function instead of two.
            apigw.LambdaIntegration(handler, allow_test_invoke=False),
            request_validator=self._validator,
            request_models=request_models,
            request_parameters={
                f"method.request.path.{name}": True for name in required_path_parameters
            }
            or None,
        )
        cfn_method = api_method.node.default_child
        assert cfn_method is not None
        acknowledge(
            cfn_method,
            "AwsSolutions-COG4",
            "Callers authenticate with SigV4 (IAM authorization), not a Cognito user pool.",
        )
        return api_method

    def add_collection(
        self,
        collection: str,
        handler: lambda_.IFunction,
        *,
        id_name: str,
        item_methods: tuple[str, ...] = ("GET",),
    ) -> None:
        """``POST /<collection>`` (body checked) and ``item_methods`` on its items.

        The item path is ``/<collection>/{<id_name>}``, the id a required parameter.
        """
        self.add_route("POST", f"/{collection}", handler)
        item_path = f"/{collection}/{{{id_name}}}"
        for method in item_methods:
            self.add_route(method, item_path, handler, required_path_parameters=(id_name,))

    @property
    def url(self) -> str:
        """The invoke URL of the ``api`` stage."""
        return self.api.url

    def _acknowledge_findings(self) -> None:
        stage = self.api.deployment_stage.node.default_child
        assert stage is not None
        acknowledge(
            stage,
            "AwsSolutions-APIG3",
            "Every method needs SigV4 (IAM) and is throttled per method; a WAF web ACL "
            "costs a fixed monthly fee per stage, which ephemeral stages should not pay.",
        )
        acknowledge(
            stage,
            "AwsSolutions-APIG6",
            "JSON access logs are enabled; execution logs are off because API Gateway "
            "writes them to a group it creates itself (API-Gateway-Execution-Logs_<api "
            "id>/<stage>), without retention and owned by no stack, which would outlive "
            "every ephemeral stage.",
        )


@jsii.implements(IValidation)
class _EveryOperationRouted:
    """Synth fails if the document declares an operation the API does not route."""

    def __init__(self, document: ApiDocument, routed: set[tuple[str, str]]) -> None:
        self._document = document
        self._routed = routed

    def validate(self) -> list[str]:
        return [
            f"{method} {path} is in {self._document.path.name} but not routed by the API"
            for method, path in sorted(self._document.operations() - self._routed)
        ]


#: Draft 4 keywords and the name of CDK's ``JsonSchema`` argument for each.
_NAMED_KEYWORDS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "minItems": "min_items",
    "maxItems": "max_items",
    "uniqueItems": "unique_items",
    "minProperties": "min_properties",
    "maxProperties": "max_properties",
    "multipleOf": "multiple_of",
}


def _json_schema(schema: Mapping[str, Any], *, root: bool = False) -> apigw.JsonSchema:
    """Translate a plain JSON schema dict into CDK's ``JsonSchema`` (draft 4)."""
    types = {
        "object": apigw.JsonSchemaType.OBJECT,
        "string": apigw.JsonSchemaType.STRING,
        "integer": apigw.JsonSchemaType.INTEGER,
        "number": apigw.JsonSchemaType.NUMBER,
        "boolean": apigw.JsonSchemaType.BOOLEAN,
        "array": apigw.JsonSchemaType.ARRAY,
        "null": apigw.JsonSchemaType.NULL,
    }
    kwargs: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            kwargs["type"] = [types[t] for t in value] if isinstance(value, list) else types[value]
        elif key == "properties":
            kwargs["properties"] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            kwargs["items"] = _json_schema(value)
        elif key == "additionalProperties":
            kwargs["additional_properties"] = (
                value if isinstance(value, bool) else _json_schema(value)
            )
        elif key in _NAMED_KEYWORDS:
            kwargs[_NAMED_KEYWORDS[key]] = value
        elif key in {"required", "enum", "pattern", "description", "title"}:
            kwargs[key] = list(value) if isinstance(value, (list, tuple)) else value
        else:
            raise ValueError(f"unsupported JSON schema keyword {key!r}")
    if root:
        kwargs["schema"] = apigw.JsonSchemaVersion.DRAFT4
    return apigw.JsonSchema(**kwargs)
