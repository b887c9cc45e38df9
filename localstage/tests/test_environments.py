"""Execution environments forked from the fork server run as fresh interpreters would."""

from __future__ import annotations

import sys

import pytest

from localstage.runtime import EnvironmentLauncher, FunctionRuntime
from localstage.stage import LocalStage


def _runtime(stage: LocalStage, launcher: EnvironmentLauncher) -> FunctionRuntime:
    counter = stage.function("Counter")
    runtime = FunctionRuntime(
        counter.spec, endpoint_url=counter.endpoint_url, logs=stage.logs, launcher=launcher
    )
    runtime.extra_environment = dict(counter.extra_environment)
    return runtime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds are Linux only")
def test_a_forked_environment_sees_what_a_new_interpreter_sees(tiny_stage: LocalStage) -> None:
    # GIVEN the same function on the stage's fork server and on new interpreters
    assert tiny_stage.launcher.forks
    forked = _runtime(tiny_stage, tiny_stage.launcher)
    spawned = _runtime(tiny_stage, EnvironmentLauncher())
    assert not spawned.launcher.forks
    try:
        # WHEN each is invoked twice
        results = {
            name: [runtime.invoke({}), runtime.invoke({})]
            for name, runtime in (("forked", forked), ("spawned", spawned))
        }
    finally:
        forked.close()
        spawned.close()

    # THEN both start cold once, keep module state while warm, and see the same variables
    for first, second in results.values():
        assert first.error is None and second.error is None, (first.error, second.error)
        assert (first.cold_start, second.cold_start) == (True, False)
        assert second.payload["count"] == first.payload["count"] + 1
    forked_environment = results["forked"][0].payload["environment"]
    assert forked_environment == results["spawned"][0].payload["environment"]
