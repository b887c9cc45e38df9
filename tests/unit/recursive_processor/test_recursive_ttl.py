"""Run records past their TTL read as absent, although DynamoDB has not deleted them yet.

DynamoDB deletes expired items typically within two days and reads return them until
then (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
moto never deletes them, so a run past its ``expires_at`` on the fake clock is what AWS
shows within that delay.
"""

from __future__ import annotations

from types import ModuleType

from tests.support.events import HttpResponse, api_event, assert_json_error
from tests.support.fakes import FakeLambdaContext
from tests.unit.recursive_processor.conftest import (
    INPUT_PREFIX,
    Processor,
    ndjson,
    record_line,
    run_id_of,
)


def _to_expiry(processor: Processor, run_id: str) -> None:
    """Move the fake clock to the run's ``expires_at`` (expired from that second on)."""
    expires_at = int(processor.infra.run(run_id)["expires_at"])
    processor.clock.advance_to(expires_at)


def _upload(processor: Processor, name: str) -> dict:
    body = ndjson([record_line(i) for i in range(3)])
    return processor.infra.upload(f"{INPUT_PREFIX}{name}.ndjson", body)


def test_get_of_a_run_past_its_ttl_answers_404(processor: Processor, api: ModuleType) -> None:
    # GIVEN a finished run at its expires_at, its record still in the table
    run_id = processor.start(_upload(processor, "old"))
    processor.drain()
    _to_expiry(processor, run_id)
    assert processor.infra.run(run_id)["status"] == "DONE"

    # WHEN its status is asked for
    event = api_event(
        "GET", f"/runs/{run_id}", resource="/runs/{run_id}", path_parameters={"run_id": run_id}
    )
    response = HttpResponse.from_proxy(api.handler(event, FakeLambdaContext(function_name="Api")))

    # THEN 404, as after the deletion
    assert_json_error(response, 404, "not_found")


def test_a_hop_of_a_run_past_its_ttl_is_not_run(processor: Processor) -> None:
    # GIVEN a started run whose first hop arrives only after the run's expires_at
    run_id = processor.start(_upload(processor, "late"))
    before = processor.infra.run(run_id)
    _to_expiry(processor, run_id)

    # WHEN the hop is delivered
    (outcome,) = processor.drain()

    # THEN it finds no run: nothing is read, processed or written
    assert outcome["outcome"] == "missing"
    assert processor.infra.run(run_id) == before
    assert processor.infra.output_keys() == []


def test_a_notification_of_a_run_past_its_ttl_starts_it_anew(processor: Processor) -> None:
    # GIVEN a run, DONE and past its TTL
    record = _upload(processor, "again")
    run_id = processor.start(record)
    processor.drain()
    _to_expiry(processor, run_id)

    # WHEN S3 delivers its notification once more
    again = processor.notify(record)

    # THEN the expired record is replaced by a new run, which runs to DONE
    assert run_id_of(again) == run_id
    run = processor.infra.run(run_id)
    assert (run["status"], run["hop"], run["offset"]) == ("RUNNING", 1, 0)
    assert [hop["outcome"] for hop in processor.drain()] == ["done"]
    assert processor.infra.run(run_id)["status"] == "DONE"
