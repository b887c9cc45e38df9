"""EventBridge rules: events put on a bus reach the targets of the rules they match.

moto stores buses, rules and targets (``AWS::Events::Rule`` resources are created by
the deploy step, and their ``Targets`` are put on moto here, so ``ListTargetsByRule``
answers as on AWS). moto's own delivery is switched off in its process
(:mod:`localstage._moto_events`), which journals every entry ``PutEvents`` accepted
as the event EventBridge delivers (``version``, ``id``, ``detail-type``, ``source``,
``account``, ``time`` from the entry's ``Time`` or the time it was put, ``region``,
``resources``, ``detail``). This module reads the journal and, for each event, every
``ENABLED`` rule of its bus whose ``EventPattern`` matches (EventBridge pattern
syntax, :mod:`localstage.sources.event_patterns`), delivers to each target:

- input: the whole event, or the target's ``Input``, ``InputPath`` or
  ``InputTransformer`` (``InputPathsMap`` with JSONPath ``$.a.b[0]`` paths,
  ``InputTemplate`` with ``<name>`` placeholders and the ``aws.events.*`` ones);
- SQS queues (``SqsParameters.MessageGroupId`` for FIFO queues, the event id as the
  deduplication id), SNS topics, other buses, and Lambda functions, invoked
  asynchronously through localstage's Lambda service (its retries, destinations and
  DLQ) and only if an ``AWS::Lambda::Permission`` lets ``events.amazonaws.com``
  invoke the function from that rule;
- a delivery that fails (no permission, missing queue) goes to the target's
  ``DeadLetterConfig`` queue with EventBridge's ``RULE_ARN``, ``TARGET_ARN``,
  ``ERROR_CODE`` and ``ERROR_MESSAGE`` attributes. Such failures are permanent ones,
  which EventBridge does not retry either. A retriable failure (throttled, a server
  error) is retried per the target's ``RetryPolicy`` with back-off in stage time
  (:mod:`localstage.sources.target_retries`), then dead-lettered.

Rules created at run time through the API (``PutRule`` + ``PutTargets``) are
delivered the same way. A queue target's ``AWS::SQS::QueuePolicy`` must let
``events.amazonaws.com`` send for the rule (``localstage/service_access.py``); scheduled
rules (``ScheduleExpression``) never fire, and archives and log-group targets
receive nothing.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localstage.invoke import lambda_service
from localstage.service_access import service_may_invoke, service_may_send
from localstage.sources import EventSource, event_source, report_once
from localstage.sources.event_patterns import matches
from localstage.sources.event_patterns import parse as parse_pattern
from localstage.sources.loop import SourceLoop
from localstage.sources.target_retries import RetryPolicy, retriable, string_attributes

if TYPE_CHECKING:
    from localstage.deploy import Resource
    from localstage.stage_view import StageView

JOURNAL_PATH = "/_localstage/events/journal"
LONG_POLL_SECONDS = 1.0
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]")


class DeliveryError(RuntimeError):
    """A target could not be given an event (EventBridge's error code and message)."""

    def __init__(self, code: str, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        #: Whether EventBridge retries it (the target unavailable for now).
        self.retriable = retriable


@event_source()
def eventbridge_rules(stage: StageView) -> list[EventSource]:
    return [EventBridgeDelivery(stage)]


# ---------------------------------------------------------------------- input


def json_path(document: Any, path: str) -> Any:
    """The value at a JSONPath like ``$.detail.items[0].id`` (None when missing)."""
    if path == "$":
        return document
    if not path.startswith("$"):
        raise ValueError(f"not a JSONPath: {path!r}")
    value = document
    position = 1
    while position < len(path):
        part = _PATH_PART.match(path, position)
        if part is None:
            raise ValueError(f"unsupported JSONPath: {path!r}")
        position = part.end()
        key, index, quoted = part.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
        else:
            name = key if key is not None else quoted
            if not isinstance(value, dict) or name not in value:
                return None
            value = value[name]
    return value


def _inside_string(template: str, position: int) -> bool:
    """Whether ``position`` of a JSON-looking template is inside a string literal."""
    quoted = False
    escaped = False
    for character in template[:position]:
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == '"':
            quoted = not quoted
    return quoted


def target_input(target: dict[str, Any], event: dict[str, Any], rule: dict[str, Any]) -> str:
    """What a target receives for ``event``, as EventBridge builds it."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        return json.dumps(json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if not transformer:
        return json.dumps(event)
    values: dict[str, Any] = {
        name: json_path(event, path)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.setdefault("aws.events.rule-arn", rule.get("Arn"))
    values.setdefault("aws.events.rule-name", rule.get("Name"))
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.event.json", event)
    template = str(transformer["InputTemplate"])

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        if _inside_string(template, match.start()):
            # Inside a JSON string a string goes in raw; anything else as JSON.
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        # Outside quotes a string goes in as it is (AWS adds no quotes), the rest as JSON.
        return value if isinstance(value, str) else json.dumps(value)

    return _PLACEHOLDER.sub(substitute, template)


# ---------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one target of one rule (as moto lists rule and target):
    what a delivery, its retries and its dead letter are about."""

    rule: dict[str, Any]
    target: dict[str, Any]
    event: dict[str, Any]


class EventBridgeDelivery:
    """Reads the events moto accepted and delivers them to the matching rules' targets."""

    def __init__(self, stage: StageView) -> None:
        self.stage = stage
        self._events = stage.cloud.client("events")
        self._sqs = stage.cloud.client("sqs")
        self._sns = stage.cloud.client("sns")
        self._loop = SourceLoop("eventbridge", join_seconds=LONG_POLL_SECONDS + 5)
        self._patterns: dict[str, dict[str, Any]] = {}
        template_rules = stage.deployment.resources("AWS::Events::Rule")
        self.description = (
            f"EventBridge: {len(template_rules)} rule(s) from the templates, delivered to "
            "SQS, SNS, Lambda and bus targets"
        )
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        for rule in template_rules:
            self._put_template_targets(rule)

    def _put_template_targets(self, rule: Resource) -> None:
        targets = rule.properties.get("Targets") or []
        if not targets:
            return
        request: dict[str, Any] = {"Rule": rule.physical_id, "Targets": targets}
        bus = rule.properties.get("EventBusName")
        if bus:
            request["EventBusName"] = bus
        self._events.put_targets(**request)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop.follow(
            f"{self.stage.cloud.endpoint_url}{JOURNAL_PATH}",
            wait=LONG_POLL_SECONDS,
            handle=self._deliver_all,
            report=lambda error: self._report(f"reading the event journal failed: {error}"),
        )

    def stop(self) -> None:
        self._loop.stop()

    def _deliver_all(self, entries: list[dict[str, Any]]) -> None:
        # EventBridge delivers at least once, in no promised order: in duplicate mode
        # every event of a read is delivered twice, each pass shuffled.
        delivery = self.stage.delivery
        for entry in [e for _ in range(delivery.copies) for e in delivery.unordered(entries)]:
            try:
                self.deliver(entry["bus"], entry["event"])
            except Exception as error:
                self._report(f"delivering event {entry['event'].get('id')} failed: {error}")

    # ------------------------------------------------------------------ rules

    def _pattern(self, text: str) -> dict[str, Any]:
        if text not in self._patterns:
            self._patterns[text] = parse_pattern(text)
        return self._patterns[text]

    def matching_rules(self, bus: str, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The bus's enabled rules whose pattern matches ``event`` (as moto stores them)."""
        found: list[dict[str, Any]] = []
        for page in self._events.get_paginator("list_rules").paginate(EventBusName=bus):
            for rule in page.get("Rules", []):
                if rule.get("State", "ENABLED") != "ENABLED" or not rule.get("EventPattern"):
                    continue
                if matches(self._pattern(rule["EventPattern"]), event):
                    found.append(rule)
        return found

    def deliver(self, bus: str, event: dict[str, Any]) -> None:
        for rule in self.matching_rules(bus, event):
            targets = self._events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)
            for target in targets.get("Targets", []):
                delivery = Delivery(rule, target, event)
                try:
                    self._deliver_to(delivery)
                    self.delivered += 1
                except DeliveryError as error:
                    if error.retriable:
                        # Retries wait in stage time: never hold up the other targets.
                        threading.Thread(
                            target=self._retry,
                            args=(delivery, error),
                            daemon=True,
                            name="eventbridge-retry",
                        ).start()
                        continue
                    self._failed(delivery, error)

    def _failed(self, delivery: Delivery, error: DeliveryError) -> None:
        self.failed += 1
        self._report(f"{delivery.rule['Name']} -> {delivery.target['Arn']}: {error.code} {error}")
        self._dead_letter(delivery, error)

    def _retry(self, delivery: Delivery, error: DeliveryError) -> None:
        """Retry a delivery per the target's RetryPolicy, then dead-letter it."""
        policy = RetryPolicy.of(delivery.target)
        rng = random.Random(f"{delivery.event.get('id')}|{delivery.target.get('Arn')}")
        started = self.stage.clock.time()
        retries = 0
        while True:
            delay = policy.next_delay(retries, self.stage.clock.time() - started, rng)
            if delay is None:
                self._failed(delivery, error)
                return
            if not self.stage.clock.sleep(delay):
                return  # the stage stopped
            retries += 1
            try:
                self._deliver_to(delivery)
            except DeliveryError as again:
                error = again
                if not again.retriable:
                    self._failed(delivery, again)
                    return
                continue
            self.delivered += 1
            return

    def _deliver_to(self, delivery: Delivery) -> None:
        target, event, rule = delivery.target, delivery.event, delivery.rule
        arn = str(target["Arn"])
        service = arn.split(":")[2]
        body = target_input(target, event, rule)
        if service == "sqs":
            url = self._queue_url(arn)
            # EventBridge sends as events.amazonaws.com: the queue policy must allow it.
            if not service_may_send(self.stage, url, arn, "events.amazonaws.com", rule["Arn"]):
                raise DeliveryError(
                    "AccessDenied",
                    f"the queue policy of {arn} does not let events.amazonaws.com "
                    f"sqs:SendMessage for {rule['Arn']}",
                )
            request: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
            if arn.endswith(".fifo"):
                group = (target.get("SqsParameters") or {}).get("MessageGroupId")
                if not group:
                    raise DeliveryError("InvalidParameter", "a FIFO queue target needs a group id")
                request["MessageGroupId"] = group
                request["MessageDeduplicationId"] = event["id"]
            self._call(self._sqs.send_message, **request)
        elif service == "sns":
            self._call(self._sns.publish, TopicArn=arn, Message=body)
        elif service == "events" and ":event-bus/" in arn:
            self._call(
                self._events.put_events,
                Entries=[
                    {
                        "EventBusName": arn,
                        "Source": event["source"],
                        "DetailType": event["detail-type"],
                        "Detail": json.dumps(event["detail"]),
                        "Resources": event.get("resources", []),
                    }
                ],
            )
        elif service == "lambda":
            self._invoke(arn, body, rule)
        else:
            raise DeliveryError("NotEmulated", f"targets of type {service} are not emulated")

    def _invoke(self, function_arn: str, body: str, rule: dict[str, Any]) -> None:
        try:
            function = self.stage.function(function_arn)
        except KeyError:
            raise DeliveryError(
                "ResourceNotFoundException", f"no function {function_arn}"
            ) from None
        if not self._may_invoke(function.spec.arn, function.spec.name, rule["Arn"]):
            raise DeliveryError(
                "NoPermissions",
                f"no AWS::Lambda::Permission lets events.amazonaws.com invoke "
                f"{function.spec.name} from {rule['Arn']}",
            )
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body
        # Each copy of the event is its own delivery: Lambda adds none of its own.
        lambda_service(self.stage).invoke_async(
            function, payload, duplicates=False, delay=self.stage.delivery.jitter()
        )

    def _may_invoke(self, function_arn: str, function_name: str, rule_arn: str) -> bool:
        # The function's resource policy, as EventBridge calls it for this rule.
        return service_may_invoke(
            self.stage, function_arn, function_name, "events.amazonaws.com", rule_arn
        )

    def _call(self, operation: Any, **request: Any) -> None:
        try:
            operation(**request)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "InternalError")
            raise DeliveryError(str(code), str(error), retriable=retriable(error)) from error

    def _queue_url(self, arn: str) -> str:
        try:
            return str(
                self.stage.deployment.find("AWS::SQS::Queue", arn=arn).attributes["QueueUrl"]
            )
        except KeyError:
            pass
        try:
            return str(self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"])
        except Exception as error:
            raise DeliveryError("ResourceNotFound", f"no queue {arn}: {error}") from error

    def _dead_letter(self, delivery: Delivery, error: DeliveryError) -> None:
        target, event, rule = delivery.target, delivery.event, delivery.rule
        queue = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue:
            return
        attributes = {
            "RULE_ARN": rule["Arn"],
            "TARGET_ARN": target["Arn"],
            "ERROR_CODE": error.code,
            "ERROR_MESSAGE": str(error)[:256],
        }
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url(queue),
                MessageBody=json.dumps(event),
                MessageAttributes=string_attributes(attributes),
            )
        except Exception as failure:
            self._report(f"dead-letter queue {queue} failed: {failure}")

    def _report(self, message: str) -> None:
        record = {"type": "localstage.eventBridge", "error": message}
        report_once(self, self.stage.logs, "EventBridge", record)
