"""moto's per-request handler lookup, made one getattr, answers as moto's listing does."""

from __future__ import annotations

import importlib

import pytest
from moto.core.responses import BaseResponse
from moto.core.utils import method_names_from_class

from localstage._moto_responses import FunctionNames

#: The services localstage's stages call: their response classes are what gets looked up.
SERVICES = ("dynamodb", "dynamodbstreams", "events", "iam", "logs", "s3", "scheduler", "sqs", "sts")


def _response_classes() -> list[type]:
    for service in SERVICES:
        importlib.import_module(f"moto.{service}.responses")
    found: list[type] = []
    pending: list[type] = [BaseResponse]
    while pending:
        owner = pending.pop()
        found.append(owner)
        pending.extend(owner.__subclasses__())
    return found


@pytest.mark.parametrize("owner", _response_classes(), ids=lambda owner: owner.__qualname__)
def test_every_name_is_a_method_exactly_when_moto_lists_it(owner: type) -> None:
    # GIVEN a moto response class, the names moto lists as its functions, and
    # every other name the class has, plus names it has not
    listed = set(method_names_from_class(owner))
    others = (set(dir(owner)) - listed) | {"no_such_action", "", "__init__x"}

    # WHEN each is looked up one at a time
    names = FunctionNames(owner)

    # THEN the listed names are found and no other name is
    assert [name for name in sorted(listed) if name not in names] == []
    assert [name for name in sorted(others) if name in names] == []
