"""Queries over a synthesized template's alarms, shared by the pattern infra tests."""

from __future__ import annotations

from typing import Any

from tests.infra.templates import alarm_properties, function_by_handler, of_type

#: Lambda's waits before the retries of a failed asynchronous event: 1 minute, then 2.
RETRY_WAITS_MS = (60_000, 120_000)
#: How much longer than its failed attempts explain an event may wait (blocks.monitoring).
EVENT_WAIT_SLACK_MS = 5 * 60_000


def _alarm_on(resources: dict[str, Any], metric_name: str) -> dict[str, Any]:
    (alarm,) = [a for a in alarm_properties(resources) if a.get("MetricName") == metric_name]
    return alarm


def assert_emitted_metric_alarmed(
    resources: dict[str, Any], metric_name: str, *, handlers: list[str]
) -> None:
    """One alarm fires as soon as the functions with ``handlers`` count anything in their
    custom metric ``metric_name``: their namespace and service dimension, above zero."""
    alarm = _alarm_on(resources, metric_name)
    for handler in handlers:
        _, function = function_by_handler(resources, handler)
        env = function["Properties"]["Environment"]["Variables"]
        assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"], handler
        assert alarm["Dimensions"] == [
            {"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}
        ], handler
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"


def assert_oldest_message_alarmed(resources: dict[str, Any], *, max_age_seconds: int) -> None:
    """The stack's work queue (the one with a redrive policy) alarms when its oldest
    message is older than ``max_age_seconds``."""
    (alarm,) = [
        a
        for a in alarm_properties(resources)
        for m in a.get("Metrics", [])
        if m.get("MetricStat", {}).get("Metric", {}).get("MetricName")
        == "ApproximateAgeOfOldestMessage"
    ]
    (stat,) = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    (dimension,) = stat["Metric"]["Dimensions"]
    queue_id = dimension["Value"]["Fn::GetAtt"][0]
    assert "RedrivePolicy" in resources[queue_id]["Properties"]
    assert (stat["Stat"], stat["Period"]) == ("Maximum", 300)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        max_age_seconds,
        "GreaterThanThreshold",
    )


def assert_event_wait_alarmed(resources: dict[str, Any], *, handler: str) -> None:
    """The asynchronously invoked function with ``handler`` alarms when an event waited
    longer than its failed attempts and Lambda's waits between them explain (by its own
    retry settings), plus slack, within its maximum event age."""
    function_id, function = function_by_handler(resources, handler)
    (alarm,) = [
        a
        for a in alarm_properties(resources)
        if a.get("MetricName") == "AsyncEventAge"
        and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    ]
    (retry,) = [
        c["Properties"]
        for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    retries = retry["MaximumRetryAttempts"]
    timeout_ms = function["Properties"]["Timeout"] * 1000
    explained_ms = retries * timeout_ms + sum(RETRY_WAITS_MS[:retries])
    assert (alarm["Namespace"], alarm["Statistic"], alarm["Period"]) == (
        "AWS/Lambda",
        "Maximum",
        300,
    )
    assert alarm["Threshold"] == explained_ms + EVENT_WAIT_SLACK_MS
    assert alarm["Threshold"] < retry["MaximumEventAgeInSeconds"] * 1000
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # No attempt is no wait: an event still queued shows in Throttles, not here
    assert alarm["TreatMissingData"] == "notBreaching"
