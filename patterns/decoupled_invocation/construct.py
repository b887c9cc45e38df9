"""Pattern 1, decoupled invocation: POST answers 202 at once, a worker does the job."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from blocks.function import Invocation
from blocks.pattern_construct import ApiThrottling, PatternConstruct
from blocks.queue import DEFAULT_MAX_RECEIVE_COUNT, WorkQueue
from blocks.stage_settings import StageSettings
from blocks.table import DataTable, string_key

#: The Lambda code root beside this module: one asset for all of the pattern's functions.
RUNTIME_DIR = Path(__file__).resolve().with_name("runtime")
#: The longest work a job may ask for (``duration_ms``, mirrors ``job_models.MAX_DURATION_MS``).
MAX_JOB_DURATION = cdk.Duration.seconds(10)
#: What a job takes besides its work (claim, re-read, finish: DynamoDB calls, one
#: attempt among them stalled and retried); mirrors ``job_models.JOB_OVERHEAD_MS``.
JOB_OVERHEAD = cdk.Duration.seconds(5)

#: The API's contract, generated from the handler (``make api-docs``): its request models.
OPENAPI_DOCUMENT = Path(__file__).resolve().with_name("openapi.json")


class DecoupledInvocation(PatternConstruct):
    """Request, 202 Accepted, poll: a REST API in front of an SQS-buffered worker.

    ``POST /jobs`` stores a PENDING job in ``job_table`` and queues it on
    ``task_queue``; the worker consumes the queue with partial batch responses and a
    maximum concurrency, moving each job PENDING to RUNNING to DONE or FAILED only
    through conditional writes; ``GET /jobs/{job_id}`` answers 202 until the job is done.

    Attributes
    ----------
    job_table:
        Jobs by ``job_id``; items expire through TTL on ``expires_at``.
    task_queue:
        The work queue and its DLQ.
    api_function, worker_function:
        The two functions; each has its own role.
    job_timeout:
        How long a job may take from POST before it ends TIMED_OUT.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        job_timeout: cdk.Duration = cdk.Duration.minutes(5),
        job_retention: cdk.Duration = cdk.Duration.days(7),
        retry_after: cdk.Duration = cdk.Duration.seconds(2),
        worker_timeout: cdk.Duration = cdk.Duration.seconds(30),
        worker_batch_size: int = 2,
        worker_max_concurrency: int = 5,
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        api_throttling: ApiThrottling = ApiThrottling(write_rate_limit=10, write_burst_limit=20),
    ) -> None:
        super().__init__(scope, construct_id, settings=settings, code=RUNTIME_DIR)
        self.job_timeout = job_timeout
        # Jobs of a batch run one after another. A batch of the longest jobs must end
        # before the function times out: a timeout fails the whole batch (no partial
        # response), finished jobs included, and each failed receive brings a valid job
        # closer to the DLQ. The worker also hands back a job it has no time to start
        # (JOB_BUDGET_MS), but a handed-back message counts a receive too, so the sizing
        # is what makes it impossible; the check is the defence if the sizing is wrong.
        self.job_budget = cdk.Duration.millis(
            MAX_JOB_DURATION.to_milliseconds() + JOB_OVERHEAD.to_milliseconds()
        )
        needed_ms = worker_batch_size * self.job_budget.to_milliseconds()
        if needed_ms > worker_timeout.to_milliseconds():
            raise ValueError(
                f"a batch of {worker_batch_size} jobs may take {needed_ms / 1000:g} s "
                f"({MAX_JOB_DURATION.to_milliseconds() / 1000:g} s of work and "
                f"{JOB_OVERHEAD.to_milliseconds() / 1000:g} s overhead each): more than "
                f"the worker timeout of {worker_timeout.to_seconds():g} s; lower "
                "worker_batch_size or raise worker_timeout"
            )
        self.job_table = DataTable(
            self, "JobTable", settings=settings, partition_key=string_key("job_id")
        ).table
        self.task_queue = WorkQueue(
            self,
            "TaskQueue",
            settings=settings,
            consumer_timeout=worker_timeout,
            max_receive_count=max_receive_count,
        )
        # A message that fails (a crash, a timeout, a job handed back) comes back after
        # the visibility timeout: the deadline must leave room for that retry to run,
        # or every failed first attempt would end TIMED_OUT with receives to spare.
        retry_ends = self.task_queue.visibility_timeout.to_seconds() + worker_timeout.to_seconds()
        if job_timeout.to_seconds() < retry_ends:
            raise ValueError(
                f"job_timeout of {job_timeout.to_seconds():g} s ends before a failed "
                f"message's retry can: it returns after the visibility timeout of "
                f"{self.task_queue.visibility_timeout.to_seconds():g} s (6x worker_timeout) "
                f"and runs for up to {worker_timeout.to_seconds():g} s; raise job_timeout "
                f"to at least {retry_ends:g} s or lower worker_timeout"
            )
        common_environment = {
            "JOB_TABLE_NAME": self.job_table.table_name,
            "JOB_TIMEOUT_SECONDS": str(int(job_timeout.to_seconds())),
            "JOB_RETENTION_DAYS": str(int(job_retention.to_days())),
        }
        self.api_function = self.make_function.api_function(
            "JobApi",
            handler="job_api.handler",
            description="Accepts jobs (202) and reports their status",
            table=self.job_table,
            table_actions=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            environment={
                **common_environment,
                "TASK_QUEUE_URL": self.task_queue.queue.queue_url,
                "RETRY_AFTER_SECONDS": str(int(retry_after.to_seconds())),
            },
        )
        self.worker_function = self.make_function(
            "JobWorker",
            handler="job_worker.handler",
            description="Runs queued jobs; conditional status transitions",
            timeout=worker_timeout,
            invocation=Invocation.SYNCHRONOUS,
            environment={
                **common_environment,
                "JOB_BUDGET_MS": str(int(self.job_budget.to_milliseconds())),
            },
        )

        # Least privilege, spelled out: no grant*Data helpers that add Scan or BatchWrite.
        self.job_table.grant(self.worker_function.role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self.task_queue.grant_send(self.api_function.role)

        self.task_mapping = self.task_queue.add_consumer(
            self.worker_function,
            batch_size=worker_batch_size,
            max_concurrency=worker_max_concurrency,
        )

        self.add_api(
            "Decoupled invocation jobs",
            api_throttling,
            # Submitting starts work; polling is cheap: submissions get a lower limit.
            write_methods=["/jobs/POST"],
            openapi=OPENAPI_DOCUMENT,
        )
        self.api.add_collection("jobs", self.api_function.function, id_name="job_id")
