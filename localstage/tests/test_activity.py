"""Writes that may give a poller work wake the pollers of that service, and nothing else does."""

from __future__ import annotations

import pytest

from localstage._moto_activity import work_for
from localstage.activity import Wakeup
from localstage.stage import LocalStage
from localstage.target import LocalTarget

#: Generous: a wake takes one long-poll round trip; this only bounds a failing test.
WOKEN_WITHIN_SECONDS = 10.0


def _signed(service: str, **environ: str) -> dict[str, str]:
    authorization = f"AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/{service}/aws4_request"
    return {"HTTP_AUTHORIZATION": authorization, "PATH_INFO": "/", **environ}


@pytest.mark.parametrize(
    ("environ", "service"),
    [
        (_signed("sqs", HTTP_X_AMZ_TARGET="AmazonSQS.SendMessageBatch"), "sqs"),
        (_signed("sqs", HTTP_X_AMZ_TARGET="AmazonSQS.ReceiveMessage"), None),
        (_signed("dynamodb", HTTP_X_AMZ_TARGET="DynamoDB_20120810.TransactWriteItems"), "dynamodb"),
        (_signed("dynamodb", HTTP_X_AMZ_TARGET="DynamoDB_20120810.Query"), None),
        (_signed("scheduler", REQUEST_METHOD="POST", PATH_INFO="/schedules/s"), "scheduler"),
        (_signed("scheduler", REQUEST_METHOD="PUT", PATH_INFO="/schedules/s"), "scheduler"),
        (_signed("scheduler", REQUEST_METHOD="DELETE", PATH_INFO="/schedules/s"), None),
        (_signed("scheduler", REQUEST_METHOD="GET", PATH_INFO="/schedules"), None),
        (_signed("s3", REQUEST_METHOD="PUT", PATH_INFO="/bucket/key"), None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_only_writes_a_poller_could_see_are_work(environ: dict[str, str], service: str) -> None:
    assert work_for(environ) == service


def test_a_wakeup_set_later_wakes_its_waiter() -> None:
    # GIVEN a wakeup set to go off shortly
    wakeup = Wakeup()
    wakeup.set_after(0.05)

    # THEN a waiter is woken (and not at once: nothing had set it yet)
    assert wakeup.wait(0) is False
    assert wakeup.wait(WOKEN_WITHIN_SECONDS) is True


def test_a_send_wakes_the_sqs_pollers(tiny_stage: LocalStage) -> None:
    # GIVEN a fresh wakeup for SQS pollers (which requests are work: the test above)
    wakeup = tiny_stage.activity.wakeup("sqs")
    target = LocalTarget(tiny_stage)

    # WHEN a message is sent to a queue
    target.send_message(target.output("test-Tiny", "QueueUrl"), "hello")

    # THEN the wakeup goes off
    assert wakeup.wait(WOKEN_WITHIN_SECONDS) is True


def test_a_table_write_wakes_the_stream_pollers(tiny_stage: LocalStage) -> None:
    # GIVEN a fresh wakeup for DynamoDB stream pollers
    wakeup = tiny_stage.activity.wakeup("dynamodb")
    table = LocalTarget(tiny_stage).output("test-Tiny", "TableName")

    # WHEN an item is written
    tiny_stage.cloud.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "woken"}})

    # THEN the wakeup goes off
    assert wakeup.wait(WOKEN_WITHIN_SECONDS) is True
