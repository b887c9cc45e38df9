#!/usr/bin/env python3
"""CDK entry point of the CI-access stack (not a stage: deployed once per account).

``make ci-access GITHUB_REPO=owner/name`` runs
``cdk deploy -a ".venv/bin/python ci_access_app.py" -c github_repo=owner/name``.
"""

import os
import sys

import aws_cdk as cdk

from ci_access.stack import InvalidCiAccessSettingsError, build_ci_access
from stacks.stage import new_app, pattern_stack_classes


def stack_names() -> list[str]:
    """``Alerts`` and every pattern stack's name, as the stage names them after its prefix."""
    return ["Alerts", *(stack.pattern_name for stack in pattern_stack_classes())]


def main() -> None:
    # As app.py: the CLI passes cdk.json's context; `python ci_access_app.py` loads it.
    app = cdk.App() if "CDK_CONTEXT_JSON" in os.environ else new_app()
    try:
        build_ci_access(app, stack_names=stack_names())
    except InvalidCiAccessSettingsError as error:
        sys.exit(f"error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
