"""Checks on API answers that every pattern's API makes the same way: a create answer,
a replayed idempotent answer, and the one answer racing requests all get."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from tests.support.events import HttpResponse


def created_id(response: HttpResponse, status: int, id_field: str, collection: str) -> str:
    """Assert a create answer and return the new id.

    The answer has ``status``, a random (version 4) UUID in ``id_field``, and a
    Location of that id under ``collection`` (the stage's path, e.g. ``/api/jobs``).
    """
    assert response.status == status, response.body
    new_id: str = response.body[id_field]
    assert uuid.UUID(new_id).version == 4
    assert response.headers["location"] == f"{collection}/{new_id}"
    return new_id


def assert_replayed(
    retry: HttpResponse, first: HttpResponse, headers: Iterable[str] = ("location", "retry-after")
) -> None:
    """The retry got the first answer again: its status, its body bytes and ``headers``."""
    assert retry.status == first.status
    assert retry.raw_body == first.raw_body
    for name in headers:
        assert retry.headers[name] == first.headers[name]


def assert_all_got_the_winners_answer(
    answers: list[HttpResponse], first: HttpResponse, status: int
) -> None:
    """Racing requests with one key: the winner answered ``status`` and every request
    got the winner's status and body bytes."""
    assert first.status == status
    assert {a.status for a in answers} == {status}
    assert {a.raw_body for a in answers} == {first.raw_body}
