"""Requests a hostile client sends: JSON that is not strict, and conflicting headers.

Each API's tests fill a body template whose ``@@`` slot is a place where the API takes
a number (or any value), so the only thing wrong with the body is what is put there.
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

#: Two different values of a single-valued header, as API Gateway delivers them.
CONFLICTING_KEYS = {"Idempotency-Key": ["k-1", "k-2"]}


def hostile_requests(
    template: str, *, valid_slot: str, duplicate_top: str, duplicate_nested: str | None = None
) -> list[Any]:
    """``pytest.param(body, multi_value_headers)`` for every hostile request class.

    Parameters
    ----------
    template : str
        A body with one ``@@`` slot.
    valid_slot : str
        A value that makes the template a valid request (sent with conflicting keys).
    duplicate_top, duplicate_nested : str
        Bodies with a repeated key at the top level and inside a nested object (the
        nested one omitted where the API has no nested object).
    """
    params = [
        pytest.param(template.replace("@@", value), None, id=name)
        for name, value in SLOT_VALUES.items()
    ]
    params.append(pytest.param(duplicate_top, None, id="duplicate-key-top"))
    if duplicate_nested is not None:
        params.append(pytest.param(duplicate_nested, None, id="duplicate-key-nested"))
    params.append(
        pytest.param(
            template.replace("@@", valid_slot), CONFLICTING_KEYS, id="conflicting-idempotency-keys"
        )
    )
    return params


class HostilePostTests:
    """The hostile-client test every JSON POST API shares, parametrized per API.

    A pattern's test module subclasses it as ``TestHostilePost``, with its ``HOSTILE``
    requests (see :func:`hostile_requests`) and what "nothing written" means for that
    API. The check itself (400 ``invalid_request`` in the JSON error shape, and no
    state left behind) is the same for every API, so it is written once here.
    """

    #: ``pytest.param(body, multi_value_headers)`` for every hostile request class.
    HOSTILE: ClassVar[list[Any]] = []

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the test below over this API's hostile requests."""
        if "multi_value_headers" in metafunc.fixturenames:
            metafunc.parametrize(("body", "multi_value_headers"), self.HOSTILE)

    def assert_nothing_written(self, infra: Any) -> None:
        """Assert the rejected request left no item, message or schedule behind."""
        raise NotImplementedError

    def test_hostile_post_is_400_and_writes_nothing(
        self,
        handlers: Any,
        infra: Any,
        body: str,
        multi_value_headers: dict[str, list[str]] | None,
    ) -> None:
        # GIVEN a body that is not strict JSON, or two different Idempotency-Keys
        # WHEN it is posted
        response = handlers.post(body, multi_value_headers=multi_value_headers)

        # THEN 400 invalid_request in the JSON error shape, and nothing written
        assert_json_error(response, 400, "invalid_request")
        self.assert_nothing_written(infra)
