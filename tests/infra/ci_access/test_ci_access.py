"""The CI-access stack: who may assume which deploy role, and what each may do.

Synthesized once per session with the account app (``account`` fixture, every role).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from localstage.target import observer_name
from syrupy.assertion import SnapshotAssertion

from account.ci_access import (
    BOOTSTRAP_ROLES,
    MAX_SESSION_DURATION,
    CiAccessStack,
)
from account_app import stack_names
from stacks.stage import cdk_json_context
from tests.infra.ci_access.conftest import (
    CANDIDATE_SUBJECTS,
    LONGEST_PR_STAGE,
    OIDC,
    PSEUDO,
    SUBJECTS,
    _as_list,
    _by_prefix,
    _has_policy,
    _joined,
    _resolved,
    _statements,
    _trust_allows,
    iam_matches,
)
from tests.infra.conftest import (
    SynthesizedAccount,
    normalized,
)
from tests.support.cfn_lint import cfn_lint_findings


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
    assert role["Properties"]["MaxSessionDuration"] == MAX_SESSION_DURATION.to_seconds()
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

    # THEN a pull request job (any branch) or the pull request teardown gets the pull
    # request role only, a job in environment staging or production that environment's
    # role only, anything else none
    trusted = {s: role_id for role_id, v in SUBJECTS.items() for s in _as_list(v)}
    assert assumable == {s: [trusted[s]] if s in trusted else [] for s in CANDIDATE_SUBJECTS}


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
    # A pattern stack of the app (the first the stage discovers after Alerts).
    stack = f"{stage}-{next(name for name in stack_names() if name != 'Alerts')}"
    return {
        "FindStageStacks": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/abc-123",
        "ReadStageTables": (
            f"arn:aws:dynamodb:{region}:{account}:table/{stack}-ItemTable1A2B3C4D-X1Y2"
        ),
        "UseStageBuckets": (f"arn:aws:s3:::{stage}-somepattern-somepatterninputbucket1a2-x1y2/key"),
        "ObserveEventBuses": (
            f"arn:aws:events:{region}:{account}:rule/{stack}-EventBus/"
            f"bus-observer-{stage}-20261206T101500-0123abcd"
        ),
        "TargetObserverQueues": (
            f"arn:aws:events:{region}:{account}:rule/{stack}-EventBus/"
            f"bus-observer-{stage}-20261206T101500-0123abcd"
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
    for sid in ("UseStageQueues", "UseStageFunctions", "ReadQueueConsumers", "PauseQueueConsumers"):
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


@pytest.mark.parametrize(
    ("prefix", "own", "others"),
    [
        ("PullRequest", ["pr-1", LONGEST_PR_STAGE], ["staging", "prod", "pro", "pr"]),
        ("Staging", ["staging"], ["pr-1", "prod", "staging2"]),
    ],
)
def test_bus_observers_are_the_roles_own_stages_and_target_only_their_queues(
    template: dict[str, Any], prefix: str, own: list[str], others: list[str]
) -> None:
    # GIVEN a role's statements on the e2e tests' bus observers
    by_sid = {s["Sid"]: s for s in _statements(template, f"{prefix}EndToEndTestPolicy")}
    region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]

    def queue(stage: str) -> str:
        # Named as the e2e suite names them (localstage.target.subscribe_to_bus).
        name = observer_name(f"bus-observer-{stage}-", datetime(2026, 12, 6, tzinfo=UTC))
        return f"arn:aws:sqs:{region}:{account}:{name}"

    def reaches(sid: str, resource_arn: str) -> bool:
        return any(
            iam_matches(_resolved(r), resource_arn) for r in _as_list(by_sid[sid]["Resource"])
        )

    # WHEN observer queues of its own and of other stages are checked
    # THEN it may manage its own stages' observer queues only
    assert all(reaches("ObserveEventBuses", queue(stage)) for stage in own)
    assert not any(reaches("ObserveEventBuses", queue(stage)) for stage in others)
    # AND a rule's targets must all be such queues, and a PutTargets must name one
    condition = by_sid["TargetObserverQueues"]["Condition"]
    (pattern,) = _as_list(condition["ForAllValues:ArnLike"]["events:TargetArn"])
    assert condition["Null"] == {"events:TargetArn": "false"}
    assert all(iam_matches(_resolved(pattern), queue(stage)) for stage in own)
    assert not any(iam_matches(_resolved(pattern), queue(stage)) for stage in others)
    assert _as_list(by_sid["TargetObserverQueues"]["Action"]) == ["events:PutTargets"]
    assert "events:PutTargets" not in _as_list(by_sid["ObserveEventBuses"]["Action"])


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
    assert cfn_lint_findings(template) == []


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


WORKFLOWS = Path(__file__).resolve().parents[3] / ".github" / "workflows"

#: What aws-actions/configure-aws-credentials asks for without role-duration-seconds
#: when it assumes a role with an OIDC token (its action.yml: one hour for OIDC).
_OIDC_DEFAULT_SECONDS = 3600


@pytest.mark.parametrize("workflow", ["pull-request.yml", "pull-request-closed.yml", "main.yml"])
def test_every_ci_job_keeps_its_aws_credentials_for_its_whole_timeout(workflow: str) -> None:
    # GIVEN each job of the workflow that assumes a CI role
    loaded = yaml.safe_load((WORKFLOWS / workflow).read_text())
    for name, job in loaded["jobs"].items():
        for step in job.get("steps", []):
            if "configure-aws-credentials" not in step.get("uses", ""):
                continue
            # THEN the session it asks for outlasts the job, and the role allows it
            seconds = int(step["with"].get("role-duration-seconds", _OIDC_DEFAULT_SECONDS))
            assert job["timeout-minutes"] * 60 <= seconds, (workflow, name)
            assert seconds <= MAX_SESSION_DURATION.to_seconds(), (workflow, name)
