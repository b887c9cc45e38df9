"""Conformance: requests to moto are authorized with IAM's rules (localstage/_moto_iam.py).

Each test states one AWS rule and checks localstage's moto against it with a role's
temporary credentials, as a function has them, and IAM enforced: the right value is
allowed, a wrong one is AccessDenied. moto alone treats a condition on a key the request
lacks as met, ignores bucket policies and never checks ``iam:PassRole``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from in_process_moto import RoleMaker, iam_enforced_roles, in_process_moto

from localstage import moto_patches

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "data-bucket"
OPERATORS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"


@pytest.fixture
def role(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoleMaker]:
    """``role(*statements)``: (ARN, ``client(service)``) of a new role allowed ``statements``."""
    with (
        in_process_moto(monkeypatch, moto_patches.install_iam),
        iam_enforced_roles(
            BUCKET, "incoming/a.json", b"{}", principal={"AWS": ACCOUNT}, role_name="Role{}"
        ) as make,
    ):
        yield make


def denied(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as error:
        # In-process moto answers JSON-protocol denials in XML (localstage's moto process
        # rewrites them): the code is then in the message.
        return "AccessDenied" in str(error.response["Error"])
    return False


def admin(call: Callable[[Any], Any], service: str) -> Any:
    """``call(client)`` with an unauthenticated admin client (set-up, not under test)."""
    from moto.core.authorization import disable_iam_authentication

    with disable_iam_authentication():
        return call(boto3.client(service, region_name=REGION))  # type: ignore[call-overload]


def test_s3_prefix_condition_on_list_objects(role: RoleMaker) -> None:
    (
        """``s3:prefix`` is the ListObjects request's prefix: a grant conditioned on
    ``StringLike s3:prefix incoming/*`` allows listing that prefix only
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html;
    """
        + OPERATORS
        + """)."""
    )
    _, client = role(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {"StringLike": {"s3:prefix": "incoming/*"}},
        }
    )
    s3 = client("s3")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/")["KeyCount"] == 1
    assert denied(lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="archive/"))
    # No prefix at all: the key is missing from the request, the condition is false.
    assert denied(lambda: s3.list_objects_v2(Bucket=BUCKET))


def test_resource_tag_condition_on_a_queue(role: RoleMaker) -> None:
    """``aws:ResourceTag/<key>`` is the tag of the resource acted on: a Deny conditioned on
    ``env = prod`` denies only tagged queues (a condition on a tag the queue lacks is
    false) (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag)."""
    prod, dev, untagged = admin(
        lambda sqs: [
            sqs.create_queue(QueueName=name, tags=tags)["QueueUrl"]
            for name, tags in (("prod", {"env": "prod"}), ("dev", {"env": "dev"}), ("u", {}))
        ],
        "sqs",
    )
    _, client = role(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}},
        },
    )
    queues = client("sqs")
    queues.send_message(QueueUrl=dev, MessageBody="x")
    queues.send_message(QueueUrl=untagged, MessageBody="x")
    assert denied(lambda: queues.send_message(QueueUrl=prod, MessageBody="x"))


def put_bucket_policy(document: dict[str, Any]) -> None:
    admin(lambda s3: s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document)), "s3")


def _plain_http(client: Any) -> Any:
    """A client whose requests say they came over plain HTTP (as a proxy would tell)."""

    def mark(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-Proto"] = "http"

    client.meta.events.register("before-sign.s3.*", mark)
    return client


def test_bucket_policy_denies_requests_without_tls(role: RoleMaker) -> None:
    """A bucket policy's Deny applies to every caller it names; the templates' buckets
    deny ``aws:SecureTransport = false``. SDK calls use HTTPS (true) and pass; a plain
    HTTP request is AccessDenied
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-securetransport)."""
    put_bucket_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
    _, client = role({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert client("s3").get_object(Bucket=BUCKET, Key="incoming/a.json")["Body"].read() == b"{}"
    insecure = _plain_http(client("s3"))
    assert denied(lambda: insecure.get_object(Bucket=BUCKET, Key="incoming/a.json"))


def test_bucket_policy_allow_grants_within_the_account(role: RoleMaker) -> None:
    """Within one account a bucket policy naming a role grants it access without an
    identity policy; other roles stay denied
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html)."""
    reader, client = role()
    _, other = role()
    put_bucket_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": reader},
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/*",
                }
            ],
        }
    )
    assert client("s3").get_object(Bucket=BUCKET, Key="incoming/a.json")["Body"].read() == b"{}"
    assert denied(lambda: other("s3").get_object(Bucket=BUCKET, Key="incoming/a.json"))


def _schedule(scheduler: Any, role_arn: str) -> Any:
    return scheduler.create_schedule(
        Name="once",
        ScheduleExpression="at(2030-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn", "RoleArn": role_arn},
    )


@pytest.mark.parametrize(
    ("passed_to", "allowed"),
    [("scheduler.amazonaws.com", True), ("lambda.amazonaws.com", False), (None, False)],
)
def test_create_schedule_needs_pass_role_to_scheduler(
    role: RoleMaker, passed_to: str | None, allowed: bool
) -> None:
    """CreateSchedule passes the target's role to Scheduler: the caller needs
    ``iam:PassRole`` on it, here conditioned on ``iam:PassedToService =
    scheduler.amazonaws.com`` (https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html)."""
    target_role, _ = role()
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "scheduler:CreateSchedule", "Resource": "*"}
    ]
    if passed_to:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": target_role,
                "Condition": {"StringEquals": {"iam:PassedToService": passed_to}},
            }
        )
    _, client = role(*statements)
    scheduler = client("scheduler")
    if allowed:
        assert _schedule(scheduler, target_role)["ScheduleArn"]
    else:
        assert denied(lambda: _schedule(scheduler, target_role))


@pytest.mark.parametrize(
    "only_orders",
    [
        {"StringEquals": {"events:source": "shop.orders"}},
        # The set-operator form the event-sourcing publisher's role uses
        {
            "ForAllValues:StringEquals": {"events:source": ["shop.orders"]},
            "Null": {"events:source": "false"},
        },
    ],
    ids=["string-equals", "for-all-values-and-not-null"],
)
def test_put_events_is_authorized_entry_by_entry_on_its_source(
    role: RoleMaker, only_orders: dict[str, Any]
) -> None:
    """``events:source`` is each PutEvents entry's ``Source``: a grant conditioned on it
    lets the caller publish that source only; another source's entry fails alone with
    ``NotAuthorizedForSourceException`` (PutEventsResultEntry in the EventBridge API
    Reference; https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html)
    and never reaches the bus, and a request with no entry it may publish is AccessDenied."""
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    _, client = role(
        dict(Effect="Allow", Action="events:PutEvents", Resource=bus, Condition=only_orders)
    )
    events = client("events")
    # Everything the bus gets from either source, in a queue (set-up, not under test)
    queue_url = admin(lambda sqs: sqs.create_queue(QueueName="shop-events")["QueueUrl"], "sqs")
    admin(
        lambda bridge: bridge.put_rule(
            Name="shop", EventPattern=json.dumps({"source": [{"prefix": "shop."}]})
        ),
        "events",
    )
    admin(
        lambda bridge: bridge.put_targets(
            Rule="shop",
            Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:shop-events"}],
        ),
        "events",
    )

    def entry(source: str) -> dict[str, str]:
        return {"Source": source, "DetailType": "OrderPlaced", "Detail": "{}"}

    # GIVEN a role that may publish source shop.orders only
    # WHEN it puts one entry of its source and one of another
    answer = events.put_events(Entries=[entry("shop.orders"), entry("shop.payments")])
    # THEN its own is accepted and the other fails alone, and never reaches the bus
    assert answer["FailedEntryCount"] == 1
    mine, other = answer["Entries"]
    assert "EventId" in mine and "ErrorCode" not in mine
    assert other["ErrorCode"] == "NotAuthorizedForSourceException" and "EventId" not in other
    received = admin(
        lambda sqs: sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10), "sqs"
    )
    assert [json.loads(m["Body"])["source"] for m in received["Messages"]] == ["shop.orders"]
    # WHEN every entry is another source's THEN the request is refused
    assert denied(lambda: events.put_events(Entries=[entry("shop.payments")]))
