"""A REST API as its template defines it: resources, methods, stages, and routing.

Built from the stage's ``AWS::ApiGateway::*`` resources (``rest_apis``); the HTTP front
door that serves each API stage is :mod:`localstage.apigateway`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localstage.cloud import REGION
from localstage.deploy import Deployment, Resource


@dataclass
class ApiMethod:
    http_method: str
    authorization_type: str
    integration: dict[str, Any]
    validator: dict[str, Any] | None
    request_models: dict[str, str]
    request_parameters: dict[str, bool]


@dataclass
class ApiResource:
    resource_id: str
    path: str
    methods: dict[str, ApiMethod] = field(default_factory=dict)

    @property
    def parts(self) -> list[str]:
        return [part for part in self.path.split("/") if part]


@dataclass
class RestApi:
    """One REST API and its deployed stage, as the template defines them."""

    logical_id: str
    stack_name: str
    api_id: str
    name: str
    stage_name: str
    stage_variables: dict[str, str]
    resources: list[ApiResource]
    models: dict[str, dict[str, Any]]
    gateway_responses: dict[str, dict[str, Any]]
    binary_media_types: list[str]

    @property
    def public_url(self) -> str:
        """The invoke URL the stack outputs (what a deployed stage would answer on)."""
        return f"https://{self.api_id}.execute-api.{REGION}.amazonaws.com/{self.stage_name}/"

    def match(self, path: str) -> tuple[ApiResource, dict[str, str]] | None:
        """The resource a request path maps to, and its path parameters.

        A trailing slash does not count: ``/items/`` is the ``/items`` resource, as REST
        APIs route it (the proxy event's ``path`` still has the slash). An empty segment
        anywhere else (``//items``, ``/items//x``) matches nothing: how AWS routes one is
        not documented, and routing it here let the request reach a function whose
        permission names the path without it, which AWS would not invoke.
        """
        if "//" in path:
            return None
        segments = [part for part in path.split("/") if part]
        best: tuple[int, ApiResource, dict[str, str]] | None = None
        for resource in self.resources:
            parameters = _match_parts(resource.parts, segments)
            if parameters is None:
                continue
            # Literal segments beat parameters, which beat greedy {proxy+}.
            score = sum(
                3 if not part.startswith("{") else 1 if part.endswith("+}") else 2
                for part in resource.parts
            )
            if best is None or score > best[0]:
                best = (score, resource, parameters)
        return (best[1], best[2]) if best else None


def _match_parts(parts: list[str], segments: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest:
                return None
            parameters[part[1:-2]] = "/".join(rest)
            return parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = segments[index]
        elif part != segments[index]:
            return None
    return parameters if len(parts) == len(segments) else None


def rest_apis(deployment: Deployment) -> list[RestApi]:
    """Every REST API of the stage with a stage to serve."""
    apis: list[RestApi] = []
    for api_resource in deployment.resources("AWS::ApiGateway::RestApi"):
        stack = deployment.stacks[api_resource.stack_name]
        in_stack = list(stack.resources.values())
        api_id = api_resource.physical_id

        def of(
            kind: str, stack_resources: list[Resource] = in_stack, api: Any = api_id
        ) -> list[Resource]:
            return [
                resource
                for resource in stack_resources
                if resource.resource_type == f"AWS::ApiGateway::{kind}"
                and resource.properties.get("RestApiId") == api
            ]

        stages = of("Stage")
        if not stages:
            continue
        root_id = api_resource.attributes["RootResourceId"]
        by_id = {resource.physical_id: resource for resource in of("Resource")}

        def full_path(
            resource_id: str, nodes: dict[Any, Resource] = by_id, root: Any = root_id
        ) -> str:
            if resource_id == root:
                return "/"
            node = nodes[resource_id]
            parent = full_path(node.properties["ParentId"])
            return f"{parent.rstrip('/')}/{node.properties['PathPart']}"

        resources = {root_id: ApiResource(root_id, "/")}
        for resource_id in by_id:
            resources[resource_id] = ApiResource(resource_id, full_path(resource_id))
        validators = {
            resource.physical_id: resource.properties for resource in of("RequestValidator")
        }
        for method in of("Method"):
            props = method.properties
            resources[props["ResourceId"]].methods[props["HttpMethod"].upper()] = ApiMethod(
                http_method=props["HttpMethod"].upper(),
                authorization_type=props.get("AuthorizationType", "NONE"),
                integration=props.get("Integration") or {},
                validator=validators.get(props.get("RequestValidatorId")),
                request_models=props.get("RequestModels") or {},
                request_parameters={
                    name: bool(required)
                    for name, required in (props.get("RequestParameters") or {}).items()
                },
            )
        models = {model.physical_id: model.properties.get("Schema") or {} for model in of("Model")}
        responses = {
            resource.properties["ResponseType"]: resource.properties
            for resource in of("GatewayResponse")
        }
        for stage in stages:
            apis.append(
                RestApi(
                    logical_id=api_resource.logical_id,
                    stack_name=api_resource.stack_name,
                    api_id=api_id,
                    name=api_resource.properties.get("Name", api_resource.logical_id),
                    stage_name=stage.properties["StageName"],
                    stage_variables=stage.properties.get("Variables") or {},
                    resources=list(resources.values()),
                    models=models,
                    gateway_responses=responses,
                    binary_media_types=api_resource.properties.get("BinaryMediaTypes") or [],
                )
            )
    return apis
