"""Pattern 2, fan-out/fan-in: N subtasks on SQS, an atomic idempotent counter, a reducer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from blocks.function import Invocation
from blocks.pattern_construct import ApiThrottling, PatternConstruct
from blocks.queue import DEFAULT_MAX_RECEIVE_COUNT, DeadLetterQueue, WorkQueue
from blocks.stage_settings import StageSettings
from blocks.stream import grant_stream_read, stream_mapping
from blocks.table import DataTable, number_key, string_key

#: The Lambda code root beside this module: one asset for all of the pattern's functions.
RUNTIME_DIR = Path(__file__).resolve().with_name("runtime")

#: The API's contract, generated from the handler (``make api-docs``): its request models.
OPENAPI_DOCUMENT = Path(__file__).resolve().with_name("openapi.json")

# The reducer runs only for the job-item update that brought the counter to 0 while
# the job was RUNNING: every other change (the INSERT, each decrement, the reducer's
# own REDUCING and DONE writes) is dropped by Lambda before an invocation is billed.
# AWS documents DynamoDB filters on the "dynamodb" key only
# (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html), so the filter
# does not test eventName: the INSERT has remaining >= 1 (a job has 1 or more subtasks)
# and a REMOVE carries no NewImage.
REDUCER_FILTER: dict[str, Any] = {
    "dynamodb": {"NewImage": {"remaining": {"N": ["0"]}, "status": {"S": ["RUNNING"]}}},
}


class FanOutFanIn(PatternConstruct):
    """Fan-out/fan-in: a ventilator API, SQS workers, an atomic counter and a reducer.

    ``POST /jobs`` records the job in ``job_table`` with ``remaining = N`` and then sends
    the N subtasks to ``subtask_queue`` (SendMessageBatch, 10 per call, in parallel).
    Workers store each result in ``result_table`` and decrement the counter in one
    transaction a duplicate delivery cannot repeat; the job table's stream, filtered on
    ``remaining = 0``, triggers the reducer, which aggregates the results (paginated
    Query) and moves the job RUNNING to REDUCING to DONE or FAILED conditionally.

    Attributes
    ----------
    job_table:
        Jobs by ``job_id`` with the counter; its stream (NEW_IMAGE) feeds the reducer.
    result_table:
        One item per (``job_id``, ``subtask``).
    subtask_queue:
        The work queue and its DLQ (failed subtasks land there after being counted).
    reduction_failure_queue:
        Stream batches the reducer could not process after its retries.
    api_function, worker_function, reducer_function:
        The three functions; each has its own role.
    worker_mapping, reducer_mapping:
        The event source mappings (SQS, DynamoDB stream).
    job_timeout:
        How long a job may run before it ends TIMED_OUT.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        job_timeout: cdk.Duration = cdk.Duration.minutes(15),
        job_retention: cdk.Duration = cdk.Duration.days(7),
        retry_after: cdk.Duration = cdk.Duration.seconds(2),
        api_timeout: cdk.Duration = cdk.Duration.seconds(28),
        api_memory_size: int = 1024,
        send_concurrency: int = 16,
        worker_timeout: cdk.Duration = cdk.Duration.seconds(30),
        worker_batch_size: int = 10,
        worker_max_concurrency: int = 5,
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        reducer_timeout: cdk.Duration = cdk.Duration.seconds(60),
        reducer_retry_attempts: int = 5,
        api_throttling: ApiThrottling = ApiThrottling(write_rate_limit=2, write_burst_limit=5),
    ) -> None:
        super().__init__(scope, construct_id, settings=settings, code=RUNTIME_DIR)
        self.job_timeout = job_timeout
        self.job_table = DataTable(
            self,
            "JobTable",
            settings=settings,
            partition_key=string_key("job_id"),
            stream=dynamodb.StreamViewType.NEW_IMAGE,
        ).table
        self.result_table = DataTable(
            self,
            "ResultTable",
            settings=settings,
            partition_key=string_key("job_id"),
            sort_key=number_key("subtask"),
        ).table
        self.subtask_queue = WorkQueue(
            self,
            "SubtaskQueue",
            settings=settings,
            consumer_timeout=worker_timeout,
            max_receive_count=max_receive_count,
        )
        # A failing subtask is counted at the end of its last receive's run, which
        # starts (max_receive_count - 1) visibility timeouts after its first, which may
        # come as late as the API's timeout after the job was recorded. Past the job's
        # deadline its count is refused and the job ends TIMED_OUT instead of FAILED with
        # its partial aggregate.
        counted_by = (
            (max_receive_count - 1) * self.subtask_queue.visibility_timeout.to_seconds()
            + api_timeout.to_seconds()
            + worker_timeout.to_seconds()
        )
        if counted_by >= job_timeout.to_seconds():
            raise ValueError(
                f"a failing subtask is counted up to {counted_by:g} s after its job starts "
                f"({max_receive_count - 1} visibility timeouts of "
                f"{self.subtask_queue.visibility_timeout.to_seconds():g} s after the API's "
                f"{api_timeout.to_seconds():g} s, then the worker's run), not before the "
                "job timeout of "
                f"{job_timeout.to_seconds():g} s: raise job_timeout or lower worker_timeout "
                "or max_receive_count"
            )
        common_environment = {
            "JOB_TABLE_NAME": self.job_table.table_name,
            "RESULT_TABLE_NAME": self.result_table.table_name,
            "JOB_TIMEOUT_SECONDS": str(int(job_timeout.to_seconds())),
            "JOB_RETENTION_DAYS": str(int(job_retention.to_days())),
            # The API refuses a job its workers cannot finish in time at this concurrency.
            "WORKER_MAX_CONCURRENCY": str(worker_max_concurrency),
        }

        self.api_function = self.make_function.api_function(
            "FanOutApi",
            handler="fan_out_api.handler",
            description="Records fan-out jobs, sends their subtasks, reports status",
            table=self.job_table,
            table_actions=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            timeout=api_timeout,
            # More memory is more CPU: signing and sending 1,000 batches is CPU-bound.
            memory_size=api_memory_size,
            environment={
                **common_environment,
                "SUBTASK_QUEUE_URL": self.subtask_queue.queue.queue_url,
                "SEND_CONCURRENCY": str(send_concurrency),
                "RETRY_AFTER_SECONDS": str(int(retry_after.to_seconds())),
            },
        )
        self.worker_function = self.make_function(
            "FanOutWorker",
            handler="fan_out_worker.handler",
            description="Runs subtasks; stores each result and decrements the job counter",
            timeout=worker_timeout,
            invocation=Invocation.SYNCHRONOUS,
            environment={**common_environment, "MAX_RECEIVE_COUNT": str(max_receive_count)},
        )
        self.reducer_function = self.make_function(
            "FanOutReducer",
            handler="fan_out_reducer.handler",
            description="Aggregates a job's results once its counter reached zero",
            timeout=reducer_timeout,
            memory_size=512,
            invocation=Invocation.SYNCHRONOUS,
            environment=common_environment,
        )

        # Least privilege, spelled out: no grant*Data helpers that add Scan or BatchWrite.
        self.subtask_queue.grant_send(self.api_function.role)
        # TransactWriteItems is authorized per action on each item it writes.
        self.job_table.grant(self.worker_function.role, "dynamodb:UpdateItem")
        self.result_table.grant(self.worker_function.role, "dynamodb:PutItem")
        self.job_table.grant(self.reducer_function.role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self.result_table.grant(self.reducer_function.role, "dynamodb:Query")

        self.worker_mapping = self.subtask_queue.add_consumer(
            self.worker_function,
            batch_size=worker_batch_size,
            max_concurrency=worker_max_concurrency,
        )
        self.reduction_failure_queue = DeadLetterQueue(
            self,
            "ReductionFailures",
            settings=settings,
            source="the reducer's stream mapping (records it failed after its retries)",
        ).queue
        grant_stream_read(self.job_table, self.reducer_function)
        self.reducer_mapping = stream_mapping(
            self,
            "ReducerMapping",
            table=self.job_table,
            consumer=self.reducer_function,
            event_filter=REDUCER_FILTER,
            failure_queue=self.reduction_failure_queue,
            batch_size=10,
            retry_attempts=reducer_retry_attempts,
            max_record_age=cdk.Duration.days(1),
        )

        self.add_api(
            "Fan-out/fan-in jobs",
            api_throttling,
            # One submission sends up to 10,000 messages; polling is cheap.
            write_methods=["/jobs/POST"],
            openapi=OPENAPI_DOCUMENT,
        )
        self.api.add_collection("jobs", self.api_function.function, id_name="job_id")
