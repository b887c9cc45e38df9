"""``<stage>-EventSourcing``: a bank account as events, snapshots and a stream publisher."""

from __future__ import annotations

from blocks.stage_settings import StageSettings
from stacks.pattern_stack import PatternStack

from .construct import EventSourcing


class EventSourcingStack(PatternStack):
    """Deploys :class:`patterns.event_sourcing.EventSourcing` and watches it.

    Outputs ``ApiUrl``, ``EventTableName``, ``EventBusName`` and
    ``PublisherFailureQueueUrl``.
    """

    def build(self, settings: StageSettings) -> None:
        """Add the pattern, its monitoring and its outputs."""
        # Domain events carry the app's name as their source (cdk.json `app_name`).
        bank = EventSourcing(
            self, "EventSourcing", settings=settings, event_source=f"{settings.app_name}.accounts"
        )

        self.monitoring.monitor_api(bank.api.api, name="AccountApi")
        self.monitoring.monitor_function(bank.api_function.function, name="AccountApiFunction")
        self.monitoring.monitor_stream_consumer(
            bank.publisher_function.function, name="AccountPublisher"
        )
        self.monitoring.monitor_dead_letter_queue(
            bank.publisher_failure_queue, name="PublisherFailureQueue"
        )
        self.monitoring.monitor_failure_delivery(
            bank.publisher_function.function, name="AccountPublisher"
        )
        # Events are appended with TransactWriteItems (the event and its idempotency record).
        self.monitoring.monitor_table(bank.event_table, name="EventTable", transactions=True)

        self.output("ApiUrl", bank.api.url, "Base URL of the accounts API (IAM auth)")
        self.output("EventTableName", bank.event_table.table_name, "DynamoDB table of events")
        self.output(
            "EventBusName", bank.event_bus.event_bus_name, "EventBridge bus of account events"
        )
        self.output(
            "PublisherFailureQueueUrl",
            bank.publisher_failure_queue.queue_url,
            "Stream records the publisher could not publish (and poison records)",
        )
