"""The one place that installs localstage's patches of moto's internals.

localstage patches private parts of moto (methods of its backends, responses and IAM
request classes, module functions) to make the moto process behave as AWS does where
the patterns depend on it, and to make it fast enough for fan-outs of thousands of
requests. The replacements are built in the ``_moto_*`` helper modules (each
``patches()`` returns :class:`localstage._moto_patch.Patch` values and assigns nothing);
every assignment onto moto happens here, in :func:`install` and the ``install_*``
functions it calls.

Those internals change between moto releases without notice, so :func:`install` first
checks that the installed moto is the release the patches were written for
(:data:`SUPPORTED_MOTO_VERSION`, pinned in the app's requirements-dev.txt and in
localstage's pyproject.toml) and raises :class:`UnsupportedMotoVersionError` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from localstage import (
    _moto_activity,
    _moto_authz,
    _moto_backends,
    _moto_dynamodb,
    _moto_dynamodb_answers,
    _moto_dynamodb_contention,
    _moto_dynamodb_expressions,
    _moto_dynamodb_limits,
    _moto_events,
    _moto_iam,
    _moto_requests,
    _moto_responses,
    _moto_s3,
    _moto_s3_access,
    _moto_scheduler,
    _moto_sqs,
    _moto_sqs_groups,
    _moto_sqs_handles,
    _moto_sqs_sizes,
    _moto_streams,
)
from localstage._moto_activity import Activity
from localstage._moto_journal import Journal
from localstage._moto_patch import Patch
from localstage._moto_requests import RequestCounter

#: The moto release these patches were written for (requirements-dev.txt pins it).
SUPPORTED_MOTO_VERSION = "5.2.5"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class UnsupportedMotoVersionError(RuntimeError):
    """The installed moto is not the release localstage's patches were written for."""


def installed_moto_version() -> str:
    """``moto.__version__`` of the moto this process imports."""
    import moto

    return str(moto.__version__)


def check_moto_version() -> None:
    """Raise :class:`UnsupportedMotoVersionError` unless moto is :data:`SUPPORTED_MOTO_VERSION`."""
    found = installed_moto_version()
    if found != SUPPORTED_MOTO_VERSION:
        raise UnsupportedMotoVersionError(
            f"localstage's moto patches were written for moto {SUPPORTED_MOTO_VERSION}; "
            f"this environment has {found}. Install moto=={SUPPORTED_MOTO_VERSION} "
            "(requirements-dev.txt) or port localstage/src/localstage/moto_patches.py."
        )


#: Names of the patch groups installed in this process (each is installed once).
_INSTALLED: set[str] = set()


def _apply(group: str, build: Callable[[], list[Patch]]) -> None:
    """Build a group's patches and assign them onto moto, once per process."""
    if group in _INSTALLED:
        return
    check_moto_version()
    for patch in build():
        setattr(patch.owner, patch.name, patch.value)
    _INSTALLED.add(group)


#: The groups that change only how fast moto answers, never what it answers
#: (localstage/tests/test_moto_speedups.py compares them with moto's own code).
SPEED_UPS: dict[str, Callable[[], list[Patch]]] = {
    "sqs": _moto_sqs.patches,
    "sqs-handles": _moto_sqs_handles.patches,
    "dynamodb": _moto_dynamodb.patches,
    "dynamodb-answers": _moto_dynamodb_answers.patches,
    "dynamodb-expressions": _moto_dynamodb_expressions.patches,
    "streams": _moto_streams.patches,
    "responses": _moto_responses.patches,
}


def install_iam() -> None:
    """IAM's evaluation (conditions, bucket/queue policies, iam:PassRole): ``_moto_iam``."""
    _apply("iam", _moto_iam.patches)


def install_iam_scope() -> None:
    """Resource-level checks and bodyless SigV4 (``_moto_authz``), over :func:`install_iam`."""
    install_iam()
    _apply("iam-resource-level", _moto_authz.resource_level_patches)
    _apply("bodyless-signatures", _moto_authz.bodyless_signature_patches)


def install_backends() -> None:
    """moto's service packages listed once (``_moto_backends``), and each request's
    handler method found by one lookup (``_moto_responses``)."""
    _apply("backends", _moto_backends.listed_service_modules_patches)
    _apply("responses", SPEED_UPS["responses"])


def install_sqs() -> None:
    """SQS sends, receives (``_moto_sqs``) and receipt handles (``_moto_sqs_handles``) in
    time independent of the queue's length."""
    _apply("sqs", SPEED_UPS["sqs"])
    _apply("sqs-handles", SPEED_UPS["sqs-handles"])


