"""Alarms and a dashboard per pattern stack, built with cdk-monitoring-constructs."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import cdk_monitoring_constructs as monitoring
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from blocks.function import ServiceFunction, service_name
from blocks.stage_settings import StageSettings

_ALARM = "Critical"

#: Lambda's waits before the retries of an asynchronous event whose function failed:
#: 1 minute, then 2 (invocation-async-error-handling).
ERROR_RETRY_WAITS = (cdk.Duration.minutes(1), cdk.Duration.minutes(2))
#: How much longer than its own retries explain an event may wait before its function's
#: ``EventWait`` alarm fires: Lambda's throttle retries back off up to 5 minutes.
EVENT_WAIT_SLACK = cdk.Duration.minutes(5)


class ServiceMonitoring(Construct):
    """One dashboard and the alarms every pattern needs, all notifying one topic.

    Alarm and dashboard names start with ``<stage>-<pattern>`` so stages sharing an
    account never collide and an alarm says where it comes from. Dashboards are global
    to the account, not regional ("All dashboards in your account are global, not
    region-specific", AWS::CloudWatch::Dashboard), so a dashboard's name ends with its
    region: one stage deployed in two regions gets two dashboards, not one overwritten.

    Attributes
    ----------
    facade:
        The ``MonitoringFacade``, for pattern-specific monitors.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        pattern_name: str,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._metrics_namespace = settings.metrics_namespace
        prefix = f"{settings.stage_name}-{pattern_name}"
        self.facade = monitoring.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=monitoring.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix=prefix,
                action=monitoring.SnsAlarmActionStrategy(on_alarm_topic=alarm_topic),
                datapoints_to_alarm=1,
                evaluation_periods=1,
            ),
            metric_factory_defaults=monitoring.MetricFactoryDefaults(
                namespace=settings.metrics_namespace
            ),
            dashboard_factory=monitoring.DefaultDashboardFactory(
                self,
                "Dashboards",
                dashboard_name_prefix=f"{prefix}-{cdk.Aws.REGION}",
                create_dashboard=True,
                create_alarm_dashboard=False,
                create_summary_dashboard=False,
            ),
        )

    def monitor_function(self, function: lambda_.IFunction, *, name: str) -> None:
        """Alarm on any error or throttle of ``function``."""
        self.facade.monitor_lambda_function(
            lambda_function=function,
            alarm_friendly_name=name,
            human_readable_name=name,
            add_fault_count_alarm={_ALARM: monitoring.ErrorCountThreshold(max_error_count=0)},
            add_throttles_count_alarm={_ALARM: monitoring.ErrorCountThreshold(max_error_count=0)},
        )

    def monitor_async_function(self, function: ServiceFunction, *, name: str) -> None:
        """Like :meth:`monitor_function`, for a function invoked asynchronously: also
        alarm when an event waited in Lambda's queue longer than Lambda's own retries of
        a function error explain (its ``AsyncEventAge``, from when the event was first
        queued to an attempt).

        Lambda retries a function error "with a one-minute wait between the first two
        attempts, and two minutes between the second and third", and a throttled event
        until its maximum event age
        (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
        So an event that waited longer than its failed attempts and those waits (plus
        :data:`EVENT_WAIT_SLACK`) waited for concurrency: a backlog the failure
        destination sees only once events expire, and the errors alarm never. Where
        that is no shorter than the maximum event age, events expire first and no such
        alarm is added: the failure destination's own alarms see them.
        """
        retries = function.async_retries
        if retries is None:
            raise ValueError(f"{name} is not invoked asynchronously")
        self.monitor_function(function.function, name=name)
        wait_ms = retries.attempts * function.timeout.to_milliseconds() + sum(
            wait.to_milliseconds() for wait in ERROR_RETRY_WAITS[: retries.attempts]
        )
        threshold_ms = wait_ms + EVENT_WAIT_SLACK.to_milliseconds()
        if threshold_ms >= retries.max_event_age.to_milliseconds():
            return
        self.alarm_above(
            _function_metric(function.function, "AsyncEventAge", statistic="Maximum"),
            threshold_ms,
            group=name,
            name="EventWait",
            title="Longest wait of an event before an attempt (ms)",
        )

    def monitor_stream_consumer(
        self,
        function: lambda_.IFunction,
        *,
        name: str,
        max_iterator_age: cdk.Duration = cdk.Duration.minutes(5),
    ) -> None:
        """Like :meth:`monitor_function`, plus an alarm when the stream falls behind.

        For a function fed by a DynamoDB or Kinesis stream: its iterator age is the age
        of the newest record it processed, so a growing age means a stuck or slow shard.
        """
        self.facade.monitor_lambda_function(
            lambda_function=function,
            alarm_friendly_name=name,
            human_readable_name=name,
            is_iterator=True,
            add_fault_count_alarm={_ALARM: monitoring.ErrorCountThreshold(max_error_count=0)},
            add_throttles_count_alarm={_ALARM: monitoring.ErrorCountThreshold(max_error_count=0)},
            add_max_iterator_age_alarm={
                _ALARM: monitoring.MaxAgeThreshold(
                    max_age_in_millis=max_iterator_age.to_milliseconds()
                )
            },
        )

    def monitor_queue(
        self,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        *,
        name: str,
        max_message_age: cdk.Duration,
        fair_groups: bool = False,
    ) -> None:
        """Alarm as soon as the dead-letter queue holds a message, and when the queue's
        oldest message is older than ``max_message_age`` (its consumers stopped or fall
        behind: no error, no DLQ message, only a wait); with ``fair_groups`` (its
        senders set ``MessageGroupId``), graph how fair queues share it too
        (:meth:`monitor_fair_groups`)."""
        self.facade.monitor_sqs_queue_with_dlq(
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            alarm_friendly_name=name,
            human_readable_name=name,
            add_dead_letter_queue_max_size_alarm={
                _ALARM: monitoring.MaxMessageCountThreshold(max_message_count=0)
            },
            add_queue_max_message_age_alarm={
                _ALARM: monitoring.MaxMessageAgeThreshold(
                    max_age_in_seconds=max_message_age.to_seconds()
                )
            },
        )
        if fair_groups:
            self.monitor_fair_groups(queue, name=name)

    def monitor_fair_groups(self, queue: sqs.IQueue, *, name: str) -> None:
        """Graph how SQS fair queues share ``queue`` between its message groups (its
        senders set ``MessageGroupId`` to the caller): how many groups SQS finds noisy,
        and how long the other groups' oldest message waits. No alarm: a noisy caller is
        what fair queues absorb, and the queue's oldest message has one
        (:meth:`monitor_queue`).

        The metrics are free and exist only for a queue whose messages carry a group id
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html).
        """

        def metric(metric_name: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SQS",
                metric_name=metric_name,
                dimensions_map={"QueueName": queue.queue_name},
                statistic="Maximum",
                period=cdk.Duration.minutes(1),
                label=label,
            )

        self.facade.monitor_custom(
            alarm_friendly_name=name,
            human_readable_name=f"{name} (fair queues)",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="Noisy message groups",
                    metrics=[metric("ApproximateNumberOfNoisyGroups", "noisy groups")],
                ),
                monitoring.CustomMetricGroup(
                    title="Oldest message of the quiet groups",
                    metrics=[metric("ApproximateAgeOfOldestMessageInQuietGroups", "age (seconds)")],
                ),
            ],
        )

    def monitor_dead_letter_queue(self, queue: sqs.IQueue, *, name: str) -> None:
        """Alarm as soon as a stand-alone dead-letter queue holds a message."""
        self.facade.monitor_sqs_queue(
            queue=queue,
            alarm_friendly_name=name,
            human_readable_name=name,
            add_queue_max_size_alarm={
                _ALARM: monitoring.MaxMessageCountThreshold(max_message_count=0)
            },
        )

    def monitor_api(
        self, api: apigw.RestApi, *, name: str, p99_latency: cdk.Duration = cdk.Duration.seconds(2)
    ) -> None:
        """Alarm on any 5xx and on p99 latency above ``p99_latency``."""
        self.facade.monitor_api_gateway(
            api=api,
            api_stage=api.deployment_stage.stage_name,
            alarm_friendly_name=name,
            human_readable_name=name,
            add5_xx_fault_count_alarm={_ALARM: monitoring.ErrorCountThreshold(max_error_count=0)},
            add_latency_p99_alarm={_ALARM: monitoring.LatencyThreshold(max_latency=p99_latency)},
        )

    def monitor_table(
        self, table: dynamodb.ITable, *, name: str, transactions: bool = False
    ) -> None:
        """Alarm on any read or write throttle and any DynamoDB system error.

        cdk-monitoring-constructs counts the system errors of nine single-item and batch
        operations; ``transactions`` adds an alarm on those of ``TransactWriteItems``,
        for a table written that way.
        """
        self.facade.monitor_dynamo_table(
            table=table,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            alarm_friendly_name=name,
            human_readable_name=name,
            add_read_throttled_events_count_alarm={
                _ALARM: monitoring.ThrottledEventsThreshold(max_throttled_events_threshold=0)
            },
            add_write_throttled_events_count_alarm={
                _ALARM: monitoring.ThrottledEventsThreshold(max_throttled_events_threshold=0)
            },
            add_system_error_count_alarm={
                _ALARM: monitoring.ErrorCountThreshold(max_error_count=0)
            },
        )
        if transactions:
            metric = cloudwatch.Metric(
                namespace="AWS/DynamoDB",
                metric_name="SystemErrors",
                dimensions_map={"TableName": table.table_name, "Operation": "TransactWriteItems"},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            )
            self.alarm_on_any(
                metric,
                group=name,
                name="TransactionSystemErrors",
                title="TransactWriteItems system errors",
            )

    def alarm_on_any(self, metric: cloudwatch.Metric, *, group: str, name: str, title: str) -> None:
        """Alarm ``<stage>-<pattern>-<group>-<name>-Critical`` as soon as ``metric`` (a
        count, summed per period) is above zero; no data is no alarm."""
        self.alarm_above(metric, 0, group=group, name=name, title=title)

    def alarm_above(
        self, metric: cloudwatch.Metric, threshold: float, *, group: str, name: str, title: str
    ) -> None:
        """Alarm ``<stage>-<pattern>-<group>-<name>-Critical`` when ``metric`` is above
        ``threshold`` in a period; no data is no alarm."""
        self.facade.monitor_custom(
            alarm_friendly_name=group,
            human_readable_name=group,
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title=title,
                    metrics=[
                        monitoring.CustomMetricWithAlarm(
                            metric=metric,
                            alarm_friendly_name=name,
                            add_alarm={
                                _ALARM: monitoring.CustomThreshold(
                                    threshold=threshold,
                                    comparison_operator=(
                                        cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
                                    ),
                                    treat_missing_data_override=(
                                        cloudwatch.TreatMissingData.NOT_BREACHING
                                    ),
                                )
                            },
                        )
                    ],
                )
            ],
        )

    def alarm_on_emitted(self, metric_name: str, *, code: Path, group: str, title: str) -> None:
        """Alarm as soon as the functions whose code root is ``code`` count anything in
        their custom metric ``metric_name`` (Powertools Metrics, EMF): the stage's
        namespace and the ``service`` dimension Powertools adds, the pattern folder's name
        (:func:`blocks.function.service_name`, so a copied folder's alarm follows it)."""
        metric = cloudwatch.Metric(
            namespace=self._metrics_namespace,
            metric_name=metric_name,
            dimensions_map={"service": service_name(code)},
            statistic="Sum",
            period=cdk.Duration.minutes(5),
        )
        self.alarm_on_any(metric, group=group, name=metric_name, title=title)

    def monitor_failure_delivery(self, function: lambda_.IFunction, *, name: str) -> None:
        """Alarm when Lambda cannot deliver a failed event to ``function``'s failure
        destination (an async invocation's, or a stream mapping's on-failure queue): the
        event is dropped, and the destination's own alarm never sees it."""
        self.alarm_on_any(
            _function_metric(function, "DestinationDeliveryFailures", statistic="Sum"),
            group=name,
            name="DeliveryFailures",
            title="Failed events not delivered",
        )

    def monitor_schedule_group(self, group: scheduler.IScheduleGroup, *, name: str) -> None:
        """Alarm when the Scheduler could deliver an invocation neither to its target nor
        to its dead-letter queue (e.g. its role broke): the DLQ's alarm never sees it."""
        metric = group.metric_failed_to_be_sent_to_dlq(
            statistic="Sum", period=cdk.Duration.minutes(5)
        )
        self.alarm_on_any(
            metric, group=name, name="LostInvocations", title="Invocations lost (no DLQ)"
        )


def _function_metric(
    function: lambda_.IFunction, metric_name: str, *, statistic: str
) -> cloudwatch.Metric:
    """Lambda's ``metric_name`` for ``function``, per 5 minutes."""
    return cloudwatch.Metric(
        namespace="AWS/Lambda",
        metric_name=metric_name,
        dimensions_map={"FunctionName": function.function_name},
        statistic=statistic,
        period=cdk.Duration.minutes(5),
    )
