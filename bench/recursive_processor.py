"""Recursive processor vs object size: peak memory, S3 bytes read, hops against the ideal.

The processor's own code (``patterns/recursive_processor/runtime/``:
``batch_service.start_runs`` and ``batch_runner.run_hop``, with the deployed stage's
settings) processes 1, 10
and 100 MiB newline-delimited JSON objects. S3 and the run table are moto in its own
process (:class:`localstage.cloud.MotoCloud`, no IAM enforcement): moto answers a
ranged GET by loading the whole object, which in the bench's process would be counted
as the processor's memory. The bench's process then holds only what the processor
holds, and ``tracemalloc`` takes its peak over the whole run (every hop, as in one
warm execution environment).

Hops need time to run out: each invocation gets the deployed timeout and a simulated
clock that advances by a fixed amount of work per record (the code's own
``record_work_ms`` sleep, faked), so hops happen at the same records wherever the
machine is. The real parsing, checksums, ranged reads, checkpoints and summary run
as deployed. Every GetObject is counted by a botocore hook
(:class:`bench.handler_code.CallTally`), independently of the code's own tally.
"""

from __future__ import annotations

import collections
import json
import math
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from types import ModuleType
from typing import Any

from localstage.cloud import MotoCloud

from bench.figures import Figure, unmeasured
from bench.handler_code import CallTally, load_handler_module

MIB = 1024 * 1024
OBJECT_SIZES_MIB = (1, 10, 100)
#: Seconds the section may take; a size not started by then is reported as skipped.
BUDGET_S = 150.0
TABLE = "Recursive processor vs object size (real handler code; S3 and DynamoDB on moto)"

#: The deployed function (patterns/recursive_processor/stack.py and the construct's defaults,
#: every stage but ``local``): 300 s timeout, 20 s safety margin, 1 MiB ranges.
TIMEOUT_MS = 300_000
SAFETY_MARGIN_MS = 20_000
RANGE_BYTES = MIB
MAX_RECORD_BYTES = 256 * 1024
MAX_HOPS = 50
#: Simulated work per record (a record that costs a call to another service): the
#: 100 MiB object then needs several hops of the deployed timeout.
RECORD_WORK_MS = 10
#: Each line is one record padded to this size by a field the processor ignores.
LINE_BYTES = 1024
#: Multipart part size of the upload (the object is generated part by part).
PART_BYTES = 8 * MIB

#: Flatness target, whatever the size: the reader holds one range and one partial
#: record, plus the previous range while the next one arrives; 1 MiB more is left for
#: botocore's response handling and the interpreter's own allocations.
PEAK_BOUND_BYTES = 2 * RANGE_BYTES + MAX_RECORD_BYTES + MIB
BYTES_READ_RATIO_TARGET = 1.05

_INPUT_BUCKET = "bench-recursive-input"
_OUTPUT_BUCKET = "bench-recursive-output"
_RUN_TABLE = "bench-recursive-runs"


def record_line(index: int) -> bytes:
    """Line ``index`` of an input object: a valid record padded to ``LINE_BYTES``."""
    head = json.dumps({"id": f"r{index:09d}", "amount": record_amount(index)})
    prefix = f'{head[:-1]}, "note": "'
    return f'{prefix}{"x" * (LINE_BYTES - len(prefix) - 3)}"}}\n'.encode()


def record_amount(index: int) -> int:
    """The amount of record ``index`` (the expected total is summed independently)."""
    return index % 1000 - 500


def object_parts(size: int, part_bytes: int = PART_BYTES) -> Iterator[bytes]:
    """The object of ``size`` bytes (a multiple of ``LINE_BYTES``) in parts of whole lines."""
    if size % LINE_BYTES or part_bytes % LINE_BYTES:
        raise ValueError(f"sizes must be multiples of {LINE_BYTES} bytes")
    lines_per_part = part_bytes // LINE_BYTES
    total = size // LINE_BYTES
    for first in range(0, total, lines_per_part):
        last = min(first + lines_per_part, total)
        yield b"".join(record_line(index) for index in range(first, last))


@dataclass
class SimulatedInvocations:
    """Lambda's side of the chain: the time of each invocation and the hops sent.

    The clock only moves when the code sleeps (its per-record work), so
    ``remaining_ms`` runs down with the records processed, not with the machine.
    """

    timeout_ms: int
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    deadline: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    pending: collections.deque[Any] = field(default_factory=collections.deque)
    invocations: int = 0

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def remaining_ms(self) -> int:
        return max(0, math.floor((self.deadline - self.now).total_seconds() * 1000))

    def send(self, request: Any) -> None:
        """The ``HopSender`` protocol: queue the hop for the next invocation."""
        self.pending.append(request)

    def start_invocation(self) -> None:
        """A new invocation: the full timeout from now."""
        self.invocations += 1
        self.deadline = self.now + timedelta(milliseconds=self.timeout_ms)


