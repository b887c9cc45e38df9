"""S3 event notifications to Lambda functions, as S3 delivers them.

CDK writes a bucket's notifications as a ``Custom::S3BucketNotifications`` resource
(its ``NotificationConfiguration`` property; CloudFormation's own
``AWS::S3::Bucket.NotificationConfiguration`` is read too). moto records every S3
event inside the request (:mod:`localstage._moto_s3`: PutObject, POST, CopyObject,
CompleteMultipartUpload, DeleteObject(s), delete markers, ...) with the object's exact
size, ETag and version; this module reads that journal and, for each configuration
whose event types (``s3:ObjectCreated:*`` wildcards included) and key filters
(``prefix``, ``suffix``) match, invokes the function asynchronously with a one-record
S3 event (so retries, destinations and DLQs apply, see :mod:`localstage.invoke`).

As on AWS the function needs an ``AWS::Lambda::Permission`` for ``s3.amazonaws.com``
(matching ``SourceArn``/``SourceAccount`` when given); without one, AWS refuses the
configuration at deploy time: localstage lists it as a warning and delivers nothing
for it (``strict=True`` refuses to boot). Queue, topic and EventBridge configurations
are listed as not emulated.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localstage._moto_s3 import JOURNAL_PATH
from localstage.deploy import DeployError, Resource, StackContext
from localstage.events import s3_notification_record
from localstage.intrinsics import resolve
from localstage.invoke import lambda_service
from localstage.service_access import service_may_invoke
from localstage.sources import EventSource, event_source
from localstage.sources.loop import SourceLoop

if TYPE_CHECKING:
    from localstage.runtime import FunctionRuntime
    from localstage.stage_view import StageView

NOTIFICATIONS_TYPE = "Custom::S3BucketNotifications"
_POLL_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class NotificationRule:
    """One Lambda function configuration of a bucket."""

    bucket: str
    function: FunctionRuntime
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""
    configuration_id: str = "localstage"

    def matches(self, bucket: str, event_name: str, key: str) -> bool:
        """``event_name`` is S3's (``ObjectCreated:Put``); ``key`` is not URL-encoded."""
        if bucket != self.bucket:
            return False
        if not key.startswith(self.prefix) or not key.endswith(self.suffix):
            return False
        return any(event_type_matches(pattern, event_name) for pattern in self.events)


def event_type_matches(pattern: str, event_name: str) -> bool:
    """``s3:ObjectCreated:*`` matches ``ObjectCreated:Put``; exact names match themselves."""
    name = f"s3:{event_name}"
    return pattern == name or (pattern.endswith("*") and fnmatch.fnmatchcase(name, pattern))


def key_filter(filter_config: dict[str, Any] | None) -> tuple[str, str]:
    """``(prefix, suffix)`` of a notification's filter (either template spelling)."""
    key = (filter_config or {}).get("Key") or (filter_config or {}).get("S3Key") or {}
    rules = key.get("FilterRules") or key.get("Rules") or []
    prefix = suffix = ""
    for rule in rules:
        name = str(rule.get("Name", "")).lower()
        if name == "prefix":
            prefix = str(rule.get("Value", ""))
        elif name == "suffix":
            suffix = str(rule.get("Value", ""))
    return prefix, suffix


@event_source()
def s3_notifications(stage: StageView) -> list[EventSource]:
    rules: list[NotificationRule] = []
    deployment = stage.deployment
    for resource in deployment.resources(NOTIFICATIONS_TYPE):
        context = StackContext(deployment, deployment.stacks[resource.stack_name])
        bucket = resolve(resource.properties.get("BucketName"), context)
        configuration = resolve(resource.properties.get("NotificationConfiguration") or {}, context)
        rules += _rules(stage, resource, str(bucket), configuration, custom=True)
        # Emulated here, so not "skipped".
        resource.emulation = "localstage"
        if deployment.skipped.get(NOTIFICATIONS_TYPE):
            deployment.skipped[NOTIFICATIONS_TYPE] -= 1
            if not deployment.skipped[NOTIFICATIONS_TYPE]:
                del deployment.skipped[NOTIFICATIONS_TYPE]
    for resource in deployment.resources("AWS::S3::Bucket"):
        configuration = resource.properties.get("NotificationConfiguration")
        if configuration:
            rules += _rules(stage, resource, str(resource.physical_id), configuration, custom=False)
    if not rules:
        return []
    return [S3NotificationSource(stage, rules)]


