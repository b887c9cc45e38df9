"""Fixtures for the recursive processor: moto buckets and run table, a fresh handler
module with fake time and an in-memory invoker, and a driver that plays Lambda's part
(delivering the self-invocations one after another, or twice, or late)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from handler_kit.clock import parse_timestamp

from tests.support import handlers as handler_modules
from tests.support.events import s3_event, s3_object_created_record
from tests.support.fakes import FakeClock, FakeLambdaContext, FakeLambdaInvoker, FakeSleep
from tests.support.moto_resources import create_table

INPUT_BUCKET = "recursive-processor-input-test"
OUTPUT_BUCKET = "recursive-processor-output-test"
TABLE_NAME = "recursive-processor-runs-test"
INPUT_PREFIX = "incoming/"
FUNCTION_NAME = "RecursiveProcessor"
HANDLER_MODULES = (
    "line_reader",
    "batch_records",
    "batch_models",
    "batch_events",
    "batch_store",
    "batch_hops",
    "batch_claims",
    "batch_runner",
    "batch_service",
    "batch_processor",
    "run_api",
)

# Hop math of these tests: a hop starts with TIMEOUT_MS, takes records while at least
# SAFETY_MARGIN_MS remain and each record costs RECORD_WORK_MS of (fake) time, so a hop
# takes (3000 - 1000) / 100 + 1 = 21 records.
TIMEOUT_MS = 3_000
SAFETY_MARGIN_MS = 1_000
RECORD_WORK_MS = 100
RECORDS_PER_HOP = 21
# Small ranges, so every hop reads several and lines straddle range boundaries.
RANGE_BYTES = 64
#: A RUNNING run not updated for this long reads FAILED stalled (the run API's setting).
RUN_STALLED_AFTER_SECONDS = 8_700
MAX_RECORD_BYTES = 200


# --------------------------------------------------------------------------- input files


def record_line(index: int, *, amount: int | None = None) -> str:
    """A valid input line: ``{"id": "rec-00001", "amount": 7}``."""
    value = amount if amount is not None else (index * 37) % 1000 - 500
    return json.dumps({"id": f"rec-{index:05d}", "amount": value})


def ndjson(lines: Sequence[str], *, trailing_newline: bool = True) -> bytes:
    text = "\n".join(lines)
    return (text + ("\n" if trailing_newline and lines else "")).encode("utf-8")


@dataclass(frozen=True)
class Expected:
    """The summary a correct run reports, computed independently of the code under test."""

    records: int
    amount_total: int
    checksum: str

    @classmethod
    def of(cls, good_lines: Sequence[str]) -> Expected:
        total = 0
        amount = 0
        for line in good_lines:
            value = json.loads(line)
            digest = hashlib.sha256(f"{value['id']}\x00{value['amount']}".encode()).digest()
            total += int.from_bytes(digest[:8], "big")
            amount += value["amount"]
        return cls(len(good_lines), amount, f"{total % 2**64:016x}")


# --------------------------------------------------------------------------- moto infra


@dataclass
class Infra:
    """The moto buckets and run table, and ways to look at them."""

    s3: Any
    dynamodb: Any

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Put an input object; returns the S3 ObjectCreated record S3 would send."""
        response = self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body)
        return s3_object_created_record(
            INPUT_BUCKET, key, size=len(body), etag=response["ETag"].strip('"')
        )

    def run(self, run_id: str) -> dict[str, Any]:
        item = handler_modules.table_item(self.dynamodb, TABLE_NAME, {"run_id": {"S": run_id}})
        assert item is not None, f"no run {run_id}"
        return item

    def runs(self) -> list[dict[str, Any]]:
        return handler_modules.table_items(self.dynamodb, TABLE_NAME)

    def output_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=OUTPUT_BUCKET)
        return sorted(entry["Key"] for entry in listing.get("Contents", []))

    def output_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read())

    def output_lines(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read()
        return [json.loads(line) for line in body.decode("utf-8").splitlines()]


@pytest.fixture
def infra(aws_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Infra:
    s3 = aws_client("s3")
    dynamodb = aws_client("dynamodb")
    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    create_table(dynamodb, TABLE_NAME, ("run_id", "S"))
    handler_modules.set_function_environment(
        monkeypatch,
        "recursive-processor",
        {
            "RUN_TABLE_NAME": TABLE_NAME,
            "OUTPUT_BUCKET_NAME": OUTPUT_BUCKET,
            "OUTPUT_PREFIX": "runs/",
            "SAFETY_MARGIN_MS": str(SAFETY_MARGIN_MS),
            "MAX_HOPS": "50",
            "RANGE_BYTES": str(RANGE_BYTES),
            "MAX_RECORD_BYTES": str(MAX_RECORD_BYTES),
            "RECORD_WORK_MS": str(RECORD_WORK_MS),
            "RUN_RETENTION_DAYS": "30",
            "RUN_STALLED_AFTER_SECONDS": str(RUN_STALLED_AFTER_SECONDS),
        },
    )
    return Infra(s3=s3, dynamodb=dynamodb)


# --------------------------------------------------------------------------- the modules


@dataclass(frozen=True)
class BatchModules:
    """The processor's logic modules, as imported together (see ``import_batch_modules``)."""

    line_reader: ModuleType
    records: ModuleType
    models: ModuleType
    events: ModuleType
    store: ModuleType
    hops: ModuleType
    claims: ModuleType
    runner: ModuleType
    service: ModuleType

    @classmethod
    def loaded(cls) -> BatchModules:
        """The modules as currently imported (``sys.modules``)."""
        return cls(
            line_reader=sys.modules["line_reader"],
            records=sys.modules["batch_records"],
            models=sys.modules["batch_models"],
            events=sys.modules["batch_events"],
            store=sys.modules["batch_store"],
            hops=sys.modules["batch_hops"],
            claims=sys.modules["batch_claims"],
            runner=sys.modules["batch_runner"],
            service=sys.modules["batch_service"],
        )


# --------------------------------------------------------------------------- the driver


@dataclass
class Processor:
    """The freshly imported handler, its fakes, and Lambda's side of the chain."""

    module: ModuleType
    batch: BatchModules
    clock: FakeClock
    sleep: FakeSleep
    invoker: FakeLambdaInvoker
    infra: Infra
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0

    def configure(self, **changes: Any) -> None:
        """Change settings the stack would set in the environment (e.g. ``max_hops``)."""
        self.module.SETTINGS = dataclasses.replace(self.module.SETTINGS, **changes)

    def invoke(
        self,
        event: dict[str, Any],
        *,
        remaining_ms: int = TIMEOUT_MS,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """One invocation with a context whose remaining time runs down with the clock;
        ``request_id`` as Lambda gives it to every retry of one event (new when None)."""
        context = FakeLambdaContext(
            function_name=FUNCTION_NAME, remaining_ms=remaining_ms, clock=self.clock
        )
        if request_id is not None:
            context.aws_request_id = request_id
        result: dict[str, Any] = self.module.handler(event, context)
        self.outcomes.append(result)
        return result

    def notify(self, *records: dict[str, Any]) -> dict[str, Any]:
        """S3 delivers an ObjectCreated event with these records."""
        return self.invoke(s3_event(*records))

    def upload_lines(
        self, name: str, body: Sequence[str], *, trailing_newline: bool = True
    ) -> dict[str, Any]:
        """Upload ``body`` as NDJSON under the input prefix; the S3 record of the object."""
        data = ndjson(body, trailing_newline=trailing_newline)
        return self.infra.upload(f"{INPUT_PREFIX}{name}", data)

    def delete_input(self, name: str) -> None:
        """Delete the input object :meth:`upload_lines` wrote under ``name``."""
        self.infra.s3.delete_object(Bucket=INPUT_BUCKET, Key=f"{INPUT_PREFIX}{name}")

    def start(self, record: dict[str, Any]) -> str:
        """S3 notifies ``record`` alone; the id of the run that starts."""
        return run_id_of(self.notify(record))

    def assert_done(
        self, run_id: str, good_lines: Sequence[str], *, errors: int = 0
    ) -> dict[str, Any]:
        """:func:`assert_done_with` the summary ``good_lines`` make; the summary."""
        return assert_done_with(self, run_id, Expected.of(good_lines), errors=errors)

    def pending(self) -> list[dict[str, Any]]:
        """Self-invocations sent but not yet delivered."""
        return self.invoker.payloads[self.delivered :]

    def deliver_next(self) -> dict[str, Any]:
        payload = self.invoker.payloads[self.delivered]
        self.delivered += 1
        return self.invoke(payload)

    def drain(self, *, limit: int = 500) -> list[dict[str, Any]]:
        """Deliver every self-invocation, including those they send, in order."""
        results = []
        while self.pending():
            assert len(results) < limit, "the chain does not end"
            results.append(self.deliver_next())
        return results


#: Import a handler module anew, so its module-level clients bind to this test's moto.
import_fresh = functools.partial(handler_modules.import_fresh, modules=HANDLER_MODULES)


def import_batch_modules() -> BatchModules:
    """Import the processor's logic modules anew (one fresh set, importing each other)."""
    import_fresh("batch_service")
    for name in ("batch_runner", "batch_events"):
        importlib.import_module(name)
    return BatchModules.loaded()


@pytest.fixture(scope="module")
def batch() -> BatchModules:
    """One fresh set of the logic modules for a test module's pure-logic tests."""
    return import_batch_modules()


@pytest.fixture
def processor(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> Iterator[Processor]:
    module = import_fresh("batch_processor")
    clock = FakeClock()
    sleep = FakeSleep(clock)
    invoker = FakeLambdaInvoker()
    monkeypatch.setattr(module, "clock", clock)
    monkeypatch.setattr(module, "sleep", sleep)
    monkeypatch.setattr(module, "lambda_client", invoker)
    yield Processor(
        module=module,
        batch=BatchModules.loaded(),
        clock=clock,
        sleep=sleep,
        invoker=invoker,
        infra=infra,
    )


@pytest.fixture
def api(processor: Processor, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The run API's module, bound to the processor's moto and clock."""
    # imported after the processor fixture, so it binds to the same moto and modules
    module = importlib.import_module("run_api")
    # the processor's clock: runs it started expire (TTL) relative to it
    monkeypatch.setattr(module, "clock", processor.clock)
    return module


def run_id_of(result: dict[str, Any], index: int = 0) -> str:
    run_ids: list[str] = result["run_ids"]
    return run_ids[index]


# ------------------------------------------------------------------ batch processor helpers

SUMMARY_FIELDS = {
    "run_id",
    "status",
    "source",
    "records",
    "errors",
    "amount_total",
    "checksum",
    "hops",
    "bytes_read",
    "started_at",
    "finished_at",
    "duration_ms",
    "error_objects",
}


def lines(count: int, start: int = 0) -> list[str]:
    return [record_line(index) for index in range(start, start + count)]


def assert_done_with(
    processor: Processor, run_id: str, expected: Expected, *, errors: int = 0
) -> dict[str, Any]:
    run = processor.infra.run(run_id)
    assert run["status"] == "DONE"
    summary: dict[str, Any] = processor.infra.output_json(run["summary_key"])
    assert set(summary) == SUMMARY_FIELDS
    assert summary["records"] == run["records"] == expected.records
    assert summary["amount_total"] == run["amount_total"] == expected.amount_total
    assert summary["checksum"] == expected.checksum
    assert summary["errors"] == run["errors"] == errors
    assert summary["hops"] == run["hops"]
    assert summary["bytes_read"] == run["bytes_read"]
    assert run["offset"] == run["size"] == summary["source"]["size"]
    started, finished = (parse_timestamp(summary[when]) for when in ("started_at", "finished_at"))
    assert summary["duration_ms"] == (finished - started) // timedelta(milliseconds=1)
    return summary