def install_sqs_validation() -> None:
    """Message group ids SQS refuses are refused (``_moto_sqs_groups``), and so are
    messages and batches over SQS's size limits, attributes counted (``_moto_sqs_sizes``)."""
    _apply("sqs-validation", _moto_sqs_groups.patches)
    _apply("sqs-sizes", _moto_sqs_sizes.patches)


def install_dynamodb() -> None:
    """Transactions in constant time whatever the table's size (``_moto_dynamodb``)."""
    _apply("dynamodb", SPEED_UPS["dynamodb"])


def install_dynamodb_validation() -> None:
    """DynamoDB requests over AWS's limits are refused (``_moto_dynamodb_limits``)."""
    _apply("dynamodb-validation", _moto_dynamodb_limits.patches)


def install_dynamodb_contention() -> None:
    """In ``conflicts`` mode every third transaction is cancelled with a
    TransactionConflict (``_moto_dynamodb_contention``); nothing changes otherwise."""
    _apply("dynamodb-contention", _moto_dynamodb_contention.patches)


def install_dynamodb_answers() -> None:
    """Item actions answered without moto's serializer (``_moto_dynamodb_answers``)."""
    _apply("dynamodb-answers", SPEED_UPS["dynamodb-answers"])


def install_dynamodb_expressions() -> None:
    """Each expression text tokenized once (``_moto_dynamodb_expressions``)."""
    _apply("dynamodb-expressions", SPEED_UPS["dynamodb-expressions"])


def install_streams() -> None:
    """Stream reads without moto's per-member serializer (``_moto_streams``)."""
    _apply("streams", SPEED_UPS["streams"])


def install_scheduler_validation() -> None:
    """Scheduler requests AWS refuses are refused (``_moto_scheduler``)."""
    _apply("scheduler-validation", _moto_scheduler.patches)


def install_s3_missing_keys() -> None:
    """A missing key is 403 to a caller without s3:ListBucket (``_moto_s3_access``)."""
    _apply("s3-missing-keys", _moto_s3_access.patches)


_ABSENT = object()


@contextmanager
def speed_ups_installed() -> Iterator[None]:
    """The :data:`SPEED_UPS` on moto in this process, taken off again on exit.

    For tests that run code on moto in their own process (``mock_aws``): the same
    answers for less CPU, and no IAM evaluation or journals (those are the stage's).
    A group :func:`install` has put on for good is left as it is.
    """
    check_moto_version()
    replaced: list[tuple[Any, str, Any]] = []
    try:
        for group, build in SPEED_UPS.items():
            if group in _INSTALLED:
                continue
            for patch in build():
                # The owner's own attribute (a classmethod stays a classmethod), or none.
                replaced.append(
                    (patch.owner, patch.name, vars(patch.owner).get(patch.name, _ABSENT))
                )
                setattr(patch.owner, patch.name, patch.value)
        yield
    finally:
        for owner, name, value in reversed(replaced):
            if value is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


@dataclass(frozen=True)
class Installed:
    """What the moto process serves next to moto: the journals the patches fill."""

    events: Journal
    s3: Journal
    activity: Activity
    requests: RequestCounter

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """moto's app with localstage's middleware (request counts outermost)."""
        app = self.events.middleware(app)
        app = self.s3.middleware(app)
        app = self.activity.watching(app)
        return self.requests.middleware(app)


_installed: Installed | None = None


def install() -> Installed:
    """Check moto's version, then install every patch (idempotent)."""
    global _installed
    check_moto_version()
    if _installed is not None:
        return _installed
    # IAM's evaluation first: the resource-level patches wrap its check.
    install_iam_scope()
    install_backends()
    install_sqs()
    install_sqs_validation()
    install_dynamodb()
    # Under the size check: a transaction AWS refuses as invalid never meets a conflict.
    install_dynamodb_contention()
    install_dynamodb_validation()
    install_dynamodb_answers()
    install_dynamodb_expressions()
    install_streams()
    install_s3_missing_keys()
    install_scheduler_validation()
    # localstage delivers EventBridge events and S3 notifications itself: moto's
    # accepted entries go to journals the stage reads (_moto_events, _moto_s3).
    events = _moto_events.new_journal()
    _apply("events", lambda: _moto_events.patches(events))
    s3 = _moto_s3.new_journal()
    _apply("s3-notifications", lambda: _moto_s3.patches(s3))
    _installed = Installed(
        events=events,
        s3=s3,
        # Which services took a write, to wake the stage's pollers (_moto_activity).
        activity=_moto_activity.install(),
        # Every AWS request the stage makes, counted (_moto_requests).
        requests=_moto_requests.install(),
    )
    return _installed
