"""Deploy a stage's stacks onto moto, the way CloudFormation would, in dependency order.

Each resource type has a provisioner (:data:`PROVISIONERS`); types localstage runs
itself (Lambda, API Gateway) are recorded with generated ids and attributes for the
runtime modules, and types it does not emulate (alarms, dashboards, ...) are listed
once and skipped: a value taken from one is an :class:`~localstage.intrinsics.Unemulated`
marker, and a function whose environment or role policy holds one is a deploy error.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localstage.assembly import Assembly, StackArtifact
from localstage.cloud import ACCOUNT_ID, PARTITION, REGION, MotoCloud
from localstage.intrinsics import (
    Unemulated,
    evaluate_condition,
    references,
    resolve,
)

URL_SUFFIX = "amazonaws.com"


class DeployError(RuntimeError):
    """A resource cannot be created locally the way the template asks."""


@dataclass
class Resource:
    """One deployed resource: what Ref and Fn::GetAtt return, and its resolved properties."""

    stack_name: str
    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    physical_id: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: "moto", "localstage" (run by localstage itself) or "skipped".
    emulation: str = "moto"
    #: Unemulated resources this one's properties refer to.
    unemulated_refs: list[Unemulated] = field(default_factory=list)

    @property
    def arn(self) -> Any:
        return self.attributes.get("Arn")


@dataclass
class DeployedStack:
    artifact: StackArtifact
    resources: dict[str, Resource]
    outputs: dict[str, Any]
    stack_id: str


class Deployment:
    """Everything deployed for a stage: resources by stack, outputs and exports."""

    def __init__(self, cloud: MotoCloud, assembly: Assembly) -> None:
        self.cloud = cloud
        self.assembly = assembly
        self.stacks: dict[str, DeployedStack] = {}
        self.exports: dict[str, Any] = {}
        self.skipped: dict[str, int] = {}
        self.random = random.Random()

    # ------------------------------------------------------------------ lookups

    def resources(self, resource_type: str | None = None) -> list[Resource]:
        return [
            resource
            for stack in self.stacks.values()
            for resource in stack.resources.values()
            if resource_type is None or resource.resource_type == resource_type
        ]

    def find(self, resource_type: str, physical_id: Any = None, arn: Any = None) -> Resource:
        for resource in self.resources(resource_type):
            if physical_id is not None and resource.physical_id == physical_id:
                return resource
            if arn is not None and resource.arn == arn:
                return resource
        raise KeyError(f"no {resource_type} with id {physical_id!r} / arn {arn!r}")

    def output(self, stack: str, name: str) -> Any:
        deployed = self.stacks[self.assembly.stack(stack).stack_name]
        if name not in deployed.outputs:
            raise KeyError(f"stack {deployed.artifact.stack_name} has no output {name!r}")
        return deployed.outputs[name]

    # ------------------------------------------------------------------ deploy

    def deploy_all(self) -> None:
        for artifact in self.assembly.stacks:
            self.deploy_stack(artifact)

    def deploy_stack(self, artifact: StackArtifact) -> DeployedStack:
        stack_id = (
            f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/"
            f"{artifact.stack_name}/{uuid.UUID(int=self.random.getrandbits(128))}"
        )
        deployed = DeployedStack(artifact, {}, {}, stack_id)
        self.stacks[artifact.stack_name] = deployed
        context = StackContext(self, deployed)
        template = artifact.template
        for logical_id in _creation_order(template.get("Resources") or {}):
            definition = template["Resources"][logical_id]
            condition = definition.get("Condition")
            if condition and not context.condition(condition):
                continue
            self._create(context, logical_id, definition)
        for name, output in (template.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition and not context.condition(condition):
                continue
            value = resolve(output["Value"], context)
            deployed.outputs[name] = value
            export = output.get("Export")
            if export:
                self.exports[resolve(export["Name"], context)] = value
        return deployed

    def _create(self, context: StackContext, logical_id: str, definition: dict[str, Any]) -> None:
        resource_type = definition["Type"]
        stack = context.stack
        raw_properties = definition.get("Properties") or {}
        provisioner = PROVISIONERS.get(resource_type)
        if provisioner is None:
            self.skipped[resource_type] = self.skipped.get(resource_type, 0) + 1
            stack.resources[logical_id] = Resource(
                stack.artifact.stack_name,
                logical_id,
                resource_type,
                raw_properties,
                physical_id=Unemulated(logical_id, resource_type),
                emulation="skipped",
            )
            return
        properties = resolve(raw_properties, context)
        resource = Resource(
            stack.artifact.stack_name,
            logical_id,
            resource_type,
            properties,
            emulation=provisioner.emulation,
            unemulated_refs=_markers(properties),
        )
        stack.resources[logical_id] = resource
        try:
            provisioner.create(self, resource)
        except DeployError:
            raise
        except Exception as error:
            raise DeployError(
                f"{stack.artifact.stack_name}/{logical_id} ({resource_type}): {error}"
            ) from error

    # ------------------------------------------------------------------ names

    def physical_name(
        self, resource: Resource, *, max_length: int = 64, lowercase: bool = False
    ) -> str:
        """A name like CloudFormation generates: ``<stack>-<logicalId>-<RANDOM>``."""
        suffix = "".join(self.random.choices(string.ascii_uppercase + string.digits, k=12))
        stack_part, logical_part = resource.stack_name, resource.logical_id
        budget = max_length - len(suffix) - 2
        if len(stack_part) + len(logical_part) > budget:
            stack_part = stack_part[: max(budget // 2, budget - len(logical_part))]
            logical_part = logical_part[: budget - len(stack_part)]
        name = f"{stack_part}-{logical_part}-{suffix}"
        return name.lower() if lowercase else name

    def short_id(self, length: int = 10) -> str:
        return "".join(self.random.choices(string.ascii_lowercase + string.digits, k=length))

    def unemulated_refs(self) -> list[tuple[Resource, list[Unemulated]]]:
        return [
            (resource, resource.unemulated_refs)
            for resource in self.resources()
            if resource.unemulated_refs
        ]


class StackContext:
    """Resolves intrinsics inside one stack of a :class:`Deployment`."""

    region = REGION
    account_id = ACCOUNT_ID
    partition = PARTITION
    url_suffix = URL_SUFFIX

    def __init__(self, deployment: Deployment, stack: DeployedStack) -> None:
        self.deployment = deployment
        self.stack = stack
        self.stack_name = stack.artifact.stack_name
        self.stack_id = stack.stack_id
        self._conditions: dict[str, bool] = {}

    def _resource(self, logical_id: str) -> Resource:
        try:
            return self.stack.resources[logical_id]
        except KeyError:
            raise DeployError(
                f"{self.stack_name}: {logical_id} is referenced before it exists (or does "
                "not exist / its condition is false)"
            ) from None

    def ref(self, logical_id: str) -> Any:
        return self._resource(logical_id).physical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self._resource(logical_id)
        if resource.emulation == "skipped":
            return Unemulated(logical_id, resource.resource_type)
        if attribute not in resource.attributes:
            raise DeployError(
                f"{self.stack_name}/{logical_id}: attribute {attribute} of "
                f"{resource.resource_type} is not emulated"
            )
        return resource.attributes[attribute]

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.stack.artifact.template.get("Conditions") or {}
            if name not in conditions:
                raise DeployError(f"{self.stack_name}: no condition {name!r}")
            self._conditions[name] = evaluate_condition(conditions[name], self)
        return self._conditions[name]

    def stack_output(self, stack_name: str, output_name: str, region: str) -> Any:
        stack = self.deployment.stacks.get(stack_name)
        if stack is None:
            raise DeployError(f"{self.stack_name}: stack {stack_name} is not deployed yet")
        if output_name not in stack.outputs:
            raise DeployError(f"{self.stack_name}: stack {stack_name} has no {output_name}")
        return stack.outputs[output_name]

    def import_value(self, export_name: str) -> Any:
        if export_name not in self.deployment.exports:
            raise DeployError(f"{self.stack_name}: no export named {export_name!r}")
        return self.deployment.exports[export_name]

    def parameter(self, name: str) -> Any:
        parameters = self.stack.artifact.template.get("Parameters") or {}
        if name not in parameters:
            raise KeyError(name)
        return parameters[name].get("Default")

    def find_in_map(self, map_name: str, top_key: str, second_key: str) -> Any:
        mappings = self.stack.artifact.template.get("Mappings") or {}
        try:
            return mappings[map_name][top_key][second_key]
        except KeyError:
            raise DeployError(
                f"{self.stack_name}: Fn::FindInMap {map_name}/{top_key}/{second_key} missing"
            ) from None


def _creation_order(resources: dict[str, Any]) -> list[str]:
    ordered: list[str] = []
    state: dict[str, str] = {}

    def visit(logical_id: str) -> None:
        if state.get(logical_id) == "done":
            return
        if state.get(logical_id) == "visiting":
            raise DeployError(f"circular dependency through {logical_id}")
        state[logical_id] = "visiting"
        definition = resources[logical_id]
        depends_on = definition.get("DependsOn") or []
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        needed = references(definition.get("Properties") or {}) | set(depends_on)
        for dependency in sorted(needed):
            if dependency in resources:
                visit(dependency)
        state[logical_id] = "done"
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return ordered


def _markers(value: Any) -> list[Unemulated]:
    if isinstance(value, Unemulated):
        return [value]
    if isinstance(value, dict):
        return [marker for item in value.values() for marker in _markers(item)]
    if isinstance(value, list):
        return [marker for item in value for marker in _markers(item)]
    return []


def to_json(value: Any) -> str:
    """JSON for moto, with unemulated markers turned into ARNs that match nothing."""

    def default(item: Any) -> Any:
        if isinstance(item, Unemulated):
            return f"arn:{PARTITION}:localstage:::unemulated/{item.logical_id}"
        raise TypeError(f"not JSON serializable: {item!r}")

    return json.dumps(value, default=default)


# ---------------------------------------------------------------------- provisioners


@dataclass(frozen=True)
class Provisioner:
    create: Callable[[Deployment, Resource], None]
    emulation: str = "moto"


PROVISIONERS: dict[str, Provisioner] = {}


def provisioner(
    *resource_types: str, emulation: str = "moto"
) -> Callable[[Callable[[Deployment, Resource], None]], Callable[[Deployment, Resource], None]]:
    """Register ``create(deployment, resource)`` for resource types (modules add theirs)."""

    def register(
        create: Callable[[Deployment, Resource], None],
    ) -> Callable[[Deployment, Resource], None]:
        for resource_type in resource_types:
            PROVISIONERS[resource_type] = Provisioner(create, emulation)
        return create

    return register


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": tag["Key"], "Value": str(tag["Value"])} for tag in properties.get("Tags", [])]


@provisioner("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
def _table(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    name = props.get("TableName") or deployment.physical_name(resource, max_length=255)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    index_keys = {"IndexName", "KeySchema", "Projection", "ProvisionedThroughput"}
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            request[key] = [
                {k: v for k, v in index.items() if k in index_keys} for index in props[key]
            ]
    stream = props.get("StreamSpecification")
    if resource.resource_type == "AWS::DynamoDB::GlobalTable" and stream:
        stream = {"StreamViewType": stream["StreamViewType"]}
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    if props.get("Tags"):
        request["Tags"] = _tags(props)
    dynamodb = deployment.cloud.client("dynamodb")
    table = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    resource.physical_id = name
    resource.attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        resource.attributes["StreamArn"] = table["LatestStreamArn"]


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


@provisioner("AWS::SQS::Queue")
def _queue(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    fifo = str(props.get("FifoQueue", "")).lower() == "true"
    name = props.get("QueueName") or deployment.physical_name(
        resource, max_length=75 if fifo else 80
    ) + (".fifo" if fifo else "")
    attributes = {
        key: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        for key in _QUEUE_ATTRIBUTES
        if key in props
    }
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            attributes[key] = to_json(props[key])
    sqs = deployment.cloud.client("sqs")
    tags = {tag["Key"]: tag["Value"] for tag in _tags(props)}
    url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]
    resource.physical_id = url
    resource.attributes = {
        "Arn": _arn("sqs", name),
        "QueueName": name,
        "QueueUrl": url,
    }


@provisioner("AWS::SNS::Topic")
def _topic(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    fifo = str(props.get("FifoTopic", "")).lower() == "true"
    name = props.get("TopicName") or deployment.physical_name(resource, max_length=256) + (
        ".fifo" if fifo else ""
    )
    attributes: dict[str, str] = {
        key: str(props[key])
        for key in ("DisplayName", "KmsMasterKeyId", "ContentBasedDeduplication")
        if key in props
    }
    if fifo:
        attributes["FifoTopic"] = "true"
    sns = deployment.cloud.client("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in props.get("Subscription", []):
        sns.subscribe(
            TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
        )
    resource.physical_id = arn
    resource.attributes = {"TopicArn": arn, "TopicName": name}


@provisioner("AWS::SNS::Subscription")
def _subscription(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    attributes = {
        key: to_json(props[key]) if isinstance(props[key], dict) else str(props[key])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in props
    }
    response = deployment.cloud.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    resource.physical_id = response["SubscriptionArn"]
    resource.attributes = {"Arn": response["SubscriptionArn"]}


@provisioner("AWS::IAM::Role")
def _role(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    name = props.get("RoleName") or deployment.physical_name(resource, max_length=64)
    iam = deployment.cloud.client("iam")
    request: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": to_json(props["AssumeRolePolicyDocument"]),
        "Path": props.get("Path", "/"),
    }
    if props.get("Description"):
        request["Description"] = props["Description"]
    role = iam.create_role(**request)["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=to_json(policy["PolicyDocument"]),
        )
    for policy_arn in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    resource.physical_id = name
    resource.attributes = {"Arn": role["Arn"], "RoleId": role["RoleId"]}


@provisioner("AWS::IAM::Policy", "AWS::IAM::RolePolicy")
def _policy(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    iam = deployment.cloud.client("iam")
    document = to_json(props["PolicyDocument"])
    roles = props.get("Roles", []) + ([props["RoleName"]] if props.get("RoleName") else [])
    for role in roles:
        iam.put_role_policy(RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=document)
    for user in props.get("Users", []):
        iam.put_user_policy(UserName=user, PolicyName=props["PolicyName"], PolicyDocument=document)
    for group in props.get("Groups", []):
        iam.put_group_policy(
            GroupName=group, PolicyName=props["PolicyName"], PolicyDocument=document
        )
    resource.physical_id = f"{props['PolicyName'][:20]}-{deployment.short_id(12).upper()}"


@provisioner("AWS::IAM::ManagedPolicy")
def _managed_policy(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    iam = deployment.cloud.client("iam")
    name = props.get("ManagedPolicyName") or deployment.physical_name(resource, max_length=128)
    arn = iam.create_policy(
        PolicyName=name,
        Path=props.get("Path", "/"),
        PolicyDocument=to_json(props["PolicyDocument"]),
    )["Policy"]["Arn"]
    for role in props.get("Roles", []):
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    for user in props.get("Users", []):
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
    for group in props.get("Groups", []):
        iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    resource.physical_id = arn
    resource.attributes = {"PolicyArn": arn}


@provisioner("AWS::S3::Bucket")
def _bucket(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    name = props.get("BucketName") or deployment.physical_name(
        resource, max_length=63, lowercase=True
    )
    s3 = deployment.cloud.client("s3")
    s3.create_bucket(Bucket=name)
    versioning = props.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": versioning["Status"]}
        )
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
    # NotificationConfiguration stays in resource.properties: the S3 notification
    # module delivers events from it (moto itself never invokes functions).
    resource.physical_id = name
    resource.attributes = {
        "Arn": f"arn:{PARTITION}:s3:::{name}",
        "DomainName": f"{name}.s3.{URL_SUFFIX}",
        "RegionalDomainName": f"{name}.s3.{REGION}.{URL_SUFFIX}",
        "DualStackDomainName": f"{name}.s3.dualstack.{REGION}.{URL_SUFFIX}",
        "WebsiteURL": f"http://{name}.s3-website-{REGION}.{URL_SUFFIX}",
    }


@provisioner("AWS::Logs::LogGroup")
def _log_group(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    name = props.get("LogGroupName") or deployment.physical_name(resource, max_length=512)
    logs = deployment.cloud.client("logs")
    logs.create_log_group(logGroupName=name)
    if props.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    resource.physical_id = name
    resource.attributes = {"Arn": _arn("logs", f"log-group:{name}:*")}


@provisioner("AWS::Events::EventBus")
def _event_bus(deployment: Deployment, resource: Resource) -> None:
    name = resource.properties["Name"]
    arn = deployment.cloud.client("events").create_event_bus(Name=name)["EventBusArn"]
    resource.physical_id = name
    resource.attributes = {"Arn": arn, "Name": name}


@provisioner("AWS::Events::Rule")
def _event_rule(deployment: Deployment, resource: Resource) -> None:
    # Created on moto so handler code can describe it; delivery to targets is the job of
    # an EventBridge module (moto does not invoke functions).
    props = resource.properties
    name = props.get("Name") or deployment.physical_name(resource, max_length=64)
    request: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
    if props.get("EventBusName"):
        request["EventBusName"] = props["EventBusName"]
    if props.get("EventPattern"):
        request["EventPattern"] = to_json(props["EventPattern"])
    if props.get("ScheduleExpression"):
        request["ScheduleExpression"] = props["ScheduleExpression"]
    arn = deployment.cloud.client("events").put_rule(**request)["RuleArn"]
    resource.physical_id = name
    resource.attributes = {"Arn": arn}


@provisioner("AWS::Scheduler::ScheduleGroup")
def _schedule_group(deployment: Deployment, resource: Resource) -> None:
    name = resource.properties.get("Name") or deployment.physical_name(resource, max_length=64)
    arn = deployment.cloud.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
    resource.physical_id = name
    resource.attributes = {"Arn": arn}


# Bucket and queue policies are put on moto, where localstage/_moto_iam.py evaluates
# them with each request (localstage/README.md, IAM); topic policies are recorded only.
@provisioner("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy")
def _resource_policy(deployment: Deployment, resource: Resource) -> None:
    resource.physical_id = deployment.physical_name(resource)
    props = resource.properties
    document = to_json(props.get("PolicyDocument", {}))
    if resource.resource_type == "AWS::S3::BucketPolicy":
        deployment.cloud.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=document)
    elif resource.resource_type == "AWS::SQS::QueuePolicy":
        sqs = deployment.cloud.client("sqs")
        for url in props.get("Queues", []):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})


@provisioner("AWS::Lambda::Function", emulation="localstage")
def _function(deployment: Deployment, resource: Resource) -> None:
    name = resource.properties.get("FunctionName") or deployment.physical_name(
        resource, max_length=64
    )
    resource.physical_id = name
    resource.attributes = {
        "Arn": _arn("lambda", f"function:{name}"),
        "SnapStartResponse": {},
    }


@provisioner("AWS::Lambda::LayerVersion", emulation="localstage")
def _layer_version(deployment: Deployment, resource: Resource) -> None:
    # Ref is the version ARN; the stage puts the layer's asset on its functions' path.
    name = resource.properties.get("LayerName") or deployment.physical_name(resource, max_length=64)
    resource.physical_id = _arn("lambda", f"layer:{name}:1")
    resource.attributes = {"LayerVersionArn": resource.physical_id}


@provisioner(
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
    emulation="localstage",
)
def _lambda_record(deployment: Deployment, resource: Resource) -> None:
    resource.physical_id = str(uuid.UUID(int=deployment.random.getrandbits(128)))
    if resource.resource_type == "AWS::Lambda::EventSourceMapping":
        resource.attributes = {"Id": resource.physical_id}


@provisioner(
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    emulation="localstage",
)
def _api_record(deployment: Deployment, resource: Resource) -> None:
    props = resource.properties
    kind = resource.resource_type.rsplit("::", 1)[1]
    if kind == "RestApi":
        resource.physical_id = deployment.short_id()
        resource.attributes = {
            "RestApiId": resource.physical_id,
            "RootResourceId": deployment.short_id(),
        }
    elif kind == "Stage":
        resource.physical_id = props["StageName"]
    elif kind == "Model":
        resource.physical_id = props.get("Name") or resource.logical_id
    else:
        resource.physical_id = deployment.short_id(6)
        if kind == "Deployment":
            resource.attributes = {"DeploymentId": resource.physical_id}
        if kind == "RequestValidator":
            resource.attributes = {"RequestValidatorId": resource.physical_id}
        if kind == "Resource":
            resource.attributes = {"ResourceId": resource.physical_id}
