"""``<stage>-DecoupledInvocation``: request, 202 Accepted, poll."""

from __future__ import annotations

from blocks.stage_settings import StageSettings
from stacks.pattern_stack import PatternStack

from .construct import RUNTIME_DIR, DecoupledInvocation


class DecoupledInvocationStack(PatternStack):
    """Deploys :class:`patterns.decoupled_invocation.DecoupledInvocation` and watches it.

    Outputs ``ApiUrl``, ``JobTableName``, ``TaskQueueUrl`` and ``TaskDeadLetterQueueUrl``.
    """

    def build(self, settings: StageSettings) -> None:
        """Add the pattern, its monitoring and its outputs."""
        jobs = DecoupledInvocation(self, "DecoupledInvocation", settings=settings)

        self.monitoring.monitor_api(jobs.api.api, name="JobApi")
        self.monitoring.monitor_function(jobs.api_function.function, name="JobApiFunction")
        self.monitoring.monitor_function(jobs.worker_function.function, name="JobWorker")
        self.monitoring.monitor_queue(
            jobs.task_queue.queue,
            jobs.task_queue.dead_letter_queue,
            name="TaskQueue",
            # A task older than its job's deadline can only end TIMED_OUT.
            max_message_age=jobs.job_timeout,
            fair_groups=True,
        )
        self.monitoring.monitor_table(jobs.job_table, name="JobTable")
        # A job a worker met past its deadline (or finished too late): its client gets
        # TIMED_OUT. The worker reports it with the JobsTimedOut metric.
        self.monitoring.alarm_on_emitted(
            "JobsTimedOut", code=RUNTIME_DIR, group="Jobs", title="Timed-out jobs"
        )

        self.output("ApiUrl", jobs.api.url, "Base URL of the jobs API (IAM auth)")
        self.output("JobTableName", jobs.job_table.table_name, "DynamoDB table of jobs")
        self.output("TaskQueueUrl", jobs.task_queue.queue.queue_url, "SQS queue of tasks")
        self.output(
            "TaskDeadLetterQueueUrl",
            jobs.task_queue.dead_letter_queue.queue_url,
            "Tasks that failed maxReceiveCount times",
        )
