"""``GET /runs/{run_id}``: a run's status, progress and counts, on moto."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.support.answer_schemas import assert_answer_documented
from tests.support.events import HttpResponse, api_event
from tests.support.fakes import FakeLambdaContext
from tests.unit.recursive_processor.conftest import (
    OUTPUT_BUCKET,
    RECORDS_PER_HOP,
    RUN_STALLED_AFTER_SECONDS,
    Expected,
    Processor,
    record_line,
)


def get_run(api: ModuleType, run_id: str) -> HttpResponse:
    event = api_event(
        "GET", f"/runs/{run_id}", resource="/runs/{run_id}", path_parameters={"run_id": run_id}
    )
    response = HttpResponse.from_proxy(
        api.handler(event, FakeLambdaContext(function_name="RunApi"))
    )
    assert_answer_documented(api, event, response)
    return response


def test_a_running_run_shows_its_progress(processor: Processor, api: ModuleType) -> None:
    # GIVEN a run whose first of three hops has committed
    body = [record_line(i) for i in range(2 * RECORDS_PER_HOP + 3)]
    record = processor.upload_lines("progress.ndjson", body)
    run_id = processor.start(record)
    processor.deliver_next()

    # WHEN a client asks for it
    response = get_run(api, run_id)

    # THEN it sees RUNNING, how far the run got and what it counted so far
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    view = response.body
    assert (view["status"], view["hops"], view["records"]) == ("RUNNING", 1, RECORDS_PER_HOP)
    assert 0 < view["offset"] < view["source"]["size"]
    assert 0 < view["progress"] < 1
    assert view["progress"] == round(view["offset"] / view["source"]["size"], 4)
    assert "summary" not in view and "reason" not in view


def test_a_run_whose_next_hop_never_came_reads_failed_stalled(
    processor: Processor, api: ModuleType
) -> None:
    # GIVEN a run whose first hop committed and whose next hop's event was lost (AWS:
    # an asynchronous event "might also be deleted from the queue without being sent")
    body = [record_line(i) for i in range(2 * RECORDS_PER_HOP + 3)]
    run_id = processor.start(processor.upload_lines("stalled.ndjson", body))
    processor.deliver_next()
    processor.delivered = len(processor.invoker.payloads)  # hop 2 is never delivered
    committed = processor.infra.run(run_id)

    # WHEN a client asks for it just before and once no hop can come any more
    processor.clock.advance(RUN_STALLED_AFTER_SECONDS - 1)
    before = get_run(api, run_id).body
    processor.clock.advance(1)
    after = get_run(api, run_id).body

    # THEN RUNNING, then FAILED stalled with what it had counted (read only)
    assert before["status"] == "RUNNING" and "reason" not in before
    assert after["status"] == "FAILED" and after["reason"]["code"] == "stalled"
    assert after["records"] == RECORDS_PER_HOP and after["hops"] == 1
    assert processor.infra.run(run_id) == committed


def test_a_finished_run_links_its_summary(processor: Processor, api: ModuleType) -> None:
    # GIVEN a finished run with one bad record WHEN a client asks for it
    # THEN it sees DONE, the final counts and where the summary and errors are
    body = [record_line(i) for i in range(RECORDS_PER_HOP + 3)] + ["not json"]
    record = processor.upload_lines("finished.ndjson", body)
    run_id = processor.start(record)
    processor.drain()

    view = get_run(api, run_id).body

    assert view["status"] == "DONE" and view["hops"] == 2 and view["progress"] == 1
    assert view["records"] == Expected.of(body[:-1]).records and view["errors"] == 1
    assert view["summary"] == {"bucket": OUTPUT_BUCKET, "key": f"runs/{run_id}/summary.json"}
    assert [e["bucket"] for e in view["error_objects"]] == [OUTPUT_BUCKET]
    assert view["duration_ms"] >= 0 and view["finished_at"]
    # AND it still reads DONE once no hop could come any more (only a RUNNING run stalls)
    processor.clock.advance(RUN_STALLED_AFTER_SECONDS)
    assert get_run(api, run_id).body["status"] == "DONE"


def test_a_failed_run_shows_why(processor: Processor, api: ModuleType) -> None:
    # GIVEN a run stopped by the hop limit WHEN a client asks THEN it sees the reason
    processor.configure(max_hops=1)
    body = [record_line(i) for i in range(RECORDS_PER_HOP + 3)]
    record = processor.upload_lines("failed.ndjson", body)
    run_id = processor.start(record)
    processor.drain()

    view = get_run(api, run_id).body

    assert view["status"] == "FAILED" and view["reason"]["code"] == "hop_limit"


@pytest.mark.parametrize(
    ("run_id", "status", "code"),
    [
        ("not-a-uuid", 400, "invalid_request"),
        # Other spellings of a UUID that uuid.UUID takes: the API's one form only
        ("urn:uuid:3b83ef14-033d-4b5a-a443-35db81cfb9a5", 400, "invalid_request"),
        ("{3b83ef14-033d-4b5a-a443-35db81cfb9a5}", 400, "invalid_request"),
        ("3b83ef14033d4b5aa44335db81cfb9a5", 400, "invalid_request"),
        ("\uff13b83ef14-033d-4b5a-a443-35db81cfb9a5", 400, "invalid_request"),
        ("3b83ef14-033d-4b5a-a443-35db81cfb9a5", 404, "not_found"),
    ],
)
def test_bad_or_unknown_ids_get_json_errors(
    api: ModuleType, run_id: str, status: int, code: str
) -> None:
    # GIVEN a malformed or unknown id WHEN asked for THEN a JSON 4xx, never a 5xx
    response = get_run(api, run_id)
    assert response.status == status
    assert response.body["error"] == code and response.body["message"]


def test_unknown_routes_get_a_json_404(api: ModuleType) -> None:
    # GIVEN a path the API does not serve WHEN called THEN a JSON 404
    event = api_event("GET", "/nothing", resource="/nothing")
    response = HttpResponse.from_proxy(api.handler(event, FakeLambdaContext()))
    assert (response.status, response.body["error"]) == (404, "not_found")
