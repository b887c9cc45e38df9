"""``<stage>-RecursiveProcessor``: large S3 objects processed by a self-invoking function."""

from __future__ import annotations

import aws_cdk as cdk

from blocks.stage_settings import StageSettings
from stacks.pattern_stack import PatternStack

from .construct import RUNTIME_DIR, RecursiveProcessor


class RecursiveProcessorStack(PatternStack):
    """Deploys :class:`patterns.recursive_processor.RecursiveProcessor` and watches it.

    Outputs ``ApiUrl``, ``InputBucketName``, ``InputPrefix``, ``OutputBucketName``,
    ``OutputPrefix``, ``RunTableName``, ``ProcessorFunctionName`` and ``FailureQueueUrl``.
    """

    def build(self, settings: StageSettings) -> None:
        """Add the pattern, its monitoring and its outputs."""
        # cdk.json `stage_tuning.<stage>.RecursiveProcessor` may shorten the hop (the
        # local stage does, so a test-sized file takes several hops) and cap how many
        # chains run at once (`max_concurrency`: reserved concurrency, see the README).
        tuning = settings.tuning_for(self.pattern_name)
        files = RecursiveProcessor(
            self,
            "RecursiveProcessor",
            settings=settings,
            timeout=cdk.Duration.seconds(tuning.get("timeout_seconds", 300)),
            safety_margin=cdk.Duration.millis(tuning.get("safety_margin_ms", 20_000)),
            record_work=cdk.Duration.millis(tuning.get("record_work_ms", 0)),
            max_concurrency=tuning.get("max_concurrency"),
        )
        failure_queue = files.processor.failure_queue
        assert failure_queue is not None

        self.monitoring.monitor_async_function(files.processor, name="Processor")
        self.monitoring.monitor_api(files.api.api, name="RunApi")
        self.monitoring.monitor_function(files.api_function.function, name="RunApiFunction")
        self.monitoring.monitor_dead_letter_queue(failure_queue.queue, name="ProcessorFailures")
        self.monitoring.monitor_failure_delivery(files.processor.function, name="Processor")
        self.monitoring.monitor_table(files.run_table, name="RunTable")
        # A FAILED run (object changed, hop limit, no progress) is not a function error:
        # the processor reports it with the RunsFailed metric.
        self.monitoring.alarm_on_emitted(
            "RunsFailed", code=RUNTIME_DIR, group="Runs", title="Failed runs"
        )

        self.output("ApiUrl", files.api.url, "Base URL of GET /runs/{run_id} (IAM auth)")
        self.output(
            "InputBucketName",
            files.input_bucket.bucket_name,
            f"Upload NDJSON objects here, under {files.input_prefix} ending {files.input_suffix}",
        )
        self.output("InputPrefix", files.input_prefix, "Key prefix that starts a run")
        self.output(
            "OutputBucketName", files.output_bucket.bucket_name, "Summaries and error objects"
        )
        self.output("OutputPrefix", files.output_prefix, "Key prefix of every run's outputs")
        self.output("RunTableName", files.run_table.table_name, "DynamoDB table of runs")
        self.output(
            "ProcessorFunctionName",
            files.processor.function.function_name,
            "The self-invoking processor function",
        )
        self.output(
            "FailureQueueUrl",
            failure_queue.queue.queue_url,
            "Invocations that failed after Lambda's retries",
        )
