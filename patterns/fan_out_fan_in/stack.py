"""``<stage>-FanOutFanIn``: N subtasks on SQS, an atomic idempotent counter, a reducer."""

from __future__ import annotations

import aws_cdk as cdk

from blocks.stage_settings import StageSettings
from stacks.pattern_stack import PatternStack

from .construct import RUNTIME_DIR, FanOutFanIn


class FanOutFanInStack(PatternStack):
    """Deploys :class:`patterns.fan_out_fan_in.FanOutFanIn` and watches it.

    Outputs ``ApiUrl``, ``JobTableName``, ``ResultTableName``, ``SubtaskQueueUrl``,
    ``SubtaskDeadLetterQueueUrl`` and ``ReductionFailureQueueUrl``.
    """

    def build(self, settings: StageSettings) -> None:
        """Add the pattern, its monitoring and its outputs."""
        fan = FanOutFanIn(self, "FanOutFanIn", settings=settings)

        # POST /jobs answers once all its subtasks are sent: 1.5-3 s is expected for
        # 10,000 (README, "Ventilation"), so the other APIs' 2 s p99 would page on a
        # valid large job. 10 s is still well inside the API function's 28 s.
        self.monitoring.monitor_api(
            fan.api.api, name="FanOutApi", p99_latency=cdk.Duration.seconds(10)
        )
        self.monitoring.monitor_function(fan.api_function.function, name="FanOutApiFunction")
        self.monitoring.monitor_function(fan.worker_function.function, name="FanOutWorker")
        self.monitoring.monitor_stream_consumer(fan.reducer_function.function, name="FanOutReducer")
        self.monitoring.monitor_queue(
            fan.subtask_queue.queue,
            fan.subtask_queue.dead_letter_queue,
            name="SubtaskQueue",
            # A subtask older than its job's deadline can only end in a TIMED_OUT job.
            max_message_age=fan.job_timeout,
            fair_groups=True,
        )
        self.monitoring.monitor_dead_letter_queue(
            fan.reduction_failure_queue, name="ReductionFailures"
        )
        self.monitoring.monitor_failure_delivery(
            fan.reducer_function.function, name="FanOutReducer"
        )
        # A job the worker or the reducer met past its deadline: its client gets
        # TIMED_OUT. Both report it with the JobsTimedOut metric.
        self.monitoring.alarm_on_emitted(
            "JobsTimedOut", code=RUNTIME_DIR, group="Jobs", title="Timed-out jobs"
        )
        # A worker stores a result and counts it in one TransactWriteItems.
        self.monitoring.monitor_table(fan.job_table, name="JobTable", transactions=True)
        self.monitoring.monitor_table(fan.result_table, name="ResultTable", transactions=True)

        self.output("ApiUrl", fan.api.url, "Base URL of the fan-out jobs API (IAM auth)")
        self.output("JobTableName", fan.job_table.table_name, "DynamoDB table of jobs")
        self.output(
            "ResultTableName", fan.result_table.table_name, "DynamoDB table of subtask results"
        )
        self.output("SubtaskQueueUrl", fan.subtask_queue.queue.queue_url, "SQS queue of subtasks")
        self.output(
            "SubtaskDeadLetterQueueUrl",
            fan.subtask_queue.dead_letter_queue.queue_url,
            "Subtasks that failed maxReceiveCount times (already counted as failed)",
        )
        self.output(
            "ReductionFailureQueueUrl",
            fan.reduction_failure_queue.queue_url,
            "Stream records the reducer failed after its retries",
        )
