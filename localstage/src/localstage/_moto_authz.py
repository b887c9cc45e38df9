"""Inside the moto process: IAM checks at resource level, and SigV4 of bodyless requests.

Installed by :mod:`localstage.moto_patches` after :mod:`localstage._moto_iam`'s
evaluation, which :func:`resource_level_patches` wraps.
"""

from __future__ import annotations

import json
from typing import Any

from localstage._moto_patch import Patch


def resource_level_patches() -> list[Patch]:
    """Make moto's IAM checks closer to AWS's for what the patterns use.

    moto authorizes DynamoDB requests against the resource ``*`` only, so a policy
    scoped to a table (every least-privilege grant) would deny everything. DynamoDB
    requests naming one table (and index) are checked against that table's ARN;
    requests for which moto knows no resource (batch and transact operations, most
    services other than SQS, S3 and IAM) are checked at action level.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMPolicyStatement

    def table_arn(handler: Any) -> str:
        params = getattr(handler, "params", None) or {}
        table = params.get("TableName")
        if not isinstance(table, str) or not table:
            return "*"
        arn = (
            table
            if table.startswith("arn:")
            else (f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}")
        )
        index = params.get("IndexName")
        return f"{arn}/index/{index}" if isinstance(index, str) and index else arn

    check_element = IAMPolicyStatement._check_element_matches

    def matches(statement: Any, element: str, value: str) -> bool:
        if element == "Resource" and value == "*":
            return True
        return bool(check_element(statement, element, value))

    # IAM has no permissions for SQS's batch actions: each is authorized by its
    # single-message action (SendMessageBatch needs sqs:SendMessage).
    from moto.iam.access_control import IAMRequestBase

    initialize = IAMRequestBase.__init__

    def init(request: Any, *args: Any, **kwargs: Any) -> None:
        initialize(request, *args, **kwargs)
        request._action = BATCH_ACTIONS.get(request._action, request._action)

    # IAM has no TransactWriteItems/TransactGetItems actions either: each item is
    # authorized by its own action on its own table (Put -> dynamodb:PutItem, ...).
    check_action = IAMRequestBase.check_action_permitted

    def check_transaction(request: Any, resource: str) -> None:
        if request._action not in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            check_action(request, resource)
            return
        action = request._action
        try:
            for action_name, table in _transaction_items(
                request._body, request._region, request.account_id
            ):
                request._action = f"dynamodb:{action_name}"
                check_action(request, table)
        finally:
            request._action = action

    return [
        Patch(DynamoHandler, "_determine_resource", table_arn),
        Patch(IAMPolicyStatement, "_check_element_matches", matches),
        Patch(IAMRequestBase, "__init__", init),
        Patch(IAMRequestBase, "check_action_permitted", check_transaction),
    ]


TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _transaction_items(body: Any, region: str, account: str) -> list[tuple[str, str]]:
    """(IAM action, table ARN) of every item of a TransactWriteItems/TransactGetItems body."""
    try:
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
    except (TypeError, ValueError):
        return [("TransactWriteItems", "*")]
    checks: list[tuple[str, str]] = []
    for item in request.get("TransactItems") or []:
        for kind, operation in item.items():
            table = str(operation.get("TableName", "*"))
            arn = (
                table
                if table.startswith("arn:") or table == "*"
                else f"arn:aws:dynamodb:{region}:{account}:table/{table}"
            )
            checks.append((TRANSACTION_ACTIONS.get(kind, kind), arn))
    return checks or [("TransactWriteItems", "*")]


def bodyless_signature_patches() -> list[Patch]:
    """Verify SigV4 of GET/HEAD/DELETE requests of REST-JSON services as AWS does.

    moto rebuilds the signed request with its parsed query parameters (or, without
    any, the headers) as the body, so the payload hash differs from the client's
    empty one and every such request after ``enforce_iam`` fails with
    SignatureDoesNotMatch (Scheduler's GetSchedule, ListSchedules, DeleteSchedule, ...).
    S3 signs its payload hash in a header and is left alone.
    """
    from moto.iam.access_control import IAMRequestBase

    create = IAMRequestBase._create_aws_request

    def create_request(request: Any) -> Any:
        aws_request = create(request)
        if (
            request._method in ("GET", "HEAD", "DELETE")
            and not request._body
            and request._service != "s3"
        ):
            aws_request.data = b""
        return aws_request

    return [Patch(IAMRequestBase, "_create_aws_request", create_request)]


BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
