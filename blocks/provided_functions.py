"""Owned log groups for the Lambda functions CDK adds to a stack by itself.

Some CDK features bring their own function: the S3 bucket-notifications handler
(``Bucket.add_event_notification``) and the provider behind ``auto_delete_objects``.
Left alone they log to ``/aws/lambda/<name>``, a group Lambda creates on first write
(their roles carry the AWSLambdaBasicExecutionRole managed policy, which allows
``logs:CreateLogGroup`` on every group), with no retention and owned by no stack, so it
outlives ``cdk destroy``. :class:`ProvidedFunctionLogs` gives each such function a log
group its stack owns, with the stage's retention and removal policy (Lambda's
``LoggingConfig.LogGroup``), and narrows the function's role to writing that group only,
so nothing can recreate the default group after the stack is gone (Lambda creates a
missing group only when the role may: "Configuring CloudWatch log groups",
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from blocks.stage_settings import StageSettings

LAMBDA_FUNCTION = "AWS::Lambda::Function"
IAM_ROLE = "AWS::IAM::Role"
#: What a function needs to write to an existing log group (Lambda creates the streams).
LOG_WRITE_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
POLICY_NAME = "WriteOwnLogGroup"


class ProvidedFunctionLogs:
    """Give every function CDK added to a stack a log group the stack owns.

    :meth:`apply` runs once on a finished stack (every construct exists by then); the
    log groups it adds (``<function id>LogGroup`` beside each function) are tagged at
    synth like any other resource. Functions that already name their log group (every
    :class:`~blocks.function.ServiceFunction`) are left alone.

    Not an aspect: an aspect is called back from the jsii kernel for every construct
    of the stack (~130 per stack here, ~1 ms each), which cost more than a second of
    every synth for the one visit that does anything.
    """

    def __init__(self, *, settings: StageSettings) -> None:
        self._settings = settings

    def apply(self, stack: cdk.Stack) -> None:
        """Give each function CDK added to ``stack`` its owned log group."""
        for function in _provided_functions(stack):
            self._own_logs(function)

    def _own_logs(self, function: cdk.CfnResource) -> None:
        # Beside the function, in the construct CDK made for it (a child of the function
        # would inherit the function's dependencies, which include its role's policy,
        # which names this group: a cycle).
        owner = function.node.scope
        assert isinstance(owner, Construct)
        log_group = self._settings.log_group(owner, f"{function.node.id}LogGroup")
        function.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)
        role = owner.node.try_find_child("Role")
        if isinstance(role, iam.Role):
            role = role.node.default_child
        # Inline in the role rather than in a separate policy: the function then cannot
        # run before it may write its logs (CDK's helpers drop their explicit DependsOn).
        statement = {
            "Effect": "Allow",
            "Action": LOG_WRITE_ACTIONS,
            "Resource": log_group.log_group_arn,
        }
        document = {"Version": "2012-10-17", "Statement": [statement]}
        if isinstance(role, iam.CfnRole):
            role.managed_policy_arns = None
            role.policies = [
                iam.CfnRole.PolicyProperty(policy_name=POLICY_NAME, policy_document=document)
            ]
        elif isinstance(role, cdk.CfnResource) and role.cfn_resource_type == IAM_ROLE:
            role.add_property_deletion_override("ManagedPolicyArns")
            role.add_property_override(
                "Policies", [{"PolicyName": POLICY_NAME, "PolicyDocument": document}]
            )
        # Any other shape CDK may bring one day keeps its role as CDK made it.


def mark_log_group_owned(function: lambda_.CfnFunction) -> None:
    """Record that ``function`` already logs to a group its stack owns.

    :class:`~blocks.function.ServiceFunction` calls it for every function it makes, so
    :meth:`ProvidedFunctionLogs.apply` passes over them without asking the jsii kernel
    anything (three to six round trips per function otherwise).
    """
    _OWNED_LOG_GROUPS.add(_jsii_ref(function))


#: jsii references (``<fqn>@<id>``, unique within the kernel's life) of the functions
#: :func:`mark_log_group_owned` recorded.
_OWNED_LOG_GROUPS: set[str] = set()


def _jsii_ref(construct: Any) -> str:
    """The jsii kernel's reference of ``construct``, held on the Python side."""
    return str(construct.__jsii_ref__.ref)


def _may_be_function(construct: object) -> bool:
    """Whether ``construct`` can be a ``AWS::Lambda::Function``, from its Python class alone.

    A ``CfnFunction`` is one; any other resource class generated in ``aws_cdk`` has a
    fixed resource type that is not. Only a generic ``CfnResource`` (how CDK's own
    custom resource providers declare their function) or a class of another library
    has to be asked its type.
    """
    cls = type(construct)
    if issubclass(cls, lambda_.CfnFunction):
        return True
    if not issubclass(cls, cdk.CfnResource):
        return False
    return cls is cdk.CfnResource or not cls.__module__.startswith("aws_cdk")


def _provided_functions(stack: cdk.Stack) -> list[cdk.CfnResource]:
    """Functions in ``stack`` (not nested stages) that name no log group of their own."""
    found = []
    for construct in stack.node.find_all():
        # Tests on the Python class and the jsii reference first: they cost nothing,
        # while each property read or Stack.of is a jsii round trip (a stack has
        # ~130 constructs, ~50 of them resources).
        if not _may_be_function(construct):
            continue
        assert isinstance(construct, cdk.CfnResource)
        if _jsii_ref(construct) in _OWNED_LOG_GROUPS:
            continue
        if construct.cfn_resource_type != LAMBDA_FUNCTION or cdk.Stack.of(construct) is not stack:
            continue
        owner = construct.node.scope
        if owner is not None and owner.node.try_find_child(f"{construct.node.id}LogGroup"):
            continue  # owned already
        if isinstance(construct, lambda_.CfnFunction) and _names_log_group(construct):
            continue
        found.append(construct)
    return found


def _names_log_group(function: lambda_.CfnFunction) -> bool:
    config = function.logging_config
    if config is None:
        return False
    if isinstance(config, lambda_.CfnFunction.LoggingConfigProperty):
        return config.log_group is not None
    return bool(cdk.Stack.of(function).resolve(config).get("LogGroup"))


def own_provided_function_logs(stack: cdk.Stack, *, settings: StageSettings) -> None:
    """Apply :class:`ProvidedFunctionLogs` to ``stack`` once all its constructs exist."""
    ProvidedFunctionLogs(settings=settings).apply(stack)
