"""How many AWS requests a stage served, by who made them, service and action.

moto's process counts every request (:mod:`localstage._moto_requests`); this module
reads and resets those counts for :meth:`LocalStage.request_counts` and names the
caller: a function's label, with ``from_function_code`` telling the handler's own
calls from those localstage's event sources make on Lambda's behalf with the
function's role (SQS receives and deletes, stream reads), or ``admin`` (deployment,
the test target, the demo).
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from localstage.cloud import ADMIN_USER, Credentials

COUNTS_PATH = "/_localstage/requests"
RESET_PATH = "/_localstage/requests/reset"


@dataclass(frozen=True)
class RequestCount:
    """Requests of one caller for one service action.

    Attributes
    ----------
    caller : str
        A function's label (``FanOutFanInFanOutWorkerFunction``), ``admin``, or the
        access key when it belongs to no one the stage knows.
    from_function_code : bool
        True for requests the handler code sent; False for the event source's polls
        (made with the function's role) and everything else.
    service, action : str
        ``sqs``/``SendMessageBatch``, ``dynamodb``/``TransactWriteItems``...
    count : int
        How many.
    seconds : float
        Their total time in moto's process, waiting for its lock included.
    """

    caller: str
    from_function_code: bool
    service: str
    action: str
    count: int
    seconds: float


def fetch(
    endpoint_url: str, identity: Callable[[str], Credentials | None], labels: dict[str, str]
) -> list[RequestCount]:
    """Read the counts from moto's process; ``labels`` maps a principal ARN to a label."""
    with urllib.request.urlopen(f"{endpoint_url}{COUNTS_PATH}", timeout=10) as response:
        rows = json.loads(response.read())
    counts = []
    for row in rows:
        credentials = identity(row["access_key_id"])
        if credentials is None:
            caller = row["access_key_id"]
        elif credentials.principal_arn.endswith(f":user/{ADMIN_USER}"):
            caller = "admin"
        else:
            caller = labels.get(credentials.principal_arn, credentials.principal_arn)
        counts.append(
            RequestCount(
                caller=caller,
                from_function_code=bool(row["from_function_code"]),
                service=row["service"],
                action=row["action"],
                count=int(row["count"]),
                seconds=float(row["seconds"]),
            )
        )
    return counts


def reset(endpoint_url: str) -> None:
    """Clear the counts."""
    request = urllib.request.Request(f"{endpoint_url}{RESET_PATH}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def totals(
    counts: Iterable[RequestCount],
    *,
    caller: str | None = None,
    from_function_code: bool | None = None,
) -> Counter[str]:
    """``{"sqs:SendMessageBatch": n, ...}`` over the counts that match the filters."""
    summed: Counter[str] = Counter()
    for row in counts:
        if caller is not None and row.caller != caller:
            continue
        if from_function_code is not None and row.from_function_code != from_function_code:
            continue
        summed[f"{row.service}:{row.action}"] += row.count
    return summed
