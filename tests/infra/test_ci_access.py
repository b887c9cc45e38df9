"""The CI-access stack: who may assume which deploy role, and what each may do.

Synthesized once per session with the account app (``account`` fixture, every role).
"""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint_file
from syrupy.assertion import SnapshotAssertion

from account.ci_access import (
    BOOTSTRAP_ROLES,
    CiAccessSettings,
    CiAccessStack,
    InvalidCiAccessSettingsError,
    parse_environments,
)
from account_app import stack_names
from blocks.stage_settings import MAX_STAGE_NAME_LENGTH
from stacks.stage import cdk_json_context
from tests.infra.conftest import (
    GITHUB_REPO,
    SynthesizedAccount,
    SynthesizedStage,
    normalized,
)

REPO = GITHUB_REPO
OIDC = "token.actions.githubusercontent.com"
#: Role logical id prefix -> the OIDC subject it must trust, and nothing else.
SUBJECTS = {
    "PullRequestDeployRole": f"repo:{REPO}:pull_request",
    "StagingDeployRole": f"repo:{REPO}:environment:staging",
    "ProductionDeployRole": f"repo:{REPO}:environment:production",
}
#: The subjects GitHub puts in tokens of this repository's jobs (and one of another repo).
CANDIDATE_SUBJECTS = [
    *SUBJECTS.values(),
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


def iam_matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match on ARNs and StringLike: ``*`` any run of characters, ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


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


@pytest.mark.parametrize("role_id", sorted(SUBJECTS))
def test_each_role_trusts_exactly_its_environments_subject(
    template: dict[str, Any], role_id: str
) -> None:
    # GIVEN one deploy role of the CI-access stack
    (provider_id,) = [
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::OIDCProvider"
    ]
    role = _by_prefix(template, "AWS::IAM::Role", role_id)

    # WHEN its trust policy is read
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    # THEN only GitHub's provider may assume it, for STS tokens of exactly one subject,
    # compared with StringEquals (no wildcard)
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": {"Ref": provider_id}}
    assert statement["Condition"] == {
        "StringEquals": {f"{OIDC}:aud": "sts.amazonaws.com", f"{OIDC}:sub": SUBJECTS[role_id]}
    }
    assert role["Properties"]["MaxSessionDuration"] == 3600
    assert "ManagedPolicyArns" not in role["Properties"]


def test_a_token_gets_at_most_the_role_of_its_own_environment(template: dict[str, Any]) -> None:
    # GIVEN every role's trust statement, and the subjects GitHub issues for this
    # repository's jobs (pull requests, branches, environments) and for another one
    roles = {
        logical_id: r["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
    }
    assert len(roles) == len(SUBJECTS)

    # WHEN each subject's token is checked against each role's conditions
    assumable = {
        subject: sorted(
            next(prefix for prefix in SUBJECTS if logical_id.startswith(prefix))
            for logical_id, statements in roles.items()
            if any(
                _trust_allows(s, {f"{OIDC}:aud": "sts.amazonaws.com", f"{OIDC}:sub": subject})
                for s in statements
            )
        )
        for subject in CANDIDATE_SUBJECTS
    }

    # THEN a pull request job (any branch) gets the pull request role only, a job in
    # environment staging or production that environment's role only, anything else none
    assert assumable == {
        **{subject: [role_id] for role_id, subject in SUBJECTS.items()},
        **{s: [] for s in CANDIDATE_SUBJECTS if s not in SUBJECTS.values()},
    }


@pytest.mark.parametrize("prefix", ["PullRequest", "Staging", "Production"])
def test_deploying_means_assuming_the_cdk_bootstrap_roles_only(
    template: dict[str, Any], prefix: str
) -> None:
    # WHEN a role's deploy policy is read
    (statement,) = _statements(template, f"{prefix}DeployPolicy")

    # THEN it allows assuming the four bootstrap roles of its own account and region
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert sorted(_joined(r) for r in statement["Resource"]) == sorted(
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
        f"cdk-hnb659fds-{role}-${{AWS::AccountId}}-${{AWS::Region}}"
        for role in BOOTSTRAP_ROLES
    )


def test_the_production_role_only_deploys(template: dict[str, Any]) -> None:
    # THEN prod gets no e2e statements; the pull request and staging roles do
    assert not _has_policy(template, "ProductionEndToEndTestPolicy")
    assert _has_policy(template, "PullRequestEndToEndTestPolicy")
    assert _has_policy(template, "StagingEndToEndTestPolicy")
    attached = [
        _joined(role)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for role in r["Properties"]["Roles"]
    ]
    assert len(attached) == 5


def _sample_arns(stage: str) -> dict[str, str]:
    """An ARN per statement of one stage's resources (names as CloudFormation makes them)."""
    region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
    stack = f"{stage}-EventSourcing"
    return {
        "FindStageStacks": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/abc-123",
        "ReadStageTables": (
            f"arn:aws:dynamodb:{region}:{account}:table/{stack}-EventSourcingEventTable1-X1Y2"
        ),
        "UseStageBuckets": (
            f"arn:aws:s3:::{stage}-recursiveprocessor-recursiveprocessorinputbuc-x1y2/key"
        ),
        "ObserveEventBuses": (
            f"arn:aws:events:{region}:{account}:rule/{stack}-EventBus/bus-observer-0123"
        ),
    }


@pytest.mark.parametrize(
    ("prefix", "own", "others"),
    [
        ("PullRequest", ["pr-1", LONGEST_PR_STAGE], ["staging", "prod", "dev", "pro"]),
        ("Staging", ["staging"], ["pr-1", "prod", "staging2", "dev"]),
    ],
)
def test_e2e_statements_reach_the_roles_own_stages_only(
    template: dict[str, Any], prefix: str, own: list[str], others: list[str]
) -> None:
    # GIVEN a role's e2e statements
    by_sid = {s["Sid"]: s for s in _statements(template, f"{prefix}EndToEndTestPolicy")}

    def allowed(sid: str, resource_arn: str) -> bool:
        return any(
            iam_matches(_resolved(r), resource_arn) for r in _as_list(by_sid[sid]["Resource"])
        )

    # WHEN resources of its own and of other stages are checked against the names
    # THEN its own stages' resources match and no other stage's do
    for stage in own:
        assert all(allowed(sid, a) for sid, a in _sample_arns(stage).items()), stage
    for stage in others:
        assert not any(allowed(sid, a) for sid, a in _sample_arns(stage).items()), stage

    # AND where services authorize on tags, the app and the role's stages are required
    stage_pattern = {"PullRequest": "pr-*", "Staging": "staging"}[prefix]
    tags = {
        "StringEquals": {"aws:ResourceTag/app": cdk_json_context()["app_name"]},
        "StringLike": {"aws:ResourceTag/stage": stage_pattern},
    }
    for sid in ("UseStageQueues", "UseStageFunctions", "PauseQueueConsumers"):
        assert by_sid[sid]["Condition"] == tags, sid
    assert by_sid["UseStageBuckets"]["Condition"] == {
        "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
    }
    # AND stage discovery reads `<stage>-<stack>` for Alerts and each pattern only
    assert sorted(_joined(r) for r in by_sid["FindStageStacks"]["Resource"]) == sorted(
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:"
        f"stack/{stage_pattern}-{name}/*"
        for name in stack_names()
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
            patterns = [_resolved(r) for r in _as_list(by_sid[sid]["Resource"])]
            for name in generated_names(stack_name, logical_id, limit):
                if resource["Type"] == "AWS::S3::Bucket":
                    name = name.lower()
                    arn = f"arn:aws:s3:::{name}"
                else:
                    region, account_id = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
                    arn = f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"
                assert len(name) <= limit
                checked.append(name)
                if not any(iam_matches(p, arn) for p in patterns):
                    unmatched.append(f"{sid}: {name}")

    # THEN each of the role's patterns matches every one of those names
    assert len(checked) > 10
    assert any(len(name) == 63 for name in checked)  # some bucket names were shortened
    assert unmatched == []


def test_no_statement_has_a_wildcard_action_or_denies_nothing(template: dict[str, Any]) -> None:
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = [action for s in statements for action in _as_list(s["Action"])]
    assert actions and all("*" not in action for action in actions)
    assert all(s["Effect"] == "Allow" and "NotAction" not in s for s in statements)
    # Resources that are `*` are only the actions AWS gives no resource-level permission.
    unscoped = [s for s in statements if "*" in _as_list(s["Resource"])]
    assert [s["Action"] for s in unscoped] == [
        [
            "events:ListEventBuses",
            "events:ListRules",
            "lambda:ListEventSourceMappings",
            "scheduler:ListSchedules",
            "sqs:ListQueues",
        ]
    ] * 2


@pytest.mark.parametrize("pack", [AwsSolutionsChecks, ServerlessChecks], ids=lambda p: p.__name__)
def test_nag_packs_report_no_finding(ci_access: CiAccessStack, pack: type) -> None:
    # GIVEN the synthesized stack WHEN a cdk-nag pack validates it THEN nothing is reported
    report = pack().validate_scope(ci_access)
    assert [v.rule_name for v in report.violations] == []


def test_cfn_lint_reports_nothing(account: SynthesizedAccount, ci_access: CiAccessStack) -> None:
    template = account.outdir / ci_access.template_file
    assert [str(m) for m in lint_file(template, config=ManualArgs(regions=["us-east-1"]))] == []


def test_template_matches_its_snapshot(
    template: dict[str, Any], snapshot: SnapshotAssertion
) -> None:
    # One placeholder for every pattern stack, so adding or removing a pattern (its
    # statements repeat per stack) leaves this snapshot as it is.
    assert _one_pattern(normalized(template)) == snapshot


def _one_pattern(template: dict[str, Any]) -> Any:
    text = json.dumps(template)
    for name in stack_names():
        if name != "Alerts":
            text = text.replace(name, "<Pattern>")
    return _deduplicated(json.loads(text))


def _deduplicated(value: Any) -> Any:
    """``value`` with repeated entries of each list dropped (first kept)."""
    if isinstance(value, dict):
        return {key: _deduplicated(item) for key, item in value.items()}
    if isinstance(value, list):
        unique = {json.dumps(item, sort_keys=True): _deduplicated(item) for item in value}
        return list(unique.values())
    return value


def test_each_role_arn_is_an_output_named_for_its_repository_variable(
    template: dict[str, Any],
) -> None:
    outputs = template["Outputs"]
    assert sorted(outputs) == [
        "OidcProviderArn",
        "ProductionDeployRoleArn",
        "PullRequestDeployRoleArn",
        "StagingDeployRoleArn",
    ]
    assert outputs["PullRequestDeployRoleArn"]["Description"].endswith("AWS_PR_ROLE_ARN")
    assert outputs["StagingDeployRoleArn"]["Description"].endswith("AWS_STAGING_ROLE_ARN")
    assert outputs["ProductionDeployRoleArn"]["Description"].endswith("AWS_PRODUCTION_ROLE_ARN")


def test_one_deployment_may_create_only_some_roles() -> None:
    # GIVEN a production account: only the production role, on the existing provider
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    settings = CiAccessSettings.from_context(
        {
            "app_name": "app",
            "github_repo": REPO,
            "environments": "production",
            "github_oidc_provider_arn": arn,
        },
        stack_names=["Alerts"],
    )

    # WHEN the stack is built
    stack = CiAccessStack(cdk.App(), settings=settings)
    template = Template.from_stack(stack).to_json()

    # THEN it has that role only, trusts the existing provider and creates none
    assert sorted(stack.roles) == ["production"]
    assert stack.provider_arn == arn
    assert stack.node.try_find_child("GitHubOidcProvider") is None
    assert sorted(template["Outputs"]) == ["OidcProviderArn", "ProductionDeployRoleArn"]


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        (None, ["pull_request", "staging", "production"]),
        ("", ["pull_request", "staging", "production"]),
        ("staging, pull_request", ["pull_request", "staging"]),
        (["production"], ["production"]),
    ],
)
def test_environments_are_read_from_a_comma_separated_list(
    value: str | list[str] | None, keys: list[str]
) -> None:
    assert [env.key for env in parse_environments(value)] == keys


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"app_name": "app"}, "missing GitHub repository"),
        ({"app_name": "app", "github_repo": "shop"}, "invalid GitHub repository 'shop'"),
        ({"app_name": "app", "github_repo": "a/b/c"}, "invalid GitHub repository"),
        (
            {"app_name": "app", "github_repo": REPO, "environments": "prod"},
            "unknown environment 'prod'",
        ),
    ],
)
def test_a_missing_or_malformed_setting_stops_with_one_line(
    context: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidCiAccessSettingsError, match=message) as raised:
        CiAccessSettings.from_context(context, stack_names=["Alerts"])
    assert "\n" not in str(raised.value)
