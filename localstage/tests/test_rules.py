"""Rules localstage applies without a running cloud: batch responses, routes, the clock."""

from __future__ import annotations

from typing import Any

import pytest

from localstage.apigateway_routes import ApiResource, RestApi
from localstage.clock import Clock
from localstage.sources.sqs import failed_message_ids

BATCH = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    ("payload", "errored", "report", "kept"),
    [
        (None, False, True, set()),
        ({"batchItemFailures": []}, False, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, False, True, {"m2"}),
        # An id that is not in the batch, or an empty one, fails the whole batch.
        ({"batchItemFailures": [{"itemIdentifier": "other"}]}, False, True, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, False, True, set(BATCH)),
        # Without ReportBatchItemFailures a report means nothing.
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, False, False, set()),
        # A function error keeps every message.
        (None, True, True, set(BATCH)),
    ],
)
def test_what_stays_in_the_queue_after_a_batch(
    payload: Any, errored: bool, report: bool, kept: set[str]
) -> None:
    assert failed_message_ids(BATCH, payload, errored=errored, report_item_failures=report) == kept


def _api(*paths: str) -> RestApi:
    return RestApi(
        logical_id="Api",
        stack_name="s",
        api_id="abc",
        name="api",
        stage_name="api",
        stage_variables={},
        resources=[ApiResource(f"r{index}", path) for index, path in enumerate(paths)],
        models={},
        gateway_responses={},
        binary_media_types=[],
    )


@pytest.mark.parametrize(
    ("path", "resource", "parameters"),
    [
        ("/jobs", "/jobs", {}),
        ("/jobs/42", "/jobs/{job_id}", {"job_id": "42"}),
        # A literal segment beats a parameter, which beats a greedy proxy.
        ("/jobs/latest", "/jobs/latest", {}),
        ("/files/a/b/c", "/files/{proxy+}", {"proxy": "a/b/c"}),
        ("/", "/", {}),
    ],
)
def test_requests_map_to_the_most_specific_resource(
    path: str, resource: str, parameters: dict[str, str]
) -> None:
    api = _api("/", "/jobs", "/jobs/{job_id}", "/jobs/latest", "/files/{proxy+}")

    matched = api.match(path)

    assert matched is not None
    assert (matched[0].path, matched[1]) == (resource, parameters)


def test_a_path_without_a_resource_matches_nothing() -> None:
    assert _api("/", "/jobs").match("/jobs/42/extra") is None


def test_stage_time_runs_faster_by_the_clock_speed() -> None:
    clock = Clock(speed=90)
    assert clock.real_seconds(180) == 2
    clock.stop()
    assert clock.sleep(3600) is False  # a stopped clock wakes sleepers at once
