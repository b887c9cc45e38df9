"""Inside the moto process: refuse a ``MessageGroupId`` that SQS refuses.

SQS takes a ``MessageGroupId`` on FIFO queues (the ordering group) and, since fair
queues, on standard queues (the message's tenant). Either way it is 1 to 128
characters, each alphanumeric or punctuation (``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``);
SendMessage and SendMessageBatch are refused with ``InvalidParameterValue`` otherwise.
moto stores any value, so a sender building group ids from an unbounded identity (a
long role-session ARN, a name with spaces) would pass here and fail on AWS. The
fairness itself (quiet tenants' messages delivered first) is not emulated: localstage
delivers in the order moto returns.
"""

from __future__ import annotations

import re
from typing import Any

from localstage._moto_patch import Patch

#: AWS's rule for a message group id: alphanumeric and punctuation, 1-128 characters.
GROUP_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")


def check_group_id(group_id: str | None) -> None:
    """Raise moto's ``InvalidParameterValue`` for a group id SQS refuses."""
    from moto.sqs.exceptions import InvalidParameterValue

    if group_id is not None and not GROUP_ID.fullmatch(group_id):
        raise InvalidParameterValue(
            f"Value {group_id} for parameter MessageGroupId is invalid. Reason: "
            "MessageGroupId can only include alphanumeric and punctuation characters. "
            "1 to 128 in length."
        )


def patches() -> list[Patch]:
    """Check the group id wherever moto validates a message to send."""
    from moto.sqs import models

    validate = models.SQSBackend._validate_message

    def validated(backend: Any, queue: Any, message_body: str, *args: Any, **kwargs: Any) -> None:
        group_id = kwargs.get("group_id", args[2] if len(args) > 2 else None)
        check_group_id(group_id)
        validate(backend, queue, message_body, *args, **kwargs)

    return [Patch(models.SQSBackend, "_validate_message", validated)]
