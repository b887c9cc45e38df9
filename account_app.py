#!/usr/bin/env python3
"""CDK entry point of the account app (not a stage: deployed once per account and region).

``make account GITHUB_REPO=owner/name`` runs
``cdk deploy --all -a ".venv/bin/python account_app.py" -c github_repo=owner/name``:
``<app_name>-ApiGatewayAccount`` and ``<app_name>-CiAccess``.
"""

import os
import sys

import aws_cdk as cdk

from account.build import build_account
from account.ci_access import InvalidCiAccessSettingsError
from stacks.stage import new_app, pattern_stack_classes


def stack_names() -> list[str]:
    """``Alerts`` and every pattern stack's name, as the stage names them after its prefix."""
    return ["Alerts", *(stack.pattern_name for stack in pattern_stack_classes())]


def main() -> None:
    # As app.py: the CLI passes cdk.json's context; `python account_app.py` loads it.
    app = cdk.App() if "CDK_CONTEXT_JSON" in os.environ else new_app()
    try:
        stacks = build_account(app, stack_names=stack_names())
    except InvalidCiAccessSettingsError as error:
        sys.exit(f"error: {error}")
    if stacks.ci_access is None:
        print(
            "note: no -c github_repo: the CI-access stack (GitHub OIDC roles) is left out",
            file=sys.stderr,
        )
    app.synth()


if __name__ == "__main__":
    main()
