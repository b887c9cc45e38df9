"""Fixtures of the handler_kit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.moto_resources import create_table

#: The table the handler_kit DynamoDB tests use, keyed by ``item_id`` (S).
ITEM_TABLE = "items"


@pytest.fixture
def client(aws_client: Callable[..., Any]) -> Any:
    """A moto DynamoDB client with an empty table ``ITEM_TABLE`` keyed by ``item_id`` (S)."""
    client = aws_client("dynamodb")
    create_table(client, ITEM_TABLE, ("item_id", "S"))
    return client
