"""Pattern 4, recursive S3 batch processor: a function that hands its work to itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from blocks.compliance import acknowledge
from blocks.function import Invocation
from blocks.pattern_construct import ApiThrottling, PatternConstruct
from blocks.stage_settings import StageSettings
from blocks.table import DataTable, string_key

#: The Lambda code root beside this module: one asset for all of the pattern's functions.
RUNTIME_DIR = Path(__file__).resolve().with_name("runtime")
#: The API's contract, generated from the handler (``make api-docs``): its request models.
OPENAPI_DOCUMENT = Path(__file__).resolve().with_name("openapi.json")
#: How long a persistent stage keeps an object version that was overwritten or deleted.
NONCURRENT_RETENTION = cdk.Duration.days(30)
#: How long Lambda keeps trying a hop's event (its retries included) before it goes to
#: the failure queue.
PROCESSOR_MAX_EVENT_AGE = cdk.Duration.hours(1)


def stalled_after(timeout: cdk.Duration) -> cdk.Duration:
    """How long a RUNNING run may go without an update before no hop can come any more.

    After a run's last update, the next hop's event runs within the maximum event age
    and its last attempt within the timeout after that; a duplicate of the previous hop
    may re-send that event just as late, which starts the window once more. A margin of
    15 minutes on top.

    >>> stalled_after(cdk.Duration.minutes(5)).to_seconds()
    8700
    """
    window = PROCESSOR_MAX_EVENT_AGE.to_seconds() + timeout.to_seconds()
    return cdk.Duration.seconds(2 * window + 15 * 60)


class RecursiveProcessor(PatternConstruct):
    """Processes large newline-delimited JSON objects in hops of one invocation each.

    An object created in ``input_bucket`` under ``input_prefix`` with ``input_suffix``
    notifies ``processor``, which starts a run in ``run_table`` and invokes itself
    asynchronously. Each hop reads the object in ranged GETs (``IfMatch`` on the
    ETag) from the checkpointed offset, stops before less than ``safety_margin`` of
    its time remains, commits a conditional checkpoint and invokes itself for the next
    hop. The last hop writes ``<output_prefix><run_id>/summary.json`` to
    ``output_bucket`` and marks the run DONE; bad records go to
    ``<output_prefix><run_id>/errors/``. ``GET /runs/{run_id}`` on ``api`` reports a
    run's status, progress and counts.

    The function sets ``recursive_loop=ALLOW`` (Lambda would otherwise stop the chain
    after about 16 hops) and enforces ``max_hops`` itself; it may invoke only itself.

    Attributes
    ----------
    input_bucket, output_bucket:
        Encrypted, TLS-only, private buckets; emptied and deleted with an ephemeral
        stage, retained on a persistent one.
    access_log_bucket:
        Server access logs of both buckets on persistent stages; ``None`` on ephemeral
        ones (late log deliveries would block their destroy).
    run_table:
        Runs by ``run_id``: status, offset, hop, counts, reason; TTL on ``expires_at``.
    processor:
        The function (its own role, on-failure destination queue).
    api, api_function:
        ``GET /runs/{run_id}`` (IAM authorization) and the function behind it, which
        may only read the run table.
    self_invoke_policy:
        The only ``lambda:InvokeFunction`` grant: on the processor itself.
    input_prefix, input_suffix, output_prefix:
        Where runs start and where their outputs go.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        input_prefix: str = "incoming/",
        input_suffix: str = ".ndjson",
        output_prefix: str = "runs/",
        timeout: cdk.Duration = cdk.Duration.minutes(5),
        safety_margin: cdk.Duration = cdk.Duration.seconds(20),
        memory_size: int = 512,
        max_hops: int = 50,
        range_bytes: int = 1024 * 1024,
        max_record_bytes: int = 256 * 1024,
        record_work: cdk.Duration = cdk.Duration.millis(0),
        run_retention: cdk.Duration = cdk.Duration.days(30),
        max_concurrency: int | None = None,
        api_throttling: ApiThrottling = ApiThrottling(rate_limit=20, burst_limit=40),
    ) -> None:
        super().__init__(scope, construct_id, settings=settings, code=RUNTIME_DIR)
        self.input_prefix = input_prefix
        self.input_suffix = input_suffix
        self.output_prefix = output_prefix
        if safety_margin.to_milliseconds() >= timeout.to_milliseconds():
            raise ValueError("safety_margin must be shorter than the function timeout")
        if not input_prefix or not output_prefix.endswith("/"):
            raise ValueError("input_prefix must be set and output_prefix must end with '/'")
        if min(max_hops, range_bytes, max_record_bytes) < 1:
            raise ValueError("max_hops, range_bytes and max_record_bytes must be positive")
        # Reserved concurrency 0 throttles every invocation: each upload would wait in
        # Lambda's async queue until max event age and land on the failure queue.
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be positive (or None for no cap)")

        # Server access logs on persistent stages only: S3 delivers logs late (up to
        # hours), so a log bucket emptied on `cdk destroy` could refill before its
        # deletion and make an ephemeral stage's destroy fail.
        self.access_log_bucket: s3.Bucket | None = None
        if settings.persistent:
            self.access_log_bucket = self._bucket(
                "AccessLogBucket", settings, expiration=cdk.Duration.days(365)
            )
        # Versioned on persistent stages: an overwrite or a delete can be undone (for
        # NONCURRENT_RETENTION), and S3 notifies every write of a versioned bucket, where
        # two writes of one key at once may get a single notification otherwise. Not on
        # ephemeral stages: for up to 15 minutes after versioning is first enabled, S3 may
        # answer GETs of new objects with 404, which would fail a new stage's first runs.
        self.input_bucket = self._bucket(
            "InputBucket", settings, logs=self.access_log_bucket, versioned=settings.persistent
        )
        self.output_bucket = self._bucket(
            "OutputBucket", settings, logs=self.access_log_bucket, versioned=settings.persistent
        )
        self.run_table = DataTable(
            self, "RunTable", settings=settings, partition_key=string_key("run_id")
        ).table

        self.processor = self.make_function(
            "Processor",
            handler="batch_processor.handler",
            description="Processes NDJSON objects in hops, invoking itself before it times out",
            timeout=timeout,
            memory_size=memory_size,
            invocation=Invocation.ASYNCHRONOUS,
            max_event_age=PROCESSOR_MAX_EVENT_AGE,
            # The chain is direct Invoke calls: without ALLOW, Lambda's recursive loop
            # detection stops it after about 16 hops. MAX_HOPS is the limit instead.
            recursive_loop=lambda_.RecursiveLoop.ALLOW,
            reserved_concurrent_executions=max_concurrency,
            environment={
                "RUN_TABLE_NAME": self.run_table.table_name,
                "OUTPUT_BUCKET_NAME": self.output_bucket.bucket_name,
                "OUTPUT_PREFIX": output_prefix,
                "SAFETY_MARGIN_MS": str(int(safety_margin.to_milliseconds())),
                "MAX_HOPS": str(max_hops),
                "RANGE_BYTES": str(range_bytes),
                "MAX_RECORD_BYTES": str(max_record_bytes),
                "RECORD_WORK_MS": str(int(record_work.to_milliseconds())),
                "RUN_RETENTION_DAYS": str(int(run_retention.to_days())),
            },
        )
        function = self.processor.function

        # Least privilege, spelled out: read input objects under the prefix only, write
        # outputs under the output prefix only, and no Scan/Query/Delete on runs.
        self.processor.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadInputObjects",
                actions=["s3:GetObject"],
                resources=[self.input_bucket.arn_for_objects(f"{input_prefix}*")],
            )
        )
        # S3 answers a read of a deleted key with 404 only to a caller that may list the
        # bucket, and with 403 to any other, so without this a deleted input looked like
        # a denied read. Not conditioned on s3:prefix: a GetObject request carries no
        # prefix, and IAM treats a condition on a key absent from the request as false,
        # so a prefix-conditioned grant would not turn that 403 into a 404.
        self.processor.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListInputBucket",
                actions=["s3:ListBucket"],
                resources=[self.input_bucket.bucket_arn],
            )
        )
        self.processor.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteRunOutputs",
                actions=["s3:PutObject"],
                resources=[self.output_bucket.arn_for_objects(f"{output_prefix}*")],
            )
        )
        self.run_table.grant(
            self.processor.role, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"
        )
        self.self_invoke_policy = self._allow_self_invoke()

        self.api_function = self.make_function.api_function(
            "RunApi",
            handler="run_api.handler",
            description="Reports a run's status, progress and counts",
            table=self.run_table,
            table_actions=("dynamodb:GetItem",),
            environment={
                "RUN_TABLE_NAME": self.run_table.table_name,
                "OUTPUT_BUCKET_NAME": self.output_bucket.bucket_name,
                "RUN_STALLED_AFTER_SECONDS": str(int(stalled_after(timeout).to_seconds())),
            },
        )
        self.add_api(
            "Recursive processor runs",
            api_throttling,
            openapi=OPENAPI_DOCUMENT,
        )
        self.api.add_route(
            "GET",
            "/runs/{run_id}",
            self.api_function.function,
            required_path_parameters=("run_id",),
        )

        self.input_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(function),
            s3.NotificationKeyFilter(prefix=input_prefix, suffix=input_suffix),
        )
        # No object is processed before the function may hand its work to itself.
        self.input_bucket.node.find_child("Notifications").node.add_dependency(
            self.self_invoke_policy
        )
        self._acknowledge_findings(input_prefix, output_prefix)
        self._drop_redundant_role_dependencies()
        self._tag_auto_delete_provider()

    def _bucket(
        self,
        construct_id: str,
        settings: StageSettings,
        *,
        logs: s3.IBucket | None = None,
        expiration: cdk.Duration | None = None,
        versioned: bool = False,
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=logs,
            server_access_logs_prefix=f"{construct_id}/" if logs is not None else None,
            versioned=versioned,
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                    expiration=expiration,
                    noncurrent_version_expiration=NONCURRENT_RETENTION if versioned else None,
                )
            ],
            removal_policy=settings.removal_policy,
            # Ephemeral stages must destroy cleanly: CloudFormation cannot delete a
            # bucket that holds objects, so a CDK custom resource empties it first.
            auto_delete_objects=not settings.persistent,
        )

    def _allow_self_invoke(self) -> iam.Policy:
        # A separate policy: the function depends on its role's default policy (Lambda
        # checks permissions on create), so a statement on its own ARN in that policy
        # would be a circular dependency. This one depends on the function instead.
        function = self.processor.function
        policy = iam.Policy(
            self,
            "SelfInvokePolicy",
            statements=[
                iam.PolicyStatement(
                    sid="InvokeItselfOnly",
                    actions=["lambda:InvokeFunction"],
                    resources=[function.function_arn],
                )
            ],
        )
        policy.attach_to_role(self.processor.role)
        return policy

    def _acknowledge_findings(self, input_prefix: str, output_prefix: str) -> None:
        if self.access_log_bucket is not None:
            log_bucket = self.access_log_bucket.node.default_child
            assert log_bucket is not None
            acknowledge(
                log_bucket,
                "AwsSolutions-S1",
                "This bucket is the server access log target of the pattern's buckets; "
                "logging its own access would log the log writes.",
            )
        else:
            for bucket in (self.input_bucket, self.output_bucket):
                resource = bucket.node.default_child
                assert resource is not None
                acknowledge(
                    resource,
                    "AwsSolutions-S1",
                    "Ephemeral stage: late access-log deliveries would refill a log bucket "
                    "after cdk destroy empties it; persistent stages log to one.",
                )
        policy = self.processor.role.node.find_child("DefaultPolicy").node.default_child
        assert policy is not None
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self._logical_ref(self.input_bucket)}.Arn>"
            f"/{input_prefix}*]",
            f"Reads any object under {input_prefix} of the input bucket: the objects to "
            "process are named by their uploaders.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self._logical_ref(self.output_bucket)}.Arn>"
            f"/{output_prefix}*]",
            f"Writes summaries and error objects under {output_prefix}<run id>/; run ids "
            "are created at run time.",
        )

    def _drop_redundant_role_dependencies(self) -> None:
        # CDK's helper functions (bucket notifications, auto-delete) depend on their role
        # explicitly and through the Role GetAtt as well (cfn-lint W3005); keep the GetAtt.
        stack = cdk.Stack.of(self)
        helpers = [
            ("BucketNotificationsHandler050a0587b7544547bf325f094a3db834", "Resource"),
            ("Custom::S3AutoDeleteObjectsCustomResourceProvider", "Handler"),
        ]
        for helper_id, resource_id in helpers:
            helper = stack.node.try_find_child(helper_id)
            resource = helper.node.try_find_child(resource_id) if helper is not None else None
            if isinstance(resource, cdk.CfnResource):
                resource.add_deletion_override("DependsOn")

    def _tag_auto_delete_provider(self) -> None:
        # The auto-delete provider's role and function are plain CfnResources, which tag
        # aspects skip: give them the tags (app, stage, pattern) the processor's role gets.
        stack = cdk.Stack.of(self)
        tagged = self.processor.role.node.default_child
        assert isinstance(tagged, iam.CfnRole)
        provider = stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
        if provider is None:
            return
        for resource_id in ("Role", "Handler"):
            resource = provider.node.try_find_child(resource_id)
            if isinstance(resource, cdk.CfnResource):
                resource.add_property_override("Tags", cdk.Lazy.uncached_any(_TagsOf(tagged)))

    @staticmethod
    def _logical_ref(bucket: s3.Bucket) -> str:
        resource = bucket.node.default_child
        assert isinstance(resource, cdk.CfnResource)
        return cdk.Stack.of(bucket).get_logical_id(resource)


@jsii.implements(cdk.IAnyProducer)
class _TagsOf:
    """The tags of a taggable resource as CloudFormation lists them, at synth time
    (after the tag aspects ran)."""

    def __init__(self, resource: cdk.ITaggable) -> None:
        self._resource = resource

    def produce(self, context: cdk.IResolveContext) -> Any:
        values = self._resource.tags.tag_values()
        return [{"Key": key, "Value": values[key]} for key in sorted(values)]
