"""Requests a hostile client sends: JSON that is not strict, ambiguous or non-JSON headers.

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
    # One digit more than strict JSON takes: small enough for every API's body limit.
    "long-int": "9" * 1_001,
    "huge-int": "9" * 10_000,
    "deep-nesting-40": "[" * 40 + "]" * 40,
    # Deeper than json.loads can recurse; inside a 16 KiB body limit, not a 1 KiB one.
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
#: Headers that declare a JSON body as something else (the request's keyword arguments).
NOT_JSON: dict[str, dict[str, Any]] = {
    "text-plain": {"headers": {"Content-Type": "text/plain"}},
    "xml": {"headers": {"Content-Type": "application/xml"}},
    "form": {"headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    "merge-patch-json": {"headers": {"Content-Type": "application/merge-patch+json"}},
    "charset-latin-1": {"headers": {"Content-Type": "application/json; charset=latin-1"}},
    "no-media-type": {"headers": {"Content-Type": "json"}},
    "two-lines": {"multi_value_headers": {"Content-Type": ["application/json", "text/plain"]}},
    "folded": {"headers": {"Content-Type": "application/json, text/plain"}},
    # Semicolons and spaces that made the old parser backtrack (about 0.1 s here, a minute
    # at 71 bytes); handler_kit's own test sends the header-sized kind.
    "semicolon-run": {"headers": {"Content-Type": "application/json" + " ; " * 12 + "x"}},
}
#: Spellings of JSON as a body's media type, every one read as ``application/json``.
JSON_SPELLINGS: dict[str, dict[str, Any]] = {
    "canonical": {"headers": {"Content-Type": "application/json"}},
    "upper-case": {"headers": {"Content-Type": "Application/JSON"}},
    "charset-utf-8": {"headers": {"Content-Type": "application/json; charset=utf-8"}},
    "charset-quoted": {"headers": {"Content-Type": 'application/json;Charset="UTF-8"'}},
    "other-parameter": {"headers": {"Content-Type": "application/json; profile=x"}},
    "none": {"headers": {"Content-Type": None}},
}
#: A keyed request's options.
KEYED = {"headers": {"Idempotency-Key": "k-1"}}


def keyed(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the Idempotency-Key k-1 added to its headers."""
    return {**options, "headers": {**options.get("headers", {}), **KEYED["headers"]}}


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
    params += [
        pytest.param(valid, options, 415, "unsupported_media_type", id=name)
        for name, options in NOT_JSON.items()
    ]
    return params


def within_limit(params: list[Any], max_bytes: int) -> list[Any]:
    """``params`` (of :func:`hostile_requests`) for an API whose body limit is ``max_bytes``:
    a body over it must be refused by its size (400 ``payload_too_large``), before it is
    parsed, whatever else is wrong with it."""
    return [
        pytest.param(body, options, 400, "payload_too_large", id=param.id)
        if len(body.encode()) > max_bytes
        else param
        for param in params
        for body, options, *_ in [param.values]
    ]


def parametrize_by(cases: dict[str, dict[str, Any]], argument: str) -> Any:
    """``pytest.mark.parametrize`` of ``argument`` over the request options of ``cases``."""
    return pytest.mark.parametrize(argument, list(cases.values()), ids=list(cases))


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
        for argument, cases in (
            ("ambiguous_options", AMBIGUOUS_KEYS),
            ("not_json_options", NOT_JSON),
            ("json_options", JSON_SPELLINGS),
        ):
            if argument in metafunc.fixturenames:
                metafunc.parametrize(argument, list(cases.values()), ids=list(cases))

    def settle(self, handlers: Any) -> None:
        """Let a first request's work run where a replay would otherwise redo part of it."""

    def snapshot(self, infra: Any) -> Any:
        """Everything a request could have written (items, messages, schedules)."""
        raise NotImplementedError

    def answered_keyed_request(self, handlers: Any, infra: Any) -> tuple[Any, Any]:
        """Post the valid body with the key k-1, let its work settle: its answer, and the
        snapshot a replay of it must leave unchanged."""
        first = handlers.post(self.VALID, **KEYED)
        assert first.status < 300, first.body
        self.settle(handlers)
        return first, self.snapshot(infra)

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

    def test_every_spelling_of_json_is_read_and_a_keyed_retry_replays(
        self, handlers: Any, infra: Any, json_options: dict[str, Any]
    ) -> None:
        # GIVEN a keyed request declared as application/json, answered
        first, before = self.answered_keyed_request(handlers, infra)

        # WHEN it is retried declaring JSON another way (or not at all)
        retry = handlers.post(self.VALID, **keyed(json_options))

        # THEN the media type is the same meaning: the first answer, byte for byte
        assert (retry.status, retry.raw_body) == (first.status, first.raw_body)
        assert self.snapshot(infra) == before
        # AND without a key, the request is read as JSON too
        assert handlers.post(self.VALID, **json_options).status < 300

    def test_a_keyed_retry_declared_as_another_media_type_is_415_not_a_replay(
        self, handlers: Any, infra: Any, not_json_options: dict[str, Any]
    ) -> None:
        # GIVEN a keyed request, answered
        first, before = self.answered_keyed_request(handlers, infra)

        # WHEN the same bytes come with the key but declared as something else than JSON
        response = handlers.post(self.VALID, **keyed(not_json_options))

        # THEN 415 before the key is looked up (as a malformed body is 400), nothing
        # changes, and a retry declared as JSON still gets the first answer
        assert_json_error(response, 415, "unsupported_media_type")
        assert self.snapshot(infra) == before
        retry = handlers.post(self.VALID, **KEYED)
        assert (retry.status, retry.raw_body) == (first.status, first.raw_body)
