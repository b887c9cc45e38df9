"""CloudFormation resources for the hand-written test assemblies (tiny*.py and the tests'
own templates).

Each builder writes one resource the way CDK would, with only what the tests vary as
arguments, so the templates read as a list of what the stage holds and a resource shape
is written once. Imported by bare name, like ``tiny`` (this folder is on sys.path).
"""

from __future__ import annotations

from typing import Any

#: The code asset every test function runs (``tiny.write_assembly`` writes it).
ASSET = "0123456789abcdef"
#: The ``ApiUrl`` output of a template with a REST API ``Api`` and its stage ``Stage``.
API_URL_OUTPUT = {
    "Value": {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/"}
}


def ref_outputs(
    *, names: tuple[str, ...] = (), urls: tuple[str, ...] = (), **others: str
) -> dict[str, Any]:
    """Outputs giving resources' ``Ref``: ``<resource>Name`` for each of ``names`` (a
    table, a bucket), ``<resource>Url`` for each of ``urls`` (a queue), and each output
    of ``others`` (output name to resource) as named."""
    resources = {f"{name}Name": name for name in names} | {f"{url}Url": url for url in urls}
    return {
        output: {"Value": {"Ref": resource}} for output, resource in (resources | others).items()
    }


def arn(name: str, attribute: str = "Arn") -> dict[str, Any]:
    """``Fn::GetAtt`` of a resource's ARN (or of another attribute, e.g. ``StreamArn``)."""
    return {"Fn::GetAtt": [name, attribute]}


def allow(action: str | list[str], resource: Any) -> dict[str, Any]:
    """An IAM statement allowing ``action`` on ``resource`` (one or a list)."""
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def function_resource(
    handler: str,
    role: str,
    *,
    timeout: int,
    environment: dict[str, Any],
    code: dict[str, Any] | None = None,
    depends_on: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``AWS::Lambda::Function`` on Python 3.14 running ``handler`` as ``role``.

    ``code`` defaults to the asset :data:`ASSET` in the account's asset bucket;
    ``extra`` adds properties (layers, destinations, ...).
    """
    resource: dict[str, Any] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.14",
            "Handler": handler,
            "Timeout": timeout,
            "Code": code
            or {"S3Bucket": {"Fn::Sub": "assets-${AWS::AccountId}"}, "S3Key": f"{ASSET}.zip"},
            "Role": arn(role),
            "Environment": {"Variables": environment},
            **(extra or {}),
        },
    }
    if depends_on:
        resource["DependsOn"] = depends_on
    return resource


def role_resource(
    service: str = "lambda.amazonaws.com", condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An ``AWS::IAM::Role`` that ``service`` may assume, on ``condition`` if one is given
    (its policies are separate)."""
    trust: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        trust["Condition"] = condition
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}},
    }


def policy_resource(name: str, role: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An ``AWS::IAM::Policy`` named ``name``, attached to ``role``."""
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": name,
            "Roles": [{"Ref": role}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        },
    }


def table_resource(*, stream: bool = False) -> dict[str, Any]:
    """An on-demand ``AWS::DynamoDB::Table`` keyed by the string ``pk``, with a stream of
    new and old images if ``stream``."""
    properties: dict[str, Any] = {
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    }
    if stream:
        properties["StreamSpecification"] = {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    return {"Type": "AWS::DynamoDB::Table", "Properties": properties}


def queue_resource(**properties: Any) -> dict[str, Any]:
    """An ``AWS::SQS::Queue`` with ``properties``."""
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


def redriven_queue(dead_letters: str, max_receive_count: int = 2) -> dict[str, Any]:
    """A queue (visibility 30 s) that moves a message to ``dead_letters`` after
    ``max_receive_count`` receives."""
    return queue_resource(
        VisibilityTimeout=30,
        RedrivePolicy={
            "deadLetterTargetArn": arn(dead_letters),
            "maxReceiveCount": max_receive_count,
        },
    )


def on_failure(queue: str) -> dict[str, Any]:
    """A ``DestinationConfig`` sending failures to ``queue``."""
    return {"OnFailure": {"Destination": arn(queue)}}


def event_source_mapping(
    function: str, source: dict[str, Any], **properties: Any
) -> dict[str, Any]:
    """An ``AWS::Lambda::EventSourceMapping`` from ``source`` (an ARN) to ``function``."""
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"FunctionName": {"Ref": function}, "EventSourceArn": source, **properties},
    }


def event_invoke_config(function: str, **properties: Any) -> dict[str, Any]:
    """An ``AWS::Lambda::EventInvokeConfig`` of ``function``'s ``$LATEST``."""
    return {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {"FunctionName": {"Ref": function}, "Qualifier": "$LATEST", **properties},
    }


def lambda_permission(
    function: str, principal: str, source_arn: Any, **properties: Any
) -> dict[str, Any]:
    """An ``AWS::Lambda::Permission`` letting ``principal`` invoke ``function`` for
    ``source_arn`` (``properties`` adds e.g. ``SourceAccount``)."""
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": arn(function),
            "Principal": principal,
            "SourceArn": source_arn,
            **properties,
        },
    }


def api_resource(path_part: str, parent: str | None = None) -> dict[str, Any]:
    """An ``AWS::ApiGateway::Resource`` of the REST API ``Api``, under ``parent`` (a
    resource) or the API's root."""
    return {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ParentId": {"Ref": parent} if parent else arn("Api", "RootResourceId"),
            "PathPart": path_part,
        },
    }


def proxy_method(
    http_method: str, resource: str, function: str, **properties: Any
) -> dict[str, Any]:
    """An IAM-authorized ``AWS::ApiGateway::Method`` of ``Api`` proxying to ``function``.

    ``TimeoutInMillis`` goes to the integration; other ``properties`` to the method.
    """
    integration: dict[str, Any] = {
        "Type": "AWS_PROXY",
        "IntegrationHttpMethod": "POST",
        "Uri": {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/"
            f"2015-03-31/functions/${{{function}.Arn}}/invocations"
        },
    }
    if "TimeoutInMillis" in properties:
        integration["TimeoutInMillis"] = properties.pop("TimeoutInMillis")
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ResourceId": {"Ref": resource},
            "HttpMethod": http_method,
            "AuthorizationType": "AWS_IAM",
            "Integration": integration,
            **properties,
        },
    }


def api_deployment(methods: list[str]) -> dict[str, dict[str, Any]]:
    """``Deployment`` of ``Api`` (after its ``methods``) and its stage ``Stage`` (``test``)."""
    return {
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}},
            "DependsOn": methods,
        },
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "DeploymentId": {"Ref": "Deployment"},
                "StageName": "test",
            },
        },
    }


def api_permission(function: str, methods_and_paths: str) -> dict[str, Any]:
    """Lets API Gateway invoke ``function`` for ``Api``'s stage and ``methods_and_paths``
    (e.g. ``GET/items/*``)."""
    return lambda_permission(
        function,
        "apigateway.amazonaws.com",
        {
            "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
            f"${{Api}}/${{Stage}}/{methods_and_paths}"
        },
    )
