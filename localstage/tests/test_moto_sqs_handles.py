"""moto's SQS receipt handles, found by lookup instead of a scan, answer as before."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from in_process_moto import moto_then_patched

from localstage import _moto_sqs_handles


def _outcome(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def _handle_answers(sqs: Any) -> dict[str, Any]:
    """Every way a receipt handle is used, right and wrong, and what is left after."""
    queue = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(6)]
    )
    sqs.send_message(QueueUrl=other, MessageBody="theirs")
    first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=6)["Messages"]
    # Received again (visibility 0): each message now has a new handle and an old one.
    second = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=6)["Messages"]
    by_body = {m["Body"]: m["ReceiptHandle"] for m in first}
    again = {m["Body"]: m["ReceiptHandle"] for m in second}
    theirs = sqs.receive_message(QueueUrl=other)["Messages"][0]["ReceiptHandle"]
    answers = {
        "delete current": _outcome(
            lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=again["m0"])
        ),
        "delete old": _outcome(
            lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=by_body["m1"])
        ),
        "delete twice": _outcome(
            lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=again["m0"])
        ),
        "delete old after current": _outcome(
            lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=by_body["m0"])
        ),
        "delete unknown": _outcome(
            lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-handle")
        ),
        "delete another queue's": _outcome(
            lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=theirs)
        ),
        "batch": sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": "a", "ReceiptHandle": again["m2"]},
                {"Id": "b", "ReceiptHandle": "not-a-handle"},
                {"Id": "c", "ReceiptHandle": by_body["m3"]},
            ],
        ),
        "visibility current": _outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=again["m4"], VisibilityTimeout=60
            )
        ),
        "visibility old": _outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=by_body["m5"], VisibilityTimeout=60
            )
        ),
        "visibility over 12 h": _outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=again["m5"], VisibilityTimeout=43201
            )
        ),
        "visibility unknown": _outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle="not-a-handle", VisibilityTimeout=5
            )
        ),
        "visibility of a deleted message": _outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=again["m0"], VisibilityTimeout=5
            )
        ),
    }
    answers["batch"] = {
        "Successful": sorted(e["Id"] for e in answers["batch"].get("Successful", [])),
        "Failed": sorted((e["Id"], e["Code"]) for e in answers["batch"].get("Failed", [])),
    }
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    answers["left"] = (
        counts["ApproximateNumberOfMessages"],
        counts["ApproximateNumberOfMessagesNotVisible"],
        sorted(
            m["Body"]
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        ),
    )
    return answers


def test_receipt_handles_found_by_lookup_give_moto_s_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two queues, one with six messages received twice (an old and a current
    # handle each), on moto's scan, then with handles looked up
    # WHEN handles are used to delete and to change visibility, rightly and not
    by = moto_then_patched(
        monkeypatch,
        _moto_sqs_handles.patches(),
        lambda: _handle_answers(boto3.client("sqs", region_name="us-east-1")),
    )

    # THEN every answer, refusal and the messages left are what moto's own code gives
    assert by["moto"]["delete unknown"] == "ReceiptHandleIsInvalid"
    assert by["moto"]["delete old"] == "ok"
    assert by["localstage"] == by["moto"]
