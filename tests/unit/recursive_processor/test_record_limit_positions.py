"""A record's fate depends on its own bytes, never on where ranges or hops cut the object.

The reference is a plain whole-file model: split the object on ``\\n``, drop one ``\\r``
before each newline, and judge every line alone (over ``max_record_bytes`` bytes:
``record_too_large``; otherwise ``parse_line``). The summary of any run of the same
object (records, amount, checksum, errors by code, the bad records listed) must equal
the model's, whatever the range size and wherever the hops start.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.fakes import FakeClock
from tests.unit.recursive_processor.conftest import (
    INPUT_BUCKET,
    OUTPUT_BUCKET,
    TABLE_NAME,
    BatchModules,
    Infra,
)
from tests.unit.recursive_processor.record_limit_model import (
    ETAG,
    KEY,
    PROPERTY,
    CollectingSender,
    FakeS3,
    hop_lengths,
    objects,
    range_sizes,
    read_in_hops,
    reference,
    run_summary_of,
    summarize,
)

# --------------------------------------------------------------------------- properties


@PROPERTY
@given(obj=objects(), range_bytes=range_sizes, hops=hop_lengths)
def test_lines_are_judged_by_their_own_bytes_whatever_the_ranges_and_hops(
    batch: BatchModules, obj: tuple[bytes, int], range_bytes: int, hops: list[int]
) -> None:
    # GIVEN any object (records, bad lines, blank lines, lines around the record limit,
    # \r\n or \n, with or without a last newline), any range size and any hop points
    data, limit = obj
    # WHEN it is read in ranges of that size, hop after hop
    results = read_in_hops(batch, data, range_bytes=range_bytes, limit=limit, hops=hops)
    # THEN the summary is the whole-file model's: counts, codes, checksum, bad records
    expected = reference(batch, data, limit)
    actual = summarize(results)
    assert (actual.records, actual.errors, actual.checksum, actual.amount) == (
        expected.records,
        expected.errors,
        expected.checksum,
        expected.amount,
    )
    assert actual.bad_records == expected.bad_records


class HopTime:
    """A hop's remaining time that lets it take ``budget`` lines, then falls under the
    margin: the first call is the claim's deadline; every later one answers whether
    ``budget`` lines were taken (:meth:`took_line`), so the checks the reader makes while
    scanning a long line for its end find time enough (that cut is tested elsewhere)."""

    def __init__(self, budget: int, margin_ms: int) -> None:
        self.budget, self.margin_ms = budget, margin_ms
        self.calls = self.lines = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls == 1:
            return 60_000
        return self.margin_ms if self.lines < self.budget else self.margin_ms - 1

    def took_line(self) -> None:
        self.lines += 1


@pytest.fixture
def hop_world(infra: Infra, batch: BatchModules) -> dict[str, Any]:
    """The run table on moto (created once per test, shared by its examples)."""
    return {"store": batch.store.RunStore(infra.dynamodb, TABLE_NAME)}


@settings(PROPERTY, max_examples=40, suppress_health_check=list(HealthCheck))
@given(obj=objects(), range_bytes=range_sizes, hops=hop_lengths)
def test_a_run_reports_the_same_summary_whatever_the_ranges_and_hops(
    batch: BatchModules,
    hop_world: dict[str, Any],
    obj: tuple[bytes, int],
    range_bytes: int,
    hops: list[int],
) -> None:
    # GIVEN any object, range size and hop points; the run table on moto (each example
    # is a run of its own: same table, another run id)
    data, limit = obj
    s3 = FakeS3({(INPUT_BUCKET, KEY): data})
    sender = CollectingSender()
    clock = FakeClock()
    settings_ = batch.models.ProcessorSettings(
        output_bucket=OUTPUT_BUCKET,
        safety_margin_ms=1_000,
        max_hops=10_000,
        range_bytes=range_bytes,
        max_record_bytes=limit,
    )
    created = batch.models.ObjectCreated(
        bucket=INPUT_BUCKET, key=KEY, size=len(data), etag=ETAG, sequencer=uuid.uuid4().hex
    )
    store = hop_world["store"]
    (run_id,) = batch.service.start_runs(store, sender, [created], now=clock(), settings=settings_)

    # WHEN every hop runs, each stopping after its own number of lines
    budgets = itertools.cycle(hops)
    delivered = 0
    interpret_line = batch.runner.interpret_line
    world = {"store": store, "s3": s3, "sender": sender, "settings": settings_}
    try:
        while delivered < len(sender.requests):
            request = sender.requests[delivered]
            delivered += 1
            hop_time = HopTime(next(budgets), settings_.safety_margin_ms)

            def counted(*args: Any, hop_time: HopTime = hop_time, **kwargs: Any) -> Any:
                hop_time.took_line()
                return interpret_line(*args, **kwargs)

            batch.runner.interpret_line = counted
            env = batch.hops.HopEnvironment(
                **world, remaining_ms=hop_time, request_id=str(uuid.uuid4()), clock=clock
            )
            outcome = batch.runner.run_hop(env, request)
            assert outcome in (batch.models.HopOutcome.CONTINUED, batch.models.HopOutcome.DONE)
            clock.advance(1)
    finally:
        batch.runner.interpret_line = interpret_line

    # THEN the summary and errors objects say what the whole-file model says
    document = s3.json(settings_.summary_key(run_id))
    bad_records = [line for key in document["error_objects"] for line in s3.lines(key)]
    assert run_summary_of(document, bad_records) == reference(batch, data, limit)
