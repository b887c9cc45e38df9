"""Constants, fixtures and template readers for the CI access stack tests."""

from __future__ import annotations

from typing import Any

import pytest

from account.ci_access import (
    CiAccessStack,
)
from blocks.stage_settings import MAX_STAGE_NAME_LENGTH
from tests.infra.conftest import (
    GITHUB_REPO,
    SynthesizedAccount,
)
from tests.support.iam_patterns import iam_matches

REPO = GITHUB_REPO
OIDC = "token.actions.githubusercontent.com"
#: Role logical id prefix -> the OIDC subject it must trust, and nothing else.
SUBJECTS: dict[str, str | list[str]] = {
    "PullRequestDeployRole": [
        f"repo:{REPO}:pull_request",
        f"repo:{REPO}:environment:pr-teardown",
    ],
    "StagingDeployRole": f"repo:{REPO}:environment:staging",
    "ProductionDeployRole": f"repo:{REPO}:environment:production",
}
#: The subjects GitHub puts in tokens of this repository's jobs (and one of another repo).
CANDIDATE_SUBJECTS = [
    *(s for v in SUBJECTS.values() for s in (v if isinstance(v, list) else [v])),
    f"repo:{REPO}:ref:refs/heads/main",
    f"repo:{REPO}:ref:refs/heads/feature",
    f"repo:{REPO}:environment:dev",
    "repo:octo-org/other:pull_request",
    "repo:octo-org/other:environment:production",
]
#: Placeholders of Fn::Join parts, with the values IAM would see.
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333"}
#: The longest stage name a pull request can have, and the persistent stages' names.
LONGEST_PR_STAGE = "pr-" + "9" * (MAX_STAGE_NAME_LENGTH - 3)


@pytest.fixture(scope="module")
def ci_access(account: SynthesizedAccount) -> CiAccessStack:
    assert account.stacks.ci_access is not None
    return account.stacks.ci_access


@pytest.fixture(scope="module")
def template(account: SynthesizedAccount, ci_access: CiAccessStack) -> dict[str, Any]:
    return account.template_json(ci_access)


def _by_prefix(template: dict[str, Any], kind: str, prefix: str) -> dict[str, Any]:
    (found,) = [
        r
        for logical_id, r in template["Resources"].items()
        if r["Type"] == kind and logical_id.startswith(prefix)
    ]
    return found


def _statements(template: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _by_prefix(template, "AWS::IAM::Policy", policy)["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return found


def _has_policy(template: dict[str, Any], policy: str) -> bool:
    return any(
        r["Type"] == "AWS::IAM::Policy" and logical_id.startswith(policy)
        for logical_id, r in template["Resources"].items()
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _joined(value: Any) -> str:
    """A Fn::Join of literals and pseudo parameters as one readable string."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)


def _resolved(value: Any) -> str:
    text = _joined(value)
    for name, resolved in PSEUDO.items():
        text = text.replace("${" + name + "}", resolved)
    return text


def _trust_allows(statement: dict[str, Any], claims: dict[str, str]) -> bool:
    """Whether a trust statement's conditions hold for a token with ``claims``."""
    for operator, keys in statement["Condition"].items():
        for key, expected in keys.items():
            value = claims.get(key)
            if value is None:
                return False
            candidates = _as_list(expected)
            if operator == "StringEquals" and value not in candidates:
                return False
            if operator == "StringLike" and not any(iam_matches(c, value) for c in candidates):
                return False
            if operator not in ("StringEquals", "StringLike"):
                raise AssertionError(f"unexpected operator {operator}")
    return True
