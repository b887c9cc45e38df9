"""Conformance: S3's answer to a read of a missing key depends on s3:ListBucket.

Each test states one rule of AWS's documented behaviour and checks localstage's moto
(``localstage/_moto_s3_access.py``, installed in moto's process) against it, with a
role's temporary credentials as a function has them and IAM enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from in_process_moto import iam_enforced_roles, in_process_moto

from localstage import moto_patches

BUCKET = "input-bucket"
EXISTING = "incoming/present.ndjson"
MISSING = "incoming/deleted.ndjson"
REGION = "us-east-1"
GET_OBJECT_ONLY = {
    "Effect": "Allow",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/incoming/*",
}
LIST_BUCKET = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}

ClientFor = Callable[..., Any]


@pytest.fixture
def client_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientFor]:
    """``client_for(*statements)``: an S3 client of a new role allowed ``statements``.

    moto runs in this process with localstage's rule installed; IAM is enforced only
    inside the test (the set-up runs as moto's unauthenticated admin).
    """
    with (
        in_process_moto(monkeypatch, moto_patches.install_s3_missing_keys),
        iam_enforced_roles(
            BUCKET,
            EXISTING,
            b"{}\n",
            principal={"Service": "lambda.amazonaws.com"},
            role_name="Function{}Role",
        ) as make,
    ):

        def client(*statements: dict[str, Any]) -> Any:
            _, client_of = make(*statements)
            return client_of("s3")

        yield client


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], str(response["Error"]["Code"])


GET_OBJECT_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html"
HEAD_OBJECT_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html"


def test_get_of_a_missing_key_without_list_bucket_is_403_access_denied(
    client_for: ClientFor,
) -> None:
    """AWS: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP
    status code 403 Access Denied error" for a GetObject of a key that does not exist
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions)."""
    # GIVEN a role that may only GetObject under incoming/
    s3 = client_for(GET_OBJECT_ONLY)

    # WHEN it reads a key that does not exist (with a ranged, conditional GET, as the
    # recursive processor does)
    error = error_of(
        lambda: s3.get_object(Bucket=BUCKET, Key=MISSING, Range="bytes=0-9", IfMatch='"x"')
    )

    # THEN S3 refuses, telling it nothing about the key
    assert error == (403, "AccessDenied")
    # AND an existing key still reads
    assert s3.get_object(Bucket=BUCKET, Key=EXISTING)["Body"].read() == b"{}\n"


def test_get_of_a_missing_key_with_list_bucket_is_404_no_such_key(client_for: ClientFor) -> None:
    """AWS: "If you have the s3:ListBucket permission on the bucket, Amazon S3 returns an
    HTTP status code 404 Not Found error" (NoSuchKey) for a GetObject of a missing key
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions)."""
    # GIVEN a role that may also list the bucket
    s3 = client_for(GET_OBJECT_ONLY, LIST_BUCKET)

    # WHEN it reads a key that does not exist THEN S3 says the key does not exist
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key=MISSING)) == (404, "NoSuchKey")


def test_head_of_a_missing_key_is_403_without_list_bucket_and_404_with_it(
    client_for: ClientFor,
) -> None:
    """AWS: HeadObject of a missing key is "403 Forbidden" without s3:ListBucket on the
    bucket and "404 Not Found" with it; a HEAD response has no body, so the error code is
    the status (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html,
    Permissions)."""
    # GIVEN a role without s3:ListBucket and one with it
    without, with_list = client_for(GET_OBJECT_ONLY), client_for(GET_OBJECT_ONLY, LIST_BUCKET)

    # WHEN each asks for a missing key's metadata THEN only the one that may list learns
    # that it is missing
    assert error_of(lambda: without.head_object(Bucket=BUCKET, Key=MISSING)) == (403, "403")
    assert error_of(lambda: with_list.head_object(Bucket=BUCKET, Key=MISSING)) == (404, "404")


def test_list_bucket_denied_explicitly_is_not_list_bucket(client_for: ClientFor) -> None:
    """IAM: an explicit Deny overrides any Allow
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
    so a role whose s3:ListBucket is denied gets 403 for a missing key
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)."""
    # GIVEN a role allowed s3:ListBucket and denied it too
    s3 = client_for(GET_OBJECT_ONLY, LIST_BUCKET, {**LIST_BUCKET, "Effect": "Deny"})

    # WHEN it reads a missing key THEN the answer is 403
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key=MISSING)) == (403, "AccessDenied")


def test_list_bucket_on_another_bucket_does_not_count(client_for: ClientFor) -> None:
    """AWS asks for s3:ListBucket "on the bucket" the object is read from
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions)."""
    # GIVEN a role that may list another bucket only
    s3 = client_for(GET_OBJECT_ONLY, {**LIST_BUCKET, "Resource": "arn:aws:s3:::other-bucket"})

    # WHEN it reads a missing key of this bucket THEN the answer is 403
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key=MISSING)) == (403, "AccessDenied")


def test_a_list_bucket_grant_conditioned_on_s3_prefix_does_not_count(
    client_for: ClientFor,
) -> None:
    """IAM: "If the key that you specify in a policy condition is not present in the
    request context, the values do not match and the condition is false"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
    A GetObject request has no prefix parameter, and AWS does not document that the
    ListBucket check of a GetObject sees an ``s3:prefix``; localstage takes the
    conservative reading: such a grant does not turn 403 into 404."""
    # GIVEN a role allowed s3:ListBucket only for listings of the incoming/ prefix
    conditional = {**LIST_BUCKET, "Condition": {"StringLike": {"s3:prefix": ["incoming/*"]}}}
    s3 = client_for(GET_OBJECT_ONLY, conditional)

    # WHEN it reads a missing key under that prefix THEN the answer is still 403
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key=MISSING)) == (403, "AccessDenied")
