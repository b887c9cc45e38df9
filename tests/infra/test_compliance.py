"""cdk-nag and cfn-lint report nothing; every acknowledgment sits on one resource.

Each stack's acknowledgments are listed in its snapshot (``stack_snapshot``).
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from stacks.stage import new_app
from tests.infra.conftest import SynthesizedStage, acknowledgments
from tests.support.cfn_lint import cfn_lint_findings


@pytest.mark.parametrize("pack", [AwsSolutionsChecks, ServerlessChecks], ids=lambda p: p.__name__)
def test_nag_packs_report_no_finding(any_stage: SynthesizedStage, pack: type) -> None:
    # GIVEN a synthesized stage WHEN a cdk-nag pack validates it THEN nothing is reported
    report = pack().validate_scope(any_stage.stage)
    findings = [
        f"{violation.rule_name}: {[r.construct_path for r in violation.violating_resources]}"
        for violation in report.violations
    ]
    assert findings == []


def test_acknowledgments_sit_on_resources_not_on_stacks(any_stage: SynthesizedStage) -> None:
    for line in acknowledgments(any_stage):
        path = line.split(" ", 1)[0]
        assert path.count("/") >= 2, f"acknowledged too broadly: {line}"


def test_cfn_lint_reports_nothing(any_stage: SynthesizedStage) -> None:
    # GIVEN every template of the stage WHEN cfn-lint checks them (its default rules:
    # errors and warnings; one run, so its rules load once) THEN nothing is reported
    templates = sorted(any_stage.outdir.glob(f"assembly-{any_stage.name}/*.template.json"))
    assert len(templates) == len(any_stage.templates)
    assert cfn_lint_findings(*templates) == []


def test_synths_with_cdk_json_refuse_what_cdks_template_validation_refuses(tmp_path: Path) -> None:
    # The stages above were synthesized with this validation on; the e2e suite's and the
    # fork test's synths leave it off (half of a synth's CPU), relying on this.
    # GIVEN an app with cdk.json's context and a queue with a property CloudFormation
    # does not know
    app = new_app(outdir=tmp_path)
    stack = cdk.Stack(app, "Probe")
    cdk.CfnResource(stack, "Queue", type="AWS::SQS::Queue", properties={"NotAProperty": 1})

    # WHEN it is synthesized THEN CDK's built-in validation fails the synth and names it
    with pytest.raises(RuntimeError, match=r"NotAProperty.*\(CloudFormation Validate\)"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [plugin["pluginName"] for plugin in report["pluginReports"]] == [
        "CloudFormation Validate"
    ]
    assert "NotAProperty" in json.dumps(report)
