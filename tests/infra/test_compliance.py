"""cdk-nag and cfn-lint report nothing; every acknowledgment sits on one resource.

Each stack's acknowledgments are listed in its snapshot (``stack_snapshot``).
"""

from __future__ import annotations

import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

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
