"""What an AWS service acting for the stage may do: resource policies for service principals.

When S3, EventBridge or Scheduler deliver to a function, or EventBridge sends to a
queue, no role of the stage makes the call: the service does, as a service principal,
and the target's resource policy decides, with ``aws:SourceArn`` (the bucket, rule or
schedule group) and ``aws:SourceAccount`` in the request context. These helpers build
those policies from the deployed templates and evaluate them with
:mod:`localstage.iam_policy`.

- A function's resource policy is the set of its ``AWS::Lambda::Permission`` resources,
  each one statement as Lambda stores it: ``Principal`` the service (or account),
  ``SourceArn`` as an ``ArnLike`` condition on ``AWS:SourceArn`` and ``SourceAccount``
  as ``StringEquals`` on ``AWS:SourceAccount`` (Lambda Developer Guide, "Working with
  resource-based IAM policies in Lambda", and the AddPermission API reference).
- A queue's resource policy is its ``Policy`` attribute in moto (the template's
  ``AWS::SQS::QueuePolicy``, or one set at run time); EventBridge needs
  it to allow ``events.amazonaws.com`` ``sqs:SendMessage`` (EventBridge User Guide,
  "Using resource-based policies for Amazon EventBridge", Amazon SQS permissions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localstage.cloud import ACCOUNT_ID
from localstage.iam_policy import Decision, Principal, evaluate

if TYPE_CHECKING:
    from localstage.stage_view import StageView


def lambda_permission_statement(props: dict[str, Any], function_arn: str) -> dict[str, Any]:
    """One ``AWS::Lambda::Permission``'s properties as the policy statement Lambda stores."""
    principal = str(props.get("Principal", ""))
    condition: dict[str, dict[str, str]] = {}
    if props.get("SourceArn") is not None:
        condition["ArnLike"] = {"AWS:SourceArn": str(props["SourceArn"])}
    if props.get("SourceAccount") is not None:
        condition["StringEquals"] = {"AWS:SourceAccount": str(props["SourceAccount"])}
    return {
        "Effect": "Allow",
        "Principal": {"Service": principal} if "." in principal else {"AWS": principal},
        "Action": str(props.get("Action", "")),
        "Resource": [function_arn, f"{function_arn}:*"],
        **({"Condition": condition} if condition else {}),
    }


def function_policy(stage: StageView, function_arn: str, function_name: str) -> dict[str, Any]:
    """The resource policy of a function: its ``AWS::Lambda::Permission`` resources."""
    statements = []
    for permission in stage.deployment.resources("AWS::Lambda::Permission"):
        props = permission.properties
        named = str(props.get("FunctionName", ""))
        if named in (function_arn, function_name) or named.startswith(function_arn + ":"):
            statements.append(lambda_permission_statement(props, function_arn))
    return {"Version": "2012-10-17", "Statement": statements}


def service_may_invoke(
    stage: StageView,
    function_arn: str,
    function_name: str,
    service: str,
    source_arn: str,
    source_account: str = ACCOUNT_ID,
) -> bool:
    """Whether ``service``, acting for ``source_arn``, may invoke the function."""
    decision = evaluate(
        [function_policy(stage, function_arn, function_name)],
        "lambda:InvokeFunction",
        function_arn,
        _service_context(source_arn, source_account),
        principal=Principal(service=service),
    )
    return decision is Decision.ALLOW


def service_may_send(
    stage: StageView, queue_url: str, queue_arn: str, service: str, source_arn: str
) -> bool:
    """Whether ``service`` (for ``source_arn``) may ``sqs:SendMessage`` to the queue.

    The policy is the queue's current one in moto (the template's, or one set at run
    time with ``SetQueueAttributes``, as tests that observe a bus do).
    """
    attributes = stage.cloud.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["Policy"]
    )
    policy = (attributes.get("Attributes") or {}).get("Policy")
    decision = evaluate(
        [policy] if policy else [],
        "sqs:SendMessage",
        queue_arn,
        _service_context(source_arn, ACCOUNT_ID),
        principal=Principal(service=service),
    )
    return decision is Decision.ALLOW


def _service_context(source_arn: str, source_account: str) -> dict[str, Any]:
    # A service's request to another service goes over TLS.
    return {
        "aws:SourceArn": source_arn,
        "aws:SourceAccount": source_account,
        "aws:SecureTransport": True,
    }
