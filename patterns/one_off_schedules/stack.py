"""``<stage>-OneOffSchedules``: one-time EventBridge schedules that delete themselves."""

from __future__ import annotations

from blocks.stage_settings import StageSettings
from stacks.pattern_stack import PatternStack

from .construct import RUNTIME_DIR, OneOffSchedules


class OneOffSchedulesStack(PatternStack):
    """Deploys :class:`patterns.one_off_schedules.OneOffSchedules` and watches it.

    Outputs ``ApiUrl``, ``ScheduleTableName``, ``ScheduleGroupName`` and
    ``ScheduleDeadLetterQueueUrl``.
    """

    def build(self, settings: StageSettings) -> None:
        """Add the pattern, its monitoring and its outputs."""
        schedules = OneOffSchedules(self, "OneOffSchedules", settings=settings)

        self.monitoring.monitor_api(schedules.api.api, name="ScheduleApi")
        self.monitoring.monitor_function(
            schedules.api_function.function, name="ScheduleApiFunction"
        )
        self.monitoring.monitor_async_function(schedules.executor_function, name="ScheduleExecutor")
        self.monitoring.monitor_async_function(schedules.cleanup_function, name="ScheduleCleanup")
        self.monitoring.monitor_table(schedules.schedule_table, name="ScheduleTable")
        # Events the Scheduler could not deliver, and cleanups that failed all retries:
        # either may leave a schedule or a record behind, so both alarm at once.
        self.monitoring.monitor_dead_letter_queue(
            schedules.schedule_dead_letter_queue, name="ScheduleDeadLetterQueue"
        )
        cleanup_failures = schedules.cleanup_function.failure_queue
        assert cleanup_failures is not None
        self.monitoring.monitor_dead_letter_queue(
            cleanup_failures.queue, name="CleanupFailureQueue"
        )
        # A run whose task failed all its attempts: its record reads FAILED. The task's
        # errors alarm too, but on retried errors as well; this counts runs lost.
        self.monitoring.alarm_on_emitted(
            "RunsFailed", code=RUNTIME_DIR, group="Runs", title="Failed runs"
        )
        # What neither of those queues would see: an event the Scheduler could not put in
        # its DLQ, and a destination record Lambda could not deliver.
        self.monitoring.monitor_schedule_group(schedules.schedule_group, name="ScheduleGroup")
        for function, name in (
            (schedules.executor_function.function, "ScheduleExecutor"),
            (schedules.cleanup_function.function, "ScheduleCleanup"),
        ):
            self.monitoring.monitor_failure_delivery(function, name=name)

        self.output("ApiUrl", schedules.api.url, "Base URL of the schedules API (IAM auth)")
        self.output(
            "ScheduleTableName", schedules.schedule_table.table_name, "DynamoDB table of schedules"
        )
        self.output(
            "ScheduleGroupName",
            schedules.schedule_group_name,
            "EventBridge Scheduler group holding this stage's schedules",
        )
        self.output(
            "ScheduleDeadLetterQueueUrl",
            schedules.schedule_dead_letter_queue.queue_url,
            "Events the Scheduler could not deliver to the executor",
        )
