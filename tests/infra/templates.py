"""Queries over a synthesized template's ``Resources``, shared by the pattern infra tests.

They find resources by what they are (type, handler), never by logical ID.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: What every pattern's data table is: on demand, encrypted, expiring items at ``expires_at``.
EXPIRING_TABLE_PROPERTIES: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "SSESpecification": {"SSEEnabled": True},
    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
}


def as_list(value: Any) -> list[Any]:
    """IAM's "one or many": a single action or resource as a one-item list."""
    return value if isinstance(value, list) else [value]


def of_type(resources: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    """Every resource of ``type_name``, by logical ID."""
    return {k: v for k, v in resources.items() if v["Type"] == type_name}


def only(resources: dict[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``type_name`` (fails if there are none or several)."""
    found = of_type(resources, type_name)
    assert len(found) == 1, (type_name, list(found))
    return next(iter(found.items()))


def function_by_handler(resources: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    """The one Lambda function whose ``Handler`` is ``handler``."""
    matches = [
        (k, v)
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, handler
    return matches[0]


def role_of(resources: dict[str, Any], handler: str) -> str:
    """Logical ID of the execution role of the function with ``handler``."""
    _, function = function_by_handler(resources, handler)
    role: str = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def function_role_ids(resources: dict[str, Any]) -> list[str]:
    """Logical IDs of the execution roles of every Lambda function, one per function."""
    return [
        function["Properties"]["Role"]["Fn::GetAtt"][0]
        for function in of_type(resources, "AWS::Lambda::Function").values()
    ]


def policy_statements(resources: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy of the role (in it or attached to it)."""
    statements: list[dict[str, Any]] = []
    for policy in resources[role_logical_id]["Properties"].get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def role_statements(resources: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    """The policy statements of the role of the function with ``handler``."""
    return policy_statements(resources, role_of(resources, handler))


def alarm_properties(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The properties of every CloudWatch alarm."""
    return [alarm["Properties"] for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()]


def alarmed_metric_names(alarms: list[dict[str, Any]]) -> set[str]:
    """The metric names that the (metric-math) alarms watch through a ``MetricStat``."""
    return {
        metric["MetricStat"]["Metric"]["MetricName"]
        for alarm in alarms
        for metric in alarm.get("Metrics", [])
        if "MetricStat" in metric
    }


XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
#: What a stream consumer's role is granted on ``"*"`` (``blocks.stream.grant_stream_read``).
STREAM_LIST_ACTIONS = {"dynamodb:ListStreams"}
#: The only statements a policy may grant on ``"*"``: actions with no resource type.
STAR_RESOURCE_GRANTS = (XRAY_ACTIONS, STREAM_LIST_ACTIONS)


def assert_no_wildcard_actions(resources: dict[str, Any]) -> None:
    """No policy grants a ``*`` action, and a statement on ``"*"`` grants only the X-Ray
    writes or ``dynamodb:ListStreams`` (neither has a resource type)."""
    for policy_id, policy in of_type(resources, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = as_list(statement["Action"])
            assert not any("*" in action for action in actions), policy_id
            if statement["Resource"] == "*":
                assert set(actions) in STAR_RESOURCE_GRANTS, policy_id


#: Actions the Service Authorization Reference lists with no resource type, among those a
#: stage could grant: only ``"Resource": "*"`` grants them, and a statement naming an ARN
#: never matches (e.g. ``dynamodb:ListStreams``,
#: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
RESOURCELESS_ACTIONS = frozenset(
    {
        "dynamodb:ListStreams",
        "dynamodb:ListTables",
        "events:ListEventBuses",
        "events:ListRules",
        "lambda:ListEventSourceMappings",
        "lambda:ListFunctions",
        "scheduler:ListSchedules",
        "sqs:ListQueues",
        *XRAY_ACTIONS,
    }
)


def all_policy_statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every identity policy: inline in a role, or a policy resource."""
    found: list[tuple[str, dict[str, Any]]] = []
    for role_id, role in of_type(resources, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found += [(role_id, s) for s in policy["PolicyDocument"]["Statement"]]
    for policy_id, policy in of_type(resources, "AWS::IAM::Policy").items():
        found += [(policy_id, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    return found


def assert_resourceless_actions_only_on_star(resources: dict[str, Any]) -> None:
    """No statement grants an action that has no resource type on anything but ``"*"``."""
    for where, statement in all_policy_statements(resources):
        if statement["Effect"] != "Allow" or statement.get("Resource") == "*":
            continue
        dead = set(as_list(statement["Action"])) & RESOURCELESS_ACTIONS
        assert not dead, f"{where}: {sorted(dead)} on {statement['Resource']} never match"


def api_methods(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The properties of every API Gateway method, each checked to need IAM and validate.

    Every method of every pattern API is IAM-authorized and has a request validator:
    this fails on one that is not.
    """
    methods = [
        method["Properties"] for method in of_type(resources, "AWS::ApiGateway::Method").values()
    ]
    for method in methods:
        assert method["AuthorizationType"] == "AWS_IAM", method
        assert "RequestValidatorId" in method, method
    return methods


def request_schema(resources: dict[str, Any], method: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a method's request model (``$default``: every Content-Type)."""
    model_id = method["RequestModels"]["$default"]["Ref"]
    schema: dict[str, Any] = resources[model_id]["Properties"]["Schema"]
    return schema


class TemplateContext:
    """Enough of a deployment to resolve a template's intrinsics as CloudFormation would.

    For checks that depend on where a stack is deployed (partition, region), e.g.
    ``localstage.intrinsics.resolve(value, TemplateContext(template, partition="aws-cn"))``.
    """

    def __init__(
        self, template: dict[str, Any], *, partition: str = "aws", region: str = "eu-west-1"
    ) -> None:
        self.template = template
        self.partition = partition
        self.region = region
        self.account_id = "123456789012"
        self.url_suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        self.stack_name = "stack"
        self.stack_id = f"arn:{partition}:cloudformation:{region}:{self.account_id}:stack/stack/1"

    def find_in_map(self, map_name: str, top_key: str, second_key: str) -> Any:
        # CloudFormation refuses the template before it creates anything.
        return self.template["Mappings"][map_name][top_key][second_key]

    def ref(self, logical_id: str) -> Any:
        return f"<{logical_id}>"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"<{logical_id}.{attribute}>"

    def condition(self, name: str) -> bool:
        raise NotImplementedError(name)

    def stack_output(self, stack_name: str, output_name: str, region: str) -> Any:
        raise NotImplementedError(output_name)

    def import_value(self, export_name: str) -> Any:
        raise NotImplementedError(export_name)

    def parameter(self, name: str) -> Any:
        raise KeyError(name)


#: The failure modes every pattern with an API and a dead-letter queue alarms on (the
#: shared monitoring block): Lambda errors and throttles, DLQ depth, API 5xx and latency.
STANDARD_ALARM_METRICS = frozenset(
    {"Errors", "Throttles", "ApproximateNumberOfMessagesVisible", "5XXError", "Latency"}
)
#: A table's throttling metrics, as the monitoring block alarms on them.
TABLE_THROTTLE_METRICS = frozenset({"ReadThrottleEvents", "WriteThrottleEvents"})


def assert_alarm_names_start_with(alarms: list[dict[str, Any]], prefix: str) -> None:
    """Every alarm is named after its stage and stack (``pr-1-FanOutFanIn-...``)."""
    for alarm in alarms:
        assert alarm["AlarmName"].startswith(prefix), alarm["AlarmName"]


def mapping_of(resources: dict[str, Any], handler: str) -> dict[str, Any]:
    """The properties of the one event source mapping of the function with ``handler``."""
    function_id, _ = function_by_handler(resources, handler)
    (mapping,) = [
        m["Properties"]
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return mapping


def assert_work_queue_redrives_to_a_kept_dlq(
    resources: dict[str, Any], *, min_visibility_seconds: int
) -> None:
    """The stack's one work queue redrives to a DLQ after 5 receives (Lambda's guidance
    for a queue an event source mapping reads: at least 5), stays invisible for
    ``min_visibility_seconds`` (six consumer timeouts, AWS's advice), its DLQ keeps
    messages 14 days, and every queue is encrypted."""
    queues = of_type(resources, "AWS::SQS::Queue")
    (work,) = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    props = work["Properties"]
    dlq_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert props["RedrivePolicy"]["maxReceiveCount"] == 5
    assert props["VisibilityTimeout"] >= min_visibility_seconds
    assert queues[dlq_id]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def assert_outputs_and_table_keys(
    template: dict[str, Any], outputs: set[str], table_keys: list[dict[str, str]]
) -> None:
    """The stack's outputs (scenarios, e2e tests and operators read them by name) and
    each table's key schema (attribute: ``HASH``/``RANGE``), as its store reads them."""
    tables = of_type(template["Resources"], "AWS::DynamoDB::Table").values()
    keys = [
        {k["AttributeName"]: k["KeyType"] for k in t["Properties"]["KeySchema"]} for t in tables
    ]
    assert set(template["Outputs"]) == outputs
    assert sorted(keys, key=str) == sorted(table_keys, key=str)


def assert_transaction_tables_alarmed(template: dict[str, Any]) -> None:
    """Every table of a stack written with TransactWriteItems has an alarm on the system
    errors of those transactions, which the standard system-error alarm leaves out."""
    resources = template["Resources"]
    transaction = {"Name": "Operation", "Value": "TransactWriteItems"}
    alarmed = []
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        dimensions = properties.get("Dimensions", [])
        if properties.get("MetricName") == "SystemErrors" and transaction in dimensions:
            (table,) = [d["Value"]["Ref"] for d in dimensions if d["Name"] == "TableName"]
            alarmed.append(table)
    assert sorted(alarmed) == sorted(of_type(resources, "AWS::DynamoDB::Table"))


def dashboard_metrics(resources: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every metric the stack's dashboard graphs, as ``(namespace, name, dimension name,
    dimension value, ...)``; a value the template resolves at deploy time reads as the
    intrinsic it is (``{"Fn::GetAtt": [...]}``)."""
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    intrinsics = [p for p in parts if not isinstance(p, str)]
    # Each intrinsic sits inside a JSON string of the body: a marker holds its place.
    joined = "".join(p if isinstance(p, str) else f"@intrinsic{intrinsics.index(p)}" for p in parts)

    def value(text: Any) -> Any:
        marker = re.fullmatch(r"@intrinsic(\d+)", text) if isinstance(text, str) else None
        return intrinsics[int(marker.group(1))] if marker else text

    return [
        tuple(value(v) for v in row if not isinstance(v, dict))
        for widget in json.loads(joined)["widgets"]
        for row in widget.get("properties", {}).get("metrics", [])
    ]


def assert_fair_groups_graphed(resources: dict[str, Any]) -> None:
    """The dashboard graphs the fair-queue metrics of the stack's one work queue (the
    queue with a redrive policy): its noisy groups and its quiet groups' oldest message."""
    (queue_id,) = [
        logical_id
        for logical_id, queue in of_type(resources, "AWS::SQS::Queue").items()
        if "RedrivePolicy" in queue["Properties"]
    ]
    queue_name = {"Fn::GetAtt": [queue_id, "QueueName"]}
    graphed = set(map(json.dumps, dashboard_metrics(resources)))
    for metric_name in (
        "ApproximateNumberOfNoisyGroups",
        "ApproximateAgeOfOldestMessageInQuietGroups",
    ):
        assert json.dumps(("AWS/SQS", metric_name, "QueueName", queue_name)) in graphed
