"""Inside the moto process: authorize requests with IAM's rules, not moto's.

moto's policy engine treats a condition on a key the request does not carry as
satisfied (a conditional Allow always allows, a conditional Deny always denies),
ignores bucket policies and never checks ``iam:PassRole``. :func:`patches` replace its
decision with :mod:`localstage.iam_policy`'s, over a request context built here:

- ``aws:SecureTransport``: true. Functions and the SDKs reach AWS over HTTPS, and
  localstage's plain HTTP to moto stands for that; a request that says it came over
  plain HTTP (``X-Forwarded-Proto: http``, as a proxy in front of moto would) is false,
  so the templates' ``Deny`` on ``"aws:SecureTransport": "false"`` can be exercised.
- ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:RequestedRegion``.
- ``s3:prefix``, ``s3:delimiter``, ``s3:max-keys`` from a ListObjects(V2) query.
- ``aws:ResourceTag/<key>`` from the tags moto holds for an SQS queue, a DynamoDB
  table or an S3 bucket.

Bucket and queue policies count as AWS counts them within one account: their Allow grants as an
identity policy's does, their Deny denies (IAM User Guide, "Policy evaluation for
requests within a single account"). ``CreateSchedule``/``UpdateSchedule`` also need
``iam:PassRole`` on the target's role with ``iam:PassedToService`` =
``scheduler.amazonaws.com`` (Scheduler User Guide, "Setting up": the caller must be
allowed to pass the execution role).

``PutEvents`` is authorized entry by entry, with each entry's ``events:source`` and
``events:detail-type`` in the context ("Using IAM policy conditions in Amazon
EventBridge"; multivalued keys, so each holds the one entry's value): an entry the
caller may not publish fails alone, with ``NotAuthorizedForSourceException``
(PutEventsResultEntry), and is never put on the bus. Two simplifications, as AWS
documents neither: a detail-type denial is named a source denial too
(``NotAuthorizedForDetailTypeException`` on AWS), and a request none of whose entries
may be published is AccessDenied as a whole (AWS may answer it entry by entry).
"""

from __future__ import annotations

import contextvars
import json
import urllib.parse
from typing import Any

from localstage._moto_patch import Patch
from localstage.iam_policy import Decision, Principal, combine, evaluate

SCHEDULER_PASS_ROLE = ("scheduler:CreateSchedule", "scheduler:UpdateSchedule")
_S3_LIST_KEYS = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}
#: The entries of the PutEvents request being served that its caller may not publish
#: (by index): set by the authorization, read by the response (one request per thread).
_DENIED_ENTRIES: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "denied_put_events_entries", default=frozenset()
)
NOT_AUTHORIZED_FOR_SOURCE = {
    "ErrorCode": "NotAuthorizedForSourceException",
    "ErrorMessage": "You do not have permissions to publish events with this source onto "
    "this event bus.",
}


def patches() -> list[Patch]:
    """Replace moto's ``check_action_permitted`` with IAM's evaluation."""
    from moto.events.responses import EventsHandler
    from moto.iam.access_control import IAMRequestBase, PermissionResult
    from moto.s3.models import FakeBucket

    moto_check = IAMRequestBase.check_action_permitted
    moto_put_events = EventsHandler.put_events

    def check_action_permitted(request: Any, resource: str) -> None:
        if request._action == "sts:GetCallerIdentity":
            return  # always allowed, even under an explicit Deny (as on AWS)
        if request._action == "events:PutEvents":
            _DENIED_ENTRIES.set(frozenset())
            entries = _put_events_entries(request._body)
            if entries:
                context = request_context(request, resource)
                denied = frozenset(
                    index
                    for index, entry in enumerate(entries)
                    if not is_permitted(
                        request, "events:PutEvents", resource, context | _entry_keys(entry)
                    )
                )
                if len(denied) == len(entries):
                    request._raise_access_denied()
                _DENIED_ENTRIES.set(denied)
                return
        if not is_permitted(request, request._action, resource):
            request._raise_access_denied()
        if request._action in SCHEDULER_PASS_ROLE:
            role = _schedule_role(request._body)
            context = {
                **request_context(request, "*"),
                "iam:PassedToService": "scheduler.amazonaws.com",
            }
            if role and not is_permitted(request, "iam:PassRole", role, context):
                request._action = "iam:PassRole"  # the denial names the missing permission
                request._raise_access_denied()
        if request._is_assuming_role_operation(resource):
            # sts:AssumeRole by a caller also needs the role's trust policy: moto's own check.
            moto_check(request, resource)

    def bucket_permission(_bucket: Any, _action: Any, _resource: Any) -> Any:
        return PermissionResult.NEUTRAL

    def put_events(handler: Any) -> str:
        denied = _DENIED_ENTRIES.get()
        _DENIED_ENTRIES.set(frozenset())
        if not denied:
            return str(moto_put_events(handler))
        entries = handler._get_param("Entries")
        allowed = [entry for index, entry in enumerate(entries) if index not in denied]
        accepted = iter(handler.events_backend.put_events(allowed))
        results = [
            dict(NOT_AUTHORIZED_FOR_SOURCE) if index in denied else next(accepted)
            for index in range(len(entries))
        ]
        failed = sum("ErrorCode" in result for result in results)
        return json.dumps({"FailedEntryCount": failed, "Entries": results})

    return [
        Patch(IAMRequestBase, "check_action_permitted", check_action_permitted),
        # moto's S3 also applies a bucket policy's Deny to object requests by itself, with
        # its engine (a conditional Deny always denies): the check above decides instead.
        Patch(FakeBucket, "get_permission", bucket_permission),
        Patch(EventsHandler, "put_events", put_events),
    ]


