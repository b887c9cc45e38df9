"""Requests a hostile client sends: JSON that is not strict, and ambiguous headers.

Each API's tests fill a body template whose ``@@`` slot is a place where the API takes
a number (or any value), so the only thing wrong with the body is what is put there;
the header cases send the template made valid, so the only thing wrong is the headers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from tests.support.events import assert_json_error

#: What goes into a template's ``@@`` slot: each is not strict JSON.
SLOT_VALUES = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus-infinity": "-Infinity",
    "overflow": "1e309",
    "huge-int": "9" * 10_000,
    "deep-nesting-40": "[" * 40 + "]" * 40,
    # Deeper than json.loads can recurse, yet inside the smallest body limit (16 KiB).
    "deep-nesting-5000": "[" * 5_000 + "]" * 5_000,
}

#: Headers that leave the Idempotency-Key in doubt, as API Gateway delivers them (the
#: request's keyword arguments): every line of a repeated header in
#: ``multiValueHeaders``, a line an intermediary folded (RFC 9110, section 5.3) as one value.
AMBIGUOUS_KEYS: dict[str, dict[str, Any]] = {
    "conflicting-keys": {"multi_value_headers": {"Idempotency-Key": ["k-1", "k-2"]}},
    "repeated-key": {"multi_value_headers": {"Idempotency-Key": ["k-1", "k-1"]}},
    "repeated-key-in-two-cases": {
        "multi_value_headers": {"Idempotency-Key": ["k-1"], "idempotency-key": ["k-1"]}
    },
    "folded-keys": {"headers": {"Idempotency-Key": "k-1, k-1"}},
    "folded-keys-no-space": {"headers": {"Idempotency-Key": "k-1,k-2"}},
}
#: A keyed request's options.
KEYED = {"headers": {"Idempotency-Key": "k-1"}}


def hostile_requests(
    template: str, *, valid_slot: str, duplicate_top: str, duplicate_nested: str | None = None
) -> list[Any]:
    """``pytest.param(body, options, status, code)`` for every hostile request class.

    ``options`` are the request's keyword arguments (``headers``,
    ``multi_value_headers``); ``status`` and ``code`` the answer it must get.

    Parameters
    ----------
    template : str
        A body with one ``@@`` slot.
    valid_slot : str
        A value that makes the template a valid request (sent with ambiguous keys).
    duplicate_top, duplicate_nested : str
        Bodies with a repeated key at the top level and inside a nested object (the
        nested one omitted where the API has no nested object).
    """
    invalid = (400, "invalid_request")
    params = [
        pytest.param(template.replace("@@", value), {}, *invalid, id=name)
        for name, value in SLOT_VALUES.items()
    ]
    params.append(pytest.param(duplicate_top, {}, *invalid, id="duplicate-key-top"))
    if duplicate_nested is not None:
        params.append(pytest.param(duplicate_nested, {}, *invalid, id="duplicate-key-nested"))
    valid = template.replace("@@", valid_slot)
    params += [
        pytest.param(valid, options, 400, "ambiguous_idempotency_key", id=name)
        for name, options in AMBIGUOUS_KEYS.items()
    ]
    return params


class HostilePostTests:
    """The hostile-client tests every JSON POST API shares, parametrized per API.

    A pattern's test module subclasses it as ``TestHostilePost``, with its ``HOSTILE``
    requests (see :func:`hostile_requests`), its ``VALID`` body and what "nothing
    written" means for that API. The checks themselves (the 4xx in the JSON error shape,
    and no state left behind) are the same for every API, so they are written once here.
    """

    #: ``pytest.param(body, options, status, code)`` for every hostile request class.
    HOSTILE: ClassVar[list[Any]] = []
    #: A body the API accepts.
    VALID: ClassVar[str] = ""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the tests below over this API's hostile requests."""
        if "hostile_options" in metafunc.fixturenames:
            metafunc.parametrize(("body", "hostile_options", "status", "code"), self.HOSTILE)
        if "ambiguous_options" in metafunc.fixturenames:
            metafunc.parametrize(
                "ambiguous_options", list(AMBIGUOUS_KEYS.values()), ids=list(AMBIGUOUS_KEYS)
            )

    def snapshot(self, infra: Any) -> Any:
        """Everything a request could have written (items, messages, schedules)."""
        raise NotImplementedError

    def assert_nothing_written(self, infra: Any) -> None:
        """Assert the rejected request left no item, message or schedule behind."""
        raise NotImplementedError

    def test_hostile_post_is_4xx_and_writes_nothing(
        self,
        handlers: Any,
        infra: Any,
        body: str,
        hostile_options: dict[str, Any],
        status: int,
        code: str,
    ) -> None:
        # GIVEN a body that is not strict JSON, or a valid one with ambiguous headers
        # WHEN it is posted
        response = handlers.post(body, **hostile_options)

        # THEN the 4xx in the JSON error shape, and nothing written
        assert_json_error(response, status, code)
        self.assert_nothing_written(infra)

    def test_an_ambiguous_key_is_refused_not_replayed(
        self, handlers: Any, infra: Any, ambiguous_options: dict[str, Any]
    ) -> None:
        # GIVEN a request made with the key k-1
        assert handlers.post(self.VALID, **KEYED).status < 300
        before = self.snapshot(infra)

        # WHEN the same request comes with k-1 repeated or folded (or with another key)
        response = handlers.post(self.VALID, **ambiguous_options)

        # THEN 400 ambiguous_idempotency_key, not the first answer, and nothing changes
        assert_json_error(response, 400, "ambiguous_idempotency_key")
        assert self.snapshot(infra) == before
