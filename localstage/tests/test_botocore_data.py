"""The fork server's botocore data, parsed once: clients of later sessions act as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import localstage

DATA_SCRIPT = Path(localstage.__file__).parent / "_botocore_data.py"

#: Run in a process of its own: the patch applies to the whole interpreter.
_CHECK = """
import json, os, runpy, sys
import boto3.session
from botocore.config import Config

def describe(session, retries):
    client = session.client("dynamodb", config=Config(retries={"max_attempts": retries}))
    model = client.meta.service_model
    answer = {
        "operations": len(model.operation_names),
        "protocol": model.protocol,
        "endpoint": client.meta.endpoint_url,
        "retries": client.meta.config.retries,
        "paginates": client.can_paginate("scan"),
        "services": len(session.get_available_services()),
    }
    return answer, model

def session():
    return boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="eu-west-1"
    )

before, _ = describe(session(), 2)
runpy.run_path(sys.argv[1])["share_parsed_data"](("dynamodb",))
first, first_model = describe(session(), 7)
second, second_model = describe(session(), 2)
print(json.dumps({
    "before": before, "first": first, "second": second,
    "shared": first_model._service_description is second_model._service_description,
}))
"""


def test_later_sessions_share_the_parsed_models_and_keep_their_own_config() -> None:
    # GIVEN a process where a client was made as usual, then the data was shared
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, str(DATA_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "AWS_CONFIG_FILE": "/dev/null"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)

    # WHEN two new sessions make clients with different retry settings
    before, first, second = answers["before"], answers["first"], answers["second"]

    # THEN they use one parsed model, yet each client has its own settings, and a
    # client is what it was before the sharing
    assert answers["shared"]
    assert first["retries"]["total_max_attempts"] == 8 != before["retries"]["total_max_attempts"]
    assert second == before
    assert {**first, "retries": None} == {**before, "retries": None}
