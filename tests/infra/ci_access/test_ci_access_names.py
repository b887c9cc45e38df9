"""CI access: the name patterns match every name CloudFormation may generate for a stage."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

from blocks.stage_settings import MAX_STAGE_NAME_LENGTH
from tests.infra.ci_access.conftest import (
    LONGEST_PR_STAGE,
    PSEUDO,
    _as_list,
    _resolved,
    _statements,
    iam_matches,
)
from tests.infra.conftest import (
    SynthesizedStage,
)

#: Where CloudFormation shortens a generated name, to the service's limit, and which e2e
#: statement must reach it. Functions and queues are scoped by tag, not by name.
GENERATED_NAMES = {
    "AWS::S3::Bucket": ("BucketName", 63, "UseStageBuckets"),
    "AWS::DynamoDB::Table": ("TableName", 255, "ReadStageTables"),
}
#: CloudFormation's random suffix: 12 or 13 characters (the longer one leaves less room).
RANDOM_SUFFIX = "A1B2C3D4E5F6G"


def generated_names(stack_name: str, logical_id: str, limit: int) -> list[str]:
    """Every name CloudFormation may give an unnamed resource of ``stack_name``.

    The name is ``<stack>-<LogicalId>-<RANDOM>`` (AWS CloudFormation User Guide, "Name
    type": "CloudFormation generates a unique physical ID to name a resource", e.g.
    ``MyStack-MyBucket-abcdefghijk1``). When that is longer than the service allows,
    CloudFormation shortens the stack name and the logical id; AWS does not document the
    split. Seen on AWS: the stack name is cut and the logical id kept (moto copies
    this for buckets); localstage keeps at least half the room for the stack name. This
    returns one name for every split from the fewest stack characters either keeps up to
    the whole stack name.
    """
    full = f"{stack_name}-{logical_id}-{RANDOM_SUFFIX}"
    if len(full) <= limit:
        return [full]
    room = limit - len(RANDOM_SUFFIX) - 2
    fewest = max(1, min(room - len(logical_id), room // 2))
    return [
        f"{stack_name[:kept]}-{logical_id[: room - kept]}-{RANDOM_SUFFIX}"
        for kept in range(fewest, min(len(stack_name), room) + 1)
        if room - kept >= 1
    ]


@pytest.mark.parametrize(
    ("prefix", "stage"), [("PullRequest", LONGEST_PR_STAGE), ("Staging", "staging")]
)
def test_patterns_match_generated_names_of_the_longest_stage(
    template: dict[str, Any], ephemeral: SynthesizedStage, prefix: str, stage: str
) -> None:
    # GIVEN every unnamed bucket and table of every stack of a stage, named as
    # CloudFormation would for this role's longest stage name (24 characters for pull
    # requests), shortened in every way it may be
    assert len(LONGEST_PR_STAGE) == MAX_STAGE_NAME_LENGTH
    by_sid = {s["Sid"]: s for s in _statements(template, f"{prefix}EndToEndTestPolicy")}
    checked: list[str] = []
    bucket_names: list[str] = []
    resources_checked = 0
    unmatched: list[str] = []
    for stack in ephemeral.stage.node.children:
        if not isinstance(stack, cdk.Stack):
            continue
        stack_name = stack.stack_name.replace(ephemeral.name, stage, 1)
        resources = ephemeral.template_json(stack.node.id)["Resources"]
        for logical_id, resource in resources.items():
            if resource["Type"] not in GENERATED_NAMES:
                continue
            name_property, limit, sid = GENERATED_NAMES[resource["Type"]]
            if name_property in resource.get("Properties", {}):
                continue
            resources_checked += 1
            patterns = [_resolved(r) for r in _as_list(by_sid[sid]["Resource"])]
            for name in generated_names(stack_name, logical_id, limit):
                if resource["Type"] == "AWS::S3::Bucket":
                    name = name.lower()
                    bucket_names.append(name)
                    arn = f"arn:aws:s3:::{name}"
                else:
                    region, account_id = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
                    arn = f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"
                assert len(name) <= limit
                checked.append(name)
                if not any(iam_matches(p, arn) for p in patterns):
                    unmatched.append(f"{sid}: {name}")

    # THEN each of the role's patterns matches every one of those names
    # At least one name for every unnamed table and bucket of the stage.
    assert len(checked) >= resources_checked > 0
    # Bucket names reach S3's limit and are shortened (when the stage has a bucket).
    assert not bucket_names or any(len(name) == 63 for name in bucket_names)
    assert unmatched == []
