#!/usr/bin/env python3
"""CDK entry point: ``cdk synth|deploy|destroy -c stage=NAME``."""

import os
import sys

import aws_cdk as cdk

from blocks.stage_settings import InvalidStageNameError
from stacks.stage import build_stage, new_app


def main() -> None:
    # The CDK CLI hands cdk.json's context over in CDK_CONTEXT_JSON; `python app.py`
    # without the CLI loads it from the file so feature flags always apply.
    app = cdk.App() if "CDK_CONTEXT_JSON" in os.environ else new_app()
    try:
        build_stage(app)
    except InvalidStageNameError as error:
        sys.exit(f"error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
