"""moto in the test's own process, with one of localstage's moto patches installed, and
roles whose temporary credentials act as a function's (imported by bare name, like
``tiny``).

The conformance tests of the patches (IAM conditions, S3 missing keys, the speed-ups)
check moto's answers directly, without booting a stage: these helpers set that up once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
import pytest

REGION = "us-east-1"

#: ``make(*statements)``: (ARN, ``client(service)``) of a new role allowed ``statements``.
RoleMaker = Callable[..., tuple[str, Callable[[str], Any]]]


@contextmanager
def in_process_moto(monkeypatch: pytest.MonkeyPatch, install: Callable[[], None]) -> Iterator[None]:
    """moto mocked in this process (``mock_aws``) after ``install()`` patched it, with
    test credentials in the environment."""
    from moto import mock_aws

    install()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


Answers = TypeVar("Answers")


def moto_then_patched(
    monkeypatch: pytest.MonkeyPatch, patches: Iterable[Any], run: Callable[[], Answers]
) -> dict[str, Answers]:
    """``run()`` on a fresh moto as it is, then on another with ``patches`` put on
    (``localstage._moto_patch.Patch`` values): ``{"moto": ..., "localstage": ...}``."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        on_moto = run()
    for patch in patches:
        monkeypatch.setattr(patch.owner, patch.name, patch.value)
    with mock_aws():
        patched = run()
    return {"moto": on_moto, "localstage": patched}


def dynamodb_with_table(table_name: str = "t", key: str = "pk") -> Any:
    """Inside :func:`in_process_moto`: a DynamoDB client and an on-demand table
    ``table_name`` keyed by the string ``key``."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@contextmanager
def iam_enforced_roles(
    bucket: str, key: str, body: bytes, *, principal: dict[str, Any], role_name: str
) -> Iterator[RoleMaker]:
    """Inside :func:`in_process_moto`: ``bucket`` holding ``key``, and a maker of roles
    (``principal`` may assume them; named ``role_name.format(n)``).

    The set-up and the roles are made as moto's unauthenticated admin; while the
    context is open, every other request is authorized against its caller's policies.
    """
    from moto.core.authorization import disable_iam_authentication, enable_iam_authentication

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    iam = boto3.client("iam", region_name=REGION)
    sts = boto3.client("sts", region_name=REGION)
    names = iter(range(100))

    def make(*statements: dict[str, Any]) -> tuple[str, Callable[[str], Any]]:
        with disable_iam_authentication():
            return _assumed_role(iam, sts, role_name.format(next(names)), principal, statements)

    with enable_iam_authentication():
        yield make


def _assumed_role(
    iam: Any,
    sts: Any,
    name: str,
    principal: dict[str, Any],
    statements: tuple[dict[str, Any], ...],
) -> tuple[str, Callable[[str], Any]]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="Default",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]

    def client(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    return str(arn), client
