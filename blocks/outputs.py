"""Stack outputs whose keys do not move: tests, clients and CI variables read them by name."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct


def stable_output(scope: Construct, name: str, value: str, description: str) -> cdk.CfnOutput:
    """Add an output whose key is exactly ``name``.

    CDK would prefix the key with the construct path and append a hash; an output that
    the e2e suite, a workflow or a person reads must keep its name when the construct
    tree changes.
    """
    output = cdk.CfnOutput(scope, name, value=value, description=description)
    output.override_logical_id(name)
    return output
