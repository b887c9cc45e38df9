"""handler_kit.fingerprints and responses.replay: same meaning, same fingerprint; replays
are the first answer's bytes."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from handler_kit import fingerprints, responses
from pydantic import BaseModel, ConfigDict


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    at: Annotated[str, fingerprints.Instant()]
    tags: Annotated[list[int], fingerprints.OrderFree()] = []
    steps: list[int] = []
    seed: int = 0


def _fp(**fields: Any) -> str:
    return fingerprints.request_fingerprint(_Request(**fields))


@pytest.mark.parametrize(
    "other",
    [
        {"at": "2026-03-14T10:00:00+00:00"},
        {"at": "2026-03-14T10:00:00.000Z"},
        {"at": "2026-03-14T11:00:00+01:00"},
        {"at": "2026-03-14T05:00:00.000000-05:00"},
        {"at": "2026-03-14T10:00:00Z", "seed": 0},
        {"at": "2026-03-14T10:00:00Z", "tags": []},
    ],
)
def test_equivalent_spellings_have_one_fingerprint(other: dict[str, Any]) -> None:
    # GIVEN a request and the same meaning spelled differently (offset, precision,
    # defaults given explicitly) WHEN fingerprinted THEN the fingerprints are equal
    assert _fp(**other) == _fp(at="2026-03-14T10:00:00Z")


def test_order_free_lists_are_sorted_and_ordered_lists_are_not() -> None:
    # GIVEN lists in two orders WHEN fingerprinted THEN only the order-free one ignores it
    at = "2026-03-14T10:00:00Z"
    assert _fp(at=at, tags=[0, 1]) == _fp(at=at, tags=[1, 0])
    assert _fp(at=at, steps=[0, 1]) != _fp(at=at, steps=[1, 0])


@pytest.mark.parametrize(
    "other",
    [
        {"at": "2026-03-14T10:00:01Z"},
        {"at": "2026-03-14T10:00:00.000001Z"},
        {"at": "2026-03-14T10:00:00Z", "seed": 1},
        {"at": "2026-03-14T10:00:00Z", "tags": [1]},
        {"at": "2026-03-14T10:00:00Z", "tags": [1, 1]},
        {"at": "2026-03-14T10:00:00"},
    ],
)
def test_different_meanings_have_different_fingerprints(other: dict[str, Any]) -> None:
    # GIVEN another instant, value or list content (or an unparsable time, kept as sent)
    # WHEN fingerprinted THEN it differs from the request's
    assert _fp(**other) != _fp(at="2026-03-14T10:00:00Z")


def test_a_model_hook_adjusts_the_normalized_view() -> None:
    # GIVEN a model whose default depends on another field, said in fingerprint_view
    class WithHook(BaseModel):
        count: int
        seed: int | None = None

        def fingerprint_view(self) -> dict[str, Any]:
            view = fingerprints.normalized(self)
            view["seed"] = view["seed"] or 0
            return view

    # WHEN fingerprinted THEN an absent seed and seed 0 are one request
    same = fingerprints.request_fingerprint(WithHook(count=2))
    assert same == fingerprints.request_fingerprint(WithHook(count=2, seed=0))
    assert same != fingerprints.request_fingerprint(WithHook(count=2, seed=1))


def test_replay_sends_the_stored_bytes_not_a_re_serialization() -> None:
    # GIVEN a first answer whose keys are not sorted, stored and read back
    first = responses.stored_json(201, {"z": 1, "a": {"y": 2, "b": 3}}, {"Location": "/x/1"})
    stored = responses.StoredResponse.from_json(first.to_json())

    # WHEN it is replayed with an extra header
    replayed = responses.replay(stored, {"Idempotent-Replayed": "true"})

    # THEN status and body are the first answer's exactly, headers kept and extended
    assert replayed.status_code == 201
    assert replayed.body == first.body == '{"z":1,"a":{"y":2,"b":3}}'
    assert replayed.headers["Location"] == "/x/1"
    assert replayed.headers["Idempotent-Replayed"] == "true"
