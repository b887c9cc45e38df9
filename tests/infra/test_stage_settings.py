"""The stage's settings: its name, kind, tuning and options, from cdk.json and ``-c``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blocks.stage_settings import (
    MAX_STAGE_NAME_LENGTH,
    InvalidStageNameError,
    StageSettings,
    validate_stage_name,
)
from stacks.stage import cdk_json_context, new_app, stage_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["dev", "pr-42", "prod", "a", "feature-x1", "a" * 24])
def test_usable_stage_names_are_accepted(name: str) -> None:
    # GIVEN a usable name WHEN it is validated THEN it comes back unchanged
    assert validate_stage_name(name) == name


@pytest.mark.parametrize(
    "name", ["Prod", "pr 42", "pr_42", "42-pr", "pr-", "-pr", "", "a" * (MAX_STAGE_NAME_LENGTH + 1)]
)
def test_unusable_stage_names_are_refused_with_the_rule(name: str) -> None:
    # GIVEN a name with uppercase, spaces, bad edges or too long
    # WHEN it is validated THEN the one-line error says what is allowed
    with pytest.raises(InvalidStageNameError) as error:
        validate_stage_name(name)
    message = str(error.value)
    assert "\n" not in message
    assert "lowercase letters, digits and hyphens" in message


def test_app_stops_with_a_one_line_error_on_a_bad_stage_name() -> None:
    # GIVEN the CLI passing `-c stage="Bad Name"` WHEN app.py runs
    context = {**cdk_json_context(), "stage": "Bad Name"}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    # THEN it exits non-zero with one line that names the stage and the rule
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [lines[0]] and "'Bad Name'" in lines[0], result.stderr


def test_stage_defaults_to_dev_and_only_listed_stages_are_persistent() -> None:
    context = cdk_json_context()
    assert StageSettings.from_context(context).stage_name == "dev"
    assert not StageSettings.from_context(context).persistent
    assert StageSettings.from_context(context, stage_name="prod").persistent
    assert not StageSettings.from_context(context, stage_name="pr-7").persistent


#: A stage's tuning as cdk.json's ``stage_tuning`` gives it (its own, not the shipped one's:
#: a fork may remove the pattern the shipped entry tunes).
TUNING = {"local": {"SomePattern": {"timeout_seconds": 2}}}


def test_stage_tuning_from_cdk_json_applies_to_its_stage_only() -> None:
    # GIVEN context that tunes a pattern for stage `local`
    context = {**cdk_json_context(), "stage_tuning": TUNING}
    # WHEN settings are built for `local` and for another stage
    local = StageSettings.from_context(context, stage_name="local")
    other = StageSettings.from_context(context, stage_name="pr-7")
    # THEN only `local` carries the tuning, keyed by pattern name
    assert local.tuning_for("SomePattern") == {"timeout_seconds": 2}
    assert other.tuning_for("SomePattern") == {}


def test_a_stage_can_take_another_stages_tuning() -> None:
    # GIVEN that context and `-c tuning=local` (what `make deploy TUNING=local` passes)
    context = {**cdk_json_context(), "stage_tuning": TUNING, "tuning": "local"}
    # WHEN settings are built for a pull request's stage
    settings = StageSettings.from_context(context, stage_name="pr-7")
    # THEN it carries stage local's tuning under its own name
    assert settings.stage_name == "pr-7"
    assert settings.tuning_for("SomePattern") == {"timeout_seconds": 2}


def test_an_unknown_tuning_stops_with_one_line() -> None:
    context = {**cdk_json_context(), "tuning": "nope"}
    with pytest.raises(InvalidStageNameError, match="stage_tuning has no entry 'nope'") as raised:
        StageSettings.from_context(context, stage_name="pr-7")
    assert "\n" not in str(raised.value)


def test_tracing_context_overrides_the_stage_default() -> None:
    context = cdk_json_context()
    # GIVEN no override, persistent stages trace and ephemeral ones do not
    assert StageSettings.from_context(context, stage_name="prod").tracing_enabled
    assert not StageSettings.from_context(context, stage_name="pr-7").tracing_enabled
    # WHEN `-c tracing=...` is given (a string on the command line, or a cdk.json boolean)
    on = StageSettings.from_context({**context, "tracing": "true"}, stage_name="pr-7")
    off = StageSettings.from_context({**context, "tracing": False}, stage_name="prod")
    # THEN it wins over the default, and an unreadable value is refused
    assert on.tracing_enabled and not off.tracing_enabled
    with pytest.raises(InvalidStageNameError, match="tracing"):
        StageSettings.from_context({**context, "tracing": "maybe"}, stage_name="pr-7")


def test_the_stage_settings_take_every_context_value_the_cli_passes() -> None:
    # GIVEN an app whose context has every optional stage value, as the CLI hands over
    # cdk.json plus `-c stage=pr-7 -c tuning=local -c tracing=true`
    subscribers = {"pr-7": ["oncall@example.org"]}
    app = new_app(stage="pr-7", tuning="local", tracing="true", alarm_subscriptions=subscribers)
    # WHEN the stage reads its settings from the app
    settings = stage_settings(app)
    # THEN each value reaches them: none is dropped on the way
    assert settings.stage_name == "pr-7" and not settings.persistent
    assert settings.tuning == cdk_json_context()["stage_tuning"]["local"]
    assert settings.tracing_enabled
    assert settings.alarm_subscribers == ("oncall@example.org",)


def test_the_stage_settings_read_only_the_context_keys_they_declare() -> None:
    # GIVEN a context holding every value a stage can be given, recording what is read
    read: set[str] = set()

    class RecordingContext(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            read.add(key)
            return super().__getitem__(key)

        def get(self, key: str, default: Any = None) -> Any:
            read.add(key)
            return super().get(key, default)

    context = RecordingContext(
        {
            **cdk_json_context(),
            "stage": "pr-7",
            "tuning": "local",
            "tracing": "true",
            "alarm_subscriptions": {"pr-7": ["oncall@example.org"]},
        }
    )
    # WHEN the settings are built from it
    StageSettings.from_context(context)
    # THEN every key read is one the app hands over (stacks.stage.stage_settings)
    assert read <= set(StageSettings.CONTEXT_KEYS)
