"""cfn-lint's findings on synthesized templates, for the infra tests.

cfnlint is imported when a test lints, not when a test module is collected: it brings
sympy and networkx (about a second of CPU), and every pytest-xdist worker collects every
test module, while only the infra suite's worker lints.
"""

from __future__ import annotations

from pathlib import Path


def cfn_lint_findings(*templates: Path) -> list[str]:
    """Every finding of cfn-lint's default rules (errors and warnings, region us-east-1)
    on ``templates``, checked in one run so that its rules load once."""
    from cfnlint.api import ManualArgs, lint_by_config

    config = ManualArgs(templates=[str(t) for t in templates], regions=["us-east-1"])
    return [str(match) for match in lint_by_config(config)]
