"""Conformance: IAM's policy evaluation rules, on localstage's evaluator (iam_policy.py).

Each test states one rule from the IAM User Guide and checks that a request with the
right value is allowed and one with a wrong (or missing) value is denied. The wiring
of the evaluator into moto and the stage is tested in ``test_iam_wiring.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from localstage.iam_policy import Decision, Principal, UnsupportedConditionError, combine, evaluate

BUCKET = "arn:aws:s3:::bucket"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:queue"
RULE = "arn:aws:events:us-east-1:123456789012:rule/bus/rule"
ROLE = "arn:aws:iam::123456789012:role/SchedulerRole"
OPERATORS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str = "*", resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = "*", resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_explicit_deny_wins_over_allow() -> None:
    """An explicit Deny overrides any Allow; without an Allow the request is implicitly
    denied (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html)."""
    documents = [policy(allow("s3:*")), policy(deny("s3:DeleteObject"))]
    assert evaluate(documents, "s3:GetObject", BUCKET) is Decision.ALLOW
    assert evaluate(documents, "s3:DeleteObject", BUCKET) is Decision.DENY
    assert evaluate(documents, "sqs:SendMessage", QUEUE) is Decision.IMPLICIT_DENY


def test_same_account_identity_and_resource_policies_are_a_union() -> None:
    """Within one account an Allow in either the identity or the resource policy allows;
    a Deny in either denies (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html)."""
    assert combine(Decision.IMPLICIT_DENY, Decision.ALLOW) is Decision.ALLOW
    assert combine(Decision.ALLOW, Decision.DENY) is Decision.DENY
    assert combine(Decision.IMPLICIT_DENY, Decision.IMPLICIT_DENY) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_resources_case_sensitively() -> None:
    """Action names are case-insensitive, ARNs case-sensitive; ``*`` and ``?`` are
    wildcards (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html)."""
    documents = [policy(allow("S3:get*", "arn:aws:s3:::bucket/in?/*"))]
    assert evaluate(documents, "s3:GetObject", "arn:aws:s3:::bucket/in1/a/b") is Decision.ALLOW
    assert evaluate(documents, "s3:GetObject", "arn:aws:s3:::Bucket/in1/a") is not Decision.ALLOW
    assert evaluate(documents, "s3:GetObject", "arn:aws:s3:::bucket/in12/a") is not Decision.ALLOW


def test_not_action_and_not_resource() -> None:
    """NotAction/NotResource match everything except what they list
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html)."""
    documents = [policy({"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": QUEUE})]
    assert evaluate(documents, "s3:GetObject", BUCKET) is Decision.ALLOW
    assert evaluate(documents, "s3:DeleteObject", BUCKET) is Decision.IMPLICIT_DENY
    assert evaluate(documents, "sqs:SendMessage", QUEUE) is Decision.IMPLICIT_DENY


def test_condition_on_a_missing_key_is_false() -> None:
    (
        """A condition on a key absent from the request context is false: a conditional
    Allow does not allow and a conditional Deny does not deny ("""
        + OPERATORS
        + ")."
    )
    conditional = {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert evaluate([policy(allow(Condition=conditional))], "s3:GetObject", BUCKET, {}) is (
        Decision.IMPLICIT_DENY
    )
    documents = [policy(allow(), deny(Condition=conditional))]
    assert evaluate(documents, "s3:GetObject", BUCKET, {}) is Decision.ALLOW


def test_negated_operator_on_a_missing_key_is_true() -> None:
    (
        """A negated operator (StringNotEquals, ArnNotLike...) on an absent key is true
    ("""
        + OPERATORS
        + ")."
    )
    documents = [policy(allow(), deny(Condition={"StringNotEquals": {"aws:SourceAccount": "1"}}))]
    assert evaluate(documents, "s3:GetObject", BUCKET, {}) is Decision.DENY
    assert evaluate(documents, "s3:GetObject", BUCKET, {"aws:SourceAccount": "1"}) is (
        Decision.ALLOW
    )


def test_if_exists_and_null() -> None:
    (
        """``...IfExists`` holds when the key is absent; ``Null: true`` holds only when it
    is absent ("""
        + OPERATORS
        + ")."
    )
    documents = [policy(allow(Condition={"StringEqualsIfExists": {"s3:prefix": "in/"}}))]
    assert evaluate(documents, "s3:ListBucket", BUCKET, {}) is Decision.ALLOW
    assert evaluate(documents, "s3:ListBucket", BUCKET, {"s3:prefix": "out/"}) is (
        Decision.IMPLICIT_DENY
    )
    null = [policy(allow(Condition={"Null": {"aws:ResourceTag/team": "false"}}))]
    assert evaluate(null, "s3:GetObject", BUCKET, {"aws:ResourceTag/team": "a"}) is Decision.ALLOW
    assert evaluate(null, "s3:GetObject", BUCKET, {}) is Decision.IMPLICIT_DENY


def test_condition_keys_are_case_insensitive_values_case_sensitive() -> None:
    """Condition key names are case-insensitive; StringEquals values are case-sensitive
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html)."""
    documents = [policy(allow(Condition={"StringEquals": {"AWS:SourceAccount": "abc"}}))]
    assert evaluate(documents, "s3:GetObject", BUCKET, {"aws:sourceaccount": "abc"}) is (
        Decision.ALLOW
    )
    assert evaluate(documents, "s3:GetObject", BUCKET, {"aws:SourceAccount": "ABC"}) is (
        Decision.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("condition", "right", "wrong"),
    [
        (
            {"StringLike": {"s3:prefix": ["incoming/*"]}},
            {"s3:prefix": "incoming/a"},
            {"s3:prefix": "x/a"},
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/bus/*"}},
            {"aws:SourceArn": RULE},
            {"aws:SourceArn": RULE.replace("bus", "other")},
        ),
        (
            {"ArnEquals": {"aws:SourceArn": RULE}},
            {"aws:SourceArn": RULE},
            {"aws:SourceArn": RULE + "2"},
        ),
        (
            {"Bool": {"aws:SecureTransport": "true"}},
            {"aws:SecureTransport": True},
            {"aws:SecureTransport": False},
        ),
        (
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            {"iam:PassedToService": "scheduler.amazonaws.com"},
            {"iam:PassedToService": "lambda.amazonaws.com"},
        ),
        (
            {"StringEquals": {"aws:ResourceTag/team": "data"}},
            {"aws:ResourceTag/team": "data"},
            {"aws:ResourceTag/team": "web"},
        ),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, {"s3:max-keys": "50"}),
    ],
)
def test_operators(condition: dict[str, Any], right: dict[str, Any], wrong: dict[str, Any]) -> None:
    (
        """String, ARN (segment-wise, with wildcards), Bool and Numeric operators compare the
    request's value with the policy's ("""
        + OPERATORS
        + ")."
    )
    documents = [policy(allow(Condition=condition))]
    assert evaluate(documents, "s3:ListBucket", BUCKET, right) is Decision.ALLOW
    assert evaluate(documents, "s3:ListBucket", BUCKET, wrong) is Decision.IMPLICIT_DENY


def test_set_operators() -> None:
    """ForAnyValue needs one request value to match; ForAllValues needs all of them and
    holds for an absent key
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html)."""
    any_ = [policy(allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}))]
    all_ = [policy(allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}))]
    assert evaluate(any_, "s3:PutObject", BUCKET, {"aws:TagKeys": ["a", "z"]}) is Decision.ALLOW
    assert evaluate(any_, "s3:PutObject", BUCKET, {}) is Decision.IMPLICIT_DENY
    assert evaluate(all_, "s3:PutObject", BUCKET, {"aws:TagKeys": ["a", "z"]}) is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(all_, "s3:PutObject", BUCKET, {}) is Decision.ALLOW


def test_principal_of_resource_and_trust_policies() -> None:
    """A resource or trust policy statement applies only to the principals it names
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html)."""
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    scheduler = Principal(service="scheduler.amazonaws.com")
    assert evaluate([trust], "sts:AssumeRole", ROLE, principal=scheduler) is Decision.ALLOW
    assert evaluate(
        [trust], "sts:AssumeRole", ROLE, principal=Principal(service="lambda.amazonaws.com")
    ) is (Decision.IMPLICIT_DENY)
    # An identity policy evaluation (no principal) ignores statements with a Principal.
    assert evaluate([trust], "sts:AssumeRole", ROLE) is Decision.IMPLICIT_DENY


def test_unknown_operator_is_refused() -> None:
    """An operator localstage does not emulate fails loudly rather than guessing."""
    documents = [policy(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))]
    with pytest.raises(UnsupportedConditionError):
        evaluate(documents, "s3:GetObject", BUCKET, {"aws:SourceIp": "10.0.0.1"})
