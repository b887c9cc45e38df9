"""Pattern 4, recursive S3 batch processor: an uploaded NDJSON file ends in a summary.

The upload notifies the processor (S3 notification, asynchronous invocation), which
works through the object in hops, invoking itself asynchronously, and writes
``<output prefix><run id>/summary.json``. The checks recompute the summary from the
file the scenario wrote: every record counted once, bad lines counted and set aside.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localstage.scenarios import Scenario, ScenarioFailedError, Transcript
from localstage.target import Target

from patterns import pattern_name_of

#: The stack of the pattern folder this module is in.
STACK = pattern_name_of(__file__)
#: Bounded real-time wait for a run of a few thousand records (cold starts included).
RUN_TIMEOUT = 60.0


@dataclass(frozen=True)
class InputFile:
    """An NDJSON file and the summary its run must end with."""

    body: bytes
    records: int
    errors: int
    amount_total: int
    checksum: str


def ndjson(
    records: int, *, bad_every: int = 0, trailing_newline: bool = True, tag: str = ""
) -> InputFile:
    """``records`` valid records (distinct ids and amounts), plus a bad line every
    ``bad_every`` records; the expected totals and checksum (the processor's digest:
    sha256 of ``id\\0amount``, first 8 bytes, summed modulo 2**64)."""
    lines: list[bytes] = []
    checksum = amount_total = errors = 0
    tag = tag or uuid.uuid4().hex[:8]
    for index in range(records):
        record_id, amount = f"{tag}-{index:07d}", index * 7 + 1
        lines.append(json.dumps({"id": record_id, "amount": amount}).encode())
        digest = hashlib.sha256(f"{record_id}\x00{amount}".encode()).digest()
        checksum = (checksum + int.from_bytes(digest[:8], "big")) % 2**64
        amount_total += amount
        if bad_every and index % bad_every == bad_every - 1:
            lines.append(b"{not json" if errors % 2 == 0 else b'{"id": "", "amount": 1}')
            errors += 1
    body = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    return InputFile(body, records, errors, amount_total, f"{checksum:016x}")


def upload(target: Target, name: str, file: InputFile) -> str:
    """Put the file under the input prefix; its key."""
    bucket = target.output(STACK, "InputBucketName")
    key = f"{target.output(STACK, 'InputPrefix')}{name}.ndjson"
    target.put_object(bucket, key, file.body)
    return key


def runs_of(target: Target, key: str) -> list[dict[str, Any]]:
    """Run records of an input key (the run id derives from the S3 event)."""
    table = target.output(STACK, "RunTableName")
    return [item for item in target.scan_items(table) if item.get("key") == key]


def wait_for_run(
    target: Target,
    key: str,
    *,
    status: str,
    timeout: float = RUN_TIMEOUT,
    matching: Callable[[dict[str, Any]], bool] = lambda run: True,
) -> dict[str, Any]:
    """The run of ``key`` once it has ``status`` (``DONE`` or ``FAILED``)."""

    def finished() -> dict[str, Any] | None:
        for run in runs_of(target, key):
            if run.get("status") == status and matching(run):
                return run
        return None

    return target.wait_for(f"a {status} run of {key}", finished, timeout=timeout, interval=0.3)


def summary_of(target: Target, run: dict[str, Any]) -> dict[str, Any]:
    bucket = target.output(STACK, "OutputBucketName")
    key = f"{target.output(STACK, 'OutputPrefix')}{run['run_id']}/summary.json"
    body = target.get_object(bucket, key)
    if body is None:
        raise ScenarioFailedError(f"run {run['run_id']} is DONE but has no {key}")
    summary: dict[str, Any] = json.loads(body)
    return summary


def check_summary(summary: dict[str, Any], file: InputFile) -> None:
    expected = {
        "status": "DONE",
        "records": file.records,
        "errors": file.errors,
        "amount_total": file.amount_total,
        "checksum": file.checksum,
    }
    actual = {name: summary.get(name) for name in expected}
    if actual != expected:
        raise ScenarioFailedError(f"summary {actual} != expected {expected}")
    if summary["source"]["size"] != len(file.body):
        raise ScenarioFailedError(f"summary size {summary['source']['size']} != {len(file.body)}")


def run_api(target: Target, run_id: str) -> dict[str, Any]:
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", f"runs/{run_id}")
    if response.status != 200:
        raise ScenarioFailedError(f"GET runs/{run_id} answered {response.status}")
    body: dict[str, Any] = response.body
    return body


def hop_capacity(target: Target) -> int | None:
    """Records one hop processes, from the processor's timeout, safety margin and simulated
    work per record; None when the work per record is 0 (a hop then takes any file a
    test can write)."""
    function = target.output(STACK, "ProcessorFunctionName")
    configuration = target.function_configuration(function)
    variables = configuration["Environment"]["Variables"]
    work_ms = int(variables.get("RECORD_WORK_MS", "0"))
    if work_ms <= 0:
        return None
    budget_ms = float(configuration["Timeout"]) * 1000 - int(variables["SAFETY_MARGIN_MS"])
    return max(1, math.floor(budget_ms / work_ms))


def happy_path(target: Target, transcript: Transcript) -> None:
    file = ndjson(2_000, bad_every=400, trailing_newline=False)
    key = upload(target, f"demo-{uuid.uuid4().hex[:8]}", file)
    transcript.say(f"uploaded {key}: {file.records} records, {file.errors} bad lines")
    run = wait_for_run(target, key, status="DONE")
    summary = summary_of(target, run)
    check_summary(summary, file)
    view = run_api(target, run["run_id"])
    if view["status"] != "DONE" or view["records"] != file.records:
        raise ScenarioFailedError(f"GET /runs/{run['run_id']} shows {view}")
    transcript.say(
        f"run {run['run_id']} DONE in {summary['hops']} hop(s): {summary['records']} records, "
        f"{summary['errors']} errors set aside, checksum {summary['checksum']}"
    )


def only_bad_records(target: Target, transcript: Transcript) -> None:
    body = b"not json\n{}\n[1, 2]\n"
    key = f"{target.output(STACK, 'InputPrefix')}bad-{uuid.uuid4().hex[:8]}.ndjson"
    target.put_object(target.output(STACK, "InputBucketName"), key, body)
    run = wait_for_run(target, key, status="DONE")
    summary = summary_of(target, run)
    if summary["records"] != 0 or summary["errors"] != 3 or not summary["error_objects"]:
        raise ScenarioFailedError(f"expected 0 records and 3 errors, got {summary}")
    transcript.say(f"a file of only bad lines: DONE with 3 errors in {summary['error_objects']}")


SCENARIOS = [
    Scenario("happy path: an upload ends DONE with a correct summary", happy_path),
    Scenario("bad input: a file of only bad records is counted, not fatal", only_bad_records),
]