def is_permitted(
    request: Any, action: str, resource: str, context: dict[str, Any] | None = None
) -> bool:
    """Whether the caller may ``action`` on ``resource`` (identity and resource policies)."""
    from moto.iam.access_control import IAMPolicy

    if context is None:
        context = request_context(request, resource)
    # moto knows no resource ("*") for most services: those are checked at action level.
    target = None if resource == "*" else resource
    identity = evaluate(
        [IAMPolicy(policy)._policy_json for policy in request._access_key.collect_policies()],
        action,
        target,
        context,
    )
    policy = _resource_policy(request, resource)
    if policy is None:
        return identity is Decision.ALLOW
    caller = _caller(request)
    on_resource = evaluate([policy], action, target, context, principal=caller)
    return combine(identity, on_resource) is Decision.ALLOW


def request_context(request: Any, resource: str) -> dict[str, Any]:
    """The condition keys AWS would put in this request's context (see module docstring)."""
    headers = request._headers
    forwarded = str(headers.get("X-Forwarded-Proto") or "https").lower()
    context: dict[str, Any] = {
        "aws:SecureTransport": forwarded != "http",
        "aws:PrincipalArn": _caller(request).arns[-1],
        "aws:PrincipalAccount": request.account_id,
        "aws:RequestedRegion": request._region,
    }
    if request._action == "s3:ListBucket":
        query = urllib.parse.parse_qs(
            urllib.parse.urlsplit(request._path).query, keep_blank_values=True
        )
        for name, key in _S3_LIST_KEYS.items():
            if name in query:
                context[key] = query[name][0]
    for name, value in _resource_tags(request, resource).items():
        context[f"aws:ResourceTag/{name}"] = value
    return context


def _caller(request: Any) -> Principal:
    key = request._access_key
    arn = str(key.arn)
    arns: tuple[str, ...] = (arn,)
    if ":assumed-role/" in arn:
        # A role's session is named in resource policies by the role's ARN.
        prefix, rest = arn.split(":assumed-role/", 1)
        role = f"{prefix.replace(':sts:', ':iam:')}:role/{rest.split('/', 1)[0]}"
        arns = (arn, role)
    return Principal(arns=arns, account=str(request.account_id))


def _json_object(body: Any) -> dict[str, Any]:
    """A JSON-protocol request's body as an object; ``{}`` when it is not one."""
    try:
        document = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
    except (TypeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _put_events_entries(body: Any) -> list[dict[str, Any]]:
    entries = _json_object(body).get("Entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return []  # malformed: authorized as a whole, and refused by the service
    return entries


def _entry_keys(entry: dict[str, Any]) -> dict[str, list[Any]]:
    """A PutEvents entry's condition keys: multivalued (ArrayOfString), the entry's one
    value each; a field the entry lacks is a key the request lacks."""
    fields = {"events:source": "Source", "events:detail-type": "DetailType"}
    return {key: [entry[field]] for key, field in fields.items() if entry.get(field) is not None}


def _schedule_role(body: Any) -> str | None:
    target = _json_object(body).get("Target")
    role = target.get("RoleArn") if isinstance(target, dict) else None
    return str(role) if role else None


def _resource_policy(request: Any, resource: str) -> dict[str, Any] | None:
    """The bucket policy of an S3 request's bucket, or the queue policy of an SQS one."""
    policy: Any = None
    if resource.startswith("arn:aws:s3:::") and resource != "arn:aws:s3:::*":
        policy = getattr(_bucket(request, resource), "policy", None)
    elif resource.startswith("arn:aws:sqs:"):
        from moto.sqs.models import sqs_backends

        _, _, _, region, account, name = resource.split(":", 5)
        queue = sqs_backends[account][region].queues.get(name)
        policy = getattr(queue, "policy", None)
    if not policy:
        return None
    document: dict[str, Any] = json.loads(policy)
    return document


def _bucket(request: Any, resource: str) -> Any:
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    name = resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
    backend = s3_backends[request.account_id][get_partition(request._region)]
    return backend.buckets.get(name)


def _resource_tags(request: Any, resource: str) -> dict[str, str]:
    """Tags moto holds for the request's queue, table or bucket (none for other resources)."""
    try:
        if resource.startswith("arn:aws:s3:::") and "/" not in resource:
            from moto.s3.models import s3_backends
            from moto.utilities.utils import get_partition

            bucket = _bucket(request, resource)
            if bucket is None:
                return {}
            backend = s3_backends[request.account_id][get_partition(request._region)]
            tags = backend.tagger.list_tags_for_resource(bucket.arn)["Tags"]
            return {tag["Key"]: tag["Value"] for tag in tags}
        if resource.startswith("arn:aws:sqs:"):
            from moto.sqs.models import sqs_backends

            _, _, _, region, account, name = resource.split(":", 5)
            return dict(sqs_backends[account][region].queues[name].tags)
        if resource.startswith("arn:aws:dynamodb:"):
            from moto.dynamodb.models import dynamodb_backends

            _, _, _, region, account, rest = resource.split(":", 5)
            table = dynamodb_backends[account][region].tables[rest.split("/")[1]]
            return {tag["Key"]: tag["Value"] for tag in table.tags}
    except (KeyError, IndexError, ValueError):
        pass
    return {}