@dataclass(frozen=True)
class RunMeasurement:
    """One object processed end to end."""

    size: int
    records: int
    hops: int
    invocations: int
    peak_bytes: int
    bytes_read: int
    get_object_requests: int
    seconds: float
    summary: dict[str, Any]

    @property
    def work_per_hop_budget(self) -> float:
        """Total simulated work / (timeout - safety margin): hops the work fills."""
        return self.records * RECORD_WORK_MS / (TIMEOUT_MS - SAFETY_MARGIN_MS)

    @property
    def ideal_hops(self) -> int:
        """The fewest whole hops the work fits in (at least one)."""
        return max(1, math.ceil(self.work_per_hop_budget - 1e-9))


def _upload(s3: Any, key: str, size: int) -> str:
    """Write the object part by part (never whole in this process); returns its ETag."""
    if size <= PART_BYTES:
        body = b"".join(object_parts(size))
        return str(s3.put_object(Bucket=_INPUT_BUCKET, Key=key, Body=body)["ETag"])
    upload_id = s3.create_multipart_upload(Bucket=_INPUT_BUCKET, Key=key)["UploadId"]
    parts = []
    for number, part in enumerate(object_parts(size), start=1):
        etag = s3.upload_part(
            Bucket=_INPUT_BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=part
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = s3.complete_multipart_upload(
        Bucket=_INPUT_BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return str(done["ETag"])


@dataclass(frozen=True)
class ProcessorCode:
    """The processor's modules the bench drives (``patterns/recursive_processor/runtime/``)."""

    models: ModuleType
    store: ModuleType
    hops: ModuleType
    runner: ModuleType
    service: ModuleType

    @classmethod
    def load(cls) -> ProcessorCode:
        """Import the modules as Lambda would (code root + layer)."""

        def load(module: str) -> ModuleType:
            return load_handler_module("recursive_processor", module)

        return cls(
            models=load("batch_models"),
            store=load("batch_store"),
            hops=load("batch_hops"),
            runner=load("batch_runner"),
            service=load("batch_service"),
        )


def process_object(cloud: MotoCloud, code: ProcessorCode, size: int) -> RunMeasurement:
    """Upload an object of ``size`` bytes and run it to DONE with the real code."""
    s3 = cloud.client("s3")
    key = f"incoming/{size}.ndjson"
    etag = _upload(s3, key, size).strip('"')
    settings = code.models.ProcessorSettings(
        output_bucket=_OUTPUT_BUCKET,
        safety_margin_ms=SAFETY_MARGIN_MS,
        max_hops=MAX_HOPS,
        range_bytes=RANGE_BYTES,
        max_record_bytes=MAX_RECORD_BYTES,
        record_work_ms=RECORD_WORK_MS,
    )
    store = code.store.RunStore(cloud.client("dynamodb"), _RUN_TABLE)
    lambda_side = SimulatedInvocations(timeout_ms=TIMEOUT_MS)
    created = code.models.ObjectCreated(
        bucket=_INPUT_BUCKET, key=key, size=size, etag=etag, sequencer=uuid.uuid4().hex
    )
    tally = CallTally()
    tally.attach(s3)
    began = time.perf_counter()
    tracemalloc.start()
    try:
        lambda_side.start_invocation()
        (run_id,) = code.service.start_runs(
            store, lambda_side, [created], now=lambda_side.clock(), settings=settings
        )
        hops = 0
        while lambda_side.pending:
            request = lambda_side.pending.popleft()
            lambda_side.start_invocation()
            environment = code.hops.HopEnvironment(
                store=store,
                s3=s3,
                sender=lambda_side,
                settings=settings,
                remaining_ms=lambda_side.remaining_ms,
                request_id=str(uuid.uuid4()),
                clock=lambda_side.clock,
                sleep=lambda_side.sleep,
            )
            outcome = code.runner.run_hop(environment, request)
            hops += 1
            if outcome not in (code.models.HopOutcome.CONTINUED, code.models.HopOutcome.DONE):
                raise RuntimeError(f"hop {request.hop} of {key}: {outcome}")
        _, peak = tracemalloc.get_traced_memory()
        bytes_read, get_object_requests = tally.bytes_read, tally.requests["s3:GetObject"]
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - began
    summary_body = s3.get_object(Bucket=_OUTPUT_BUCKET, Key=settings.summary_key(run_id))["Body"]
    summary: dict[str, Any] = json.loads(summary_body.read())
    records = size // LINE_BYTES
    expected_amount = sum(record_amount(index) for index in range(records))
    if (summary["status"], summary["records"], summary["errors"], summary["amount_total"]) != (
        "DONE",
        records,
        0,
        expected_amount,
    ):
        raise RuntimeError(f"{key}: unexpected summary {summary}")
    return RunMeasurement(
        size=size,
        records=records,
        hops=hops,
        invocations=lambda_side.invocations,
        peak_bytes=peak,
        bytes_read=bytes_read,
        get_object_requests=get_object_requests,
        seconds=seconds,
        summary=summary,
    )


def measure_object_sizes(
    sizes_mib: tuple[int, ...] = OBJECT_SIZES_MIB,
    *,
    budget_s: float = BUDGET_S,
    log: Callable[[str], Any] = print,
) -> tuple[list[RunMeasurement], str]:
    """Process each size in turn on one moto process; stops when over ``budget_s``."""
    code = ProcessorCode.load()
    began = time.monotonic()
    measured: list[RunMeasurement] = []
    with MotoCloud() as cloud:
        cloud.start()
        s3 = cloud.client("s3")
        for bucket in (_INPUT_BUCKET, _OUTPUT_BUCKET):
            s3.create_bucket(Bucket=bucket)
        cloud.client("dynamodb").create_table(
            TableName=_RUN_TABLE,
            KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for mib in sizes_mib:
            if time.monotonic() - began > budget_s:
                return measured, f"over the section's budget of {budget_s:g} s"
            log(f"    {mib} MiB object")
            measured.append(process_object(cloud, code, mib * MIB))
    return measured, ""


def recursive_processor_figures(log: Callable[[str], Any] = print) -> list[Figure]:
    """Peak memory, bytes read / size and hops vs ideal at each object size."""
    measured, skipped = measure_object_sizes(log=log)
    figures: list[Figure] = []
    smallest_peak = measured[0].peak_bytes / MIB if measured else None
    previous_peak: float | None = None
    for run in measured:
        mib = run.size // MIB
        peak = run.peak_bytes / MIB
        read_ratio = run.bytes_read / run.size
        # Every figure of an object size lies at that size on the table's curves.
        at_size = partial(Figure, table=TABLE, x=float(mib), x_label="object size (MiB)")
        figures += [
            at_size(
                name=f"{mib} MiB: peak traced memory of the processor",
                value=peak,
                unit="MiB",
                floor=smallest_peak,
                target=(
                    f"<= {PEAK_BOUND_BYTES / MIB:g} MiB at every size (2 ranges + 1 record + 1 MiB)"
                ),
                met=run.peak_bytes <= PEAK_BOUND_BYTES,
                note=(
                    f"tracemalloc over all {run.hops} hop(s); {run.records:,} records of "
                    f"{LINE_BYTES} B; ranges of {RANGE_BYTES // 1024} KiB"
                    + (
                        " (one range: the object is no bigger)"
                        if run.size <= RANGE_BYTES
                        else f"; {peak / previous_peak:.2f}x the previous size's peak"
                        if previous_peak
                        else ""
                    )
                    + f"; {run.seconds:.1f} s here"
                ),
                series="peak traced memory",
            ),
            at_size(
                name=f"{mib} MiB: S3 bytes read / object size",
                value=read_ratio,
                unit="x",
                target=f"<= {BYTES_READ_RATIO_TARGET:g}",
                met=read_ratio <= BYTES_READ_RATIO_TARGET,
                note=(
                    f"{run.bytes_read:,} B in {run.get_object_requests} ranged GETs "
                    f"(botocore hook; the summary says {run.summary['bytes_read']:,}); "
                    "each hop re-reads at most one range"
                ),
                series="bytes read / size",
            ),
            at_size(
                name=f"{mib} MiB: hops",
                value=float(run.hops),
                unit="hops",
                floor=float(run.ideal_hops),
                target="= floor = ceil(work / (timeout - margin)), at least 1",
                met=run.hops <= run.ideal_hops,
                note=(
                    f"work / (timeout - margin) = {run.work_per_hop_budget:.2f}: "
                    f"{run.records:,} records x {RECORD_WORK_MS} ms simulated; timeout "
                    f"{TIMEOUT_MS // 1000} s, margin {SAFETY_MARGIN_MS // 1000} s; "
                    f"{run.invocations} invocations with the S3 notification's"
                ),
                series="hops",
            ),
        ]
        previous_peak = peak
    return figures + unmeasured(
        OBJECT_SIZES_MIB,
        len(measured),
        table=TABLE,
        name=lambda mib: f"{mib} MiB: peak traced memory of the processor",
        unit="MiB",
        target=f"<= {PEAK_BOUND_BYTES / MIB:g} MiB at every size",
        reason=skipped,
    )