def _rules(
    stage: StageView,
    resource: Resource,
    bucket: str,
    configuration: dict[str, Any],
    *,
    custom: bool,
) -> list[NotificationRule]:
    where = f"{resource.stack_name}/{resource.logical_id}"
    functions = configuration.get(
        "LambdaFunctionConfigurations" if custom else "LambdaConfigurations"
    )
    rules: list[NotificationRule] = []
    for config in functions or []:
        arn = str(config.get("LambdaFunctionArn") or config.get("Function") or "")
        events = config.get("Events") or ([config["Event"]] if config.get("Event") else [])
        try:
            function = stage.function(arn)
        except KeyError:
            _problem(stage, f"{where}: notifications to {arn} cannot run (not a Python function)")
            continue
        if not _s3_may_invoke(stage, function, bucket):
            _problem(
                stage,
                f"{where}: no AWS::Lambda::Permission lets s3.amazonaws.com invoke "
                f"{function.spec.label} for bucket {bucket}; AWS refuses this configuration",
            )
            continue
        prefix, suffix = key_filter(config.get("Filter"))
        rules.append(
            NotificationRule(
                bucket=bucket,
                function=function,
                events=tuple(str(event) for event in events),
                prefix=prefix,
                suffix=suffix,
                configuration_id=str(config.get("Id") or f"{resource.logical_id}-{len(rules)}"),
            )
        )
    for other in ("QueueConfigurations", "TopicConfigurations", "EventBridgeConfiguration"):
        if configuration.get(other):
            _problem(stage, f"{where}: S3 {other} are not emulated yet; nothing is delivered")
    return rules


def _problem(stage: StageView, message: str) -> None:
    if stage.strict:
        raise DeployError(message)
    stage.warnings.append(message)


def _s3_may_invoke(stage: StageView, function: FunctionRuntime, bucket: str) -> bool:
    # The function's resource policy, as S3 calls it: source ARN the bucket, source
    # account the bucket owner's (localstage/service_access.py).
    return service_may_invoke(
        stage, function.spec.arn, function.spec.name, "s3.amazonaws.com", f"arn:aws:s3:::{bucket}"
    )


class S3NotificationSource:
    """Reads moto's S3 event journal and invokes the matching functions."""

    def __init__(self, stage: StageView, rules: list[NotificationRule]) -> None:
        self.stage = stage
        self.rules = rules
        self.description = "S3 notifications: " + "; ".join(
            f"{rule.bucket} {','.join(rule.events)} "
            f"{rule.prefix or ''}*{rule.suffix or ''} -> {rule.function.spec.label}"
            for rule in rules
        )
        self._loop = SourceLoop("s3-notifications", join_seconds=_POLL_WAIT_SECONDS + 2)
        self.delivered = 0

    def start(self) -> None:
        self._loop.follow(
            f"{self.stage.cloud.endpoint_url}{JOURNAL_PATH}",
            wait=_POLL_WAIT_SECONDS,
            handle=self._deliver_all,
            report=self._log,
        )

    def stop(self) -> None:
        self._loop.stop()

    def _deliver_all(self, entries: list[dict[str, Any]]) -> None:
        # S3 does not promise order: in duplicate mode the events of a read go out
        # shuffled, each twice (see ``deliver``).
        for entry in self.stage.delivery.unordered(entries):
            try:
                self.deliver(entry)
            except Exception as error:
                self._log(error)

    def _log(self, error: Exception) -> None:
        self.stage.logs.write(
            "S3Notifications",
            json.dumps({"type": "localstage.s3Notifications", "error": repr(error)}),
        )

    def deliver(self, entry: dict[str, Any]) -> int:
        """Invoke every function whose configuration matches one journaled S3 event."""
        delivered = 0
        for rule in self.rules:
            if not rule.matches(entry["bucket"], entry["eventName"], entry["key"]):
                continue
            created = entry["eventName"].startswith("ObjectCreated")
            record = s3_notification_record(
                event_name=entry["eventName"],
                bucket=entry["bucket"],
                key=entry["key"],
                size=entry.get("size") if created else None,
                etag=entry.get("eTag") if created else None,
                version_id=entry.get("versionId"),
                configuration_id=rule.configuration_id,
            )
            if entry.get("sequencer"):
                record["s3"]["object"]["sequencer"] = entry["sequencer"]
            service = lambda_service(self.stage)
            # S3 sends a duplicate as a notification of its own: a new invocation, due
            # a random while later, so behind events of later writes.
            service.invoke_async(rule.function, {"Records": [record]}, duplicates=False)
            for delay in self.stage.delivery.redelivery_delays():
                service.invoke_async(
                    rule.function, {"Records": [record]}, duplicates=False, delay=delay
                )
            delivered += 1
        self.delivered += delivered
        return delivered
