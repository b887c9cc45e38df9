"""account_api.handler against moto: malformed amounts, bodies and account ids are 400."""

from __future__ import annotations

import pytest

from tests.support.events import assert_json_error
from tests.unit.event_sourcing.conftest import MAX_BODY_BYTES, command_event

# --------------------------------------------------------------------------- bad input


BAD_AMOUNT_BODIES = {
    "zero": {"amount": 0},
    "negative": {"amount": -5},
    "float": {"amount": 10.5},
    "integral float": {"amount": 10.0},
    "string": {"amount": "10"},
    "boolean": {"amount": True},
    "null": {"amount": None},
    "above maximum": {"amount": 100_000_001},
    "huge": {"amount": 10**40},
    "missing": {},
    "extra field": {"amount": 10, "currency": "EUR"},
}


@pytest.mark.parametrize("command", ["credit", "withdraw"])
@pytest.mark.parametrize("body", BAD_AMOUNT_BODIES.values(), ids=BAD_AMOUNT_BODIES.keys())
def test_bad_amounts_are_400_and_write_nothing(bank, infra, command, body):
    # GIVEN an account with some money
    account_id = bank.open_id()
    bank.credit(account_id, 1000)
    before = infra.raw_items()

    # WHEN a command carries a bad amount
    response = getattr(bank, command)(account_id, body)

    # THEN 400 invalid_request, and the table is unchanged
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == before


RAW_BAD_BODIES = {
    "empty": "",
    "not json": "amount=10",
    "truncated": '{"amount": 1',
    "array": "[10]",
    "number": "10",
}


@pytest.mark.parametrize("body", RAW_BAD_BODIES.values(), ids=RAW_BAD_BODIES.keys())
def test_bad_bodies_are_400_and_write_nothing(bank, infra, body):
    # GIVEN an account WHEN a credit's body is not a valid amount object
    account_id = bank.open_id()
    before = infra.raw_items()
    response = bank.credit(account_id, body)
    # THEN 400 invalid_request and nothing is written
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == before


#: One byte over the 1 KiB limit, and valid JSON but for its size.
OVERSIZE = '{"amount": 1' + " " * (MAX_BODY_BYTES - 12) + "}"
#: Under the limit in characters, over it in UTF-8 bytes (the limit is on bytes).
OVERSIZE_MULTIBYTE = '{"amount": 1, "note": "' + "é" * 600 + '"}'


@pytest.mark.parametrize(
    "command", ["credit", "withdraw", "open", "credit-base64", "credit-multibyte"]
)
def test_a_body_over_the_limit_is_400_payload_too_large_and_writes_nothing(bank, infra, command):
    # GIVEN an account with some money, and a body one byte over the limit
    account_id = bank.open_id()
    bank.credit(account_id, 1000)
    before = infra.raw_items()
    assert len(OVERSIZE.encode()) == MAX_BODY_BYTES + 1
    assert len(OVERSIZE_MULTIBYTE) < MAX_BODY_BYTES < len(OVERSIZE_MULTIBYTE.encode())

    # WHEN a command or POST /accounts carries it (base64-encoded too, as API Gateway
    # passes a binary media type: the limit is on the decoded bytes, whose base64 text
    # is as long as that of a body at the limit)
    if command == "open":
        response = bank.open(body=OVERSIZE)
    elif command == "credit-base64":
        response = bank.credit(account_id, OVERSIZE, base64_body=True)
    elif command == "credit-multibyte":
        response = bank.credit(account_id, OVERSIZE_MULTIBYTE)
    else:
        response = getattr(bank, command)(account_id, OVERSIZE)

    # THEN 400 payload_too_large, as every API of the app answers it, and nothing changed
    assert_json_error(response, 400, "payload_too_large")
    assert infra.raw_items() == before


def test_a_body_at_the_limit_is_read(bank):
    # GIVEN a credit's body of exactly the limit WHEN it is sent THEN it is applied
    assert bank.models.MAX_BODY_BYTES == MAX_BODY_BYTES
    account_id = bank.open_id()
    body = '{"amount": 7' + " " * (MAX_BODY_BYTES - 13) + "}"
    assert len(body.encode()) == MAX_BODY_BYTES
    assert bank.credit(account_id, body).status == 200


def test_base64_bodies_are_decoded(bank):
    # GIVEN an account WHEN API Gateway passes the body base64-encoded (binary media type)
    account_id = bank.open_id()
    response = bank.credit(account_id, {"amount": 42}, base64_body=True)
    # THEN it is read like a plain body
    assert response.status == 200 and response.body["balance"] == 42


def test_invalid_base64_is_400(bank, infra):
    account_id = bank.open_id()
    before = infra.raw_items()
    event = command_event(account_id, "credit", "!!!not-base64!!!")
    event["isBase64Encoded"] = True
    assert_json_error(bank.call_api(event), 400, "invalid_request")
    assert infra.raw_items() == before


@pytest.mark.parametrize("action", ["get", "credit", "history"])
def test_malformed_account_id_is_400(bank, infra, action):
    # GIVEN an id that is not a UUID WHEN it is used THEN 400 and nothing is written
    response = (
        getattr(bank, action)("not-a-uuid", 10)
        if action == "credit"
        else getattr(bank, action)("not-a-uuid")
    )
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == []


@pytest.mark.parametrize("body", ['{"owner": "alice"}', "[]", "nope"])
def test_open_account_refuses_any_body_but_an_empty_object(bank, infra, body):
    # GIVEN a body with fields or not an object WHEN an account is opened THEN 400
    assert_json_error(bank.open(body=body), 400, "invalid_request")
    assert infra.raw_items() == []


def test_open_account_accepts_an_empty_object(bank):
    # GIVEN the body {} WHEN an account is opened THEN it is
    assert bank.open(body={}).status == 201


@pytest.mark.parametrize("body", ["\x0b", "\x0c", " \x0b\r\n"])
def test_a_body_of_what_json_does_not_count_as_whitespace_is_not_no_body(bank, infra, body):
    # GIVEN a POST /accounts body that is neither empty nor JSON (bytes.strip() strips
    # \x0b and \x0c; JSON whitespace is space, tab, CR and LF only)
    before = infra.raw_items()

    # WHEN it is posted THEN 400 invalid_request, and no account is opened
    assert_json_error(bank.open(body=body), 400, "invalid_request")
    assert infra.raw_items() == before
