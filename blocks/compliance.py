"""cdk-nag on every synth, and the one way this app acknowledges a finding."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


def add_compliance_checks(scope: IConstruct) -> None:
    """Run the AwsSolutions and Serverless packs when ``scope`` is synthesized.

    Errors and warnings both fail the synth.

    Examples
    --------
    >>> app = cdk.App()
    >>> add_compliance_checks(app)
    """
    cdk.Validations.of(scope).add_plugins(AwsSolutionsChecks(scope), ServerlessChecks(scope))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on the narrowest construct that causes it.

    Parameters
    ----------
    construct:
        The construct the finding is reported on (not its stack).
    rule_id:
        The rule, with the finding in brackets where a rule reports several,
        e.g. ``"AwsSolutions-IAM5[Resource::*]"``.
    reason:
        Why the finding is acceptable here, specific to this construct.
    """
    if len(reason) < 20:
        raise ValueError(f"acknowledgment of {rule_id} needs a specific reason, got {reason!r}")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
