"""batch_records.parse_line reads each input line with handler_kit's strict JSON reader."""

from __future__ import annotations

import pytest

from tests.unit.recursive_processor.conftest import BatchModules


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'{"id": "a", "amount": 0, "amount": 3}', id="duplicate-key"),
        pytest.param(b'{"id": "a", "amount": 3, "note": NaN}', id="nan"),
        pytest.param(b'{"id": "a", "amount": 3, "note": 1e309}', id="overflow"),
        pytest.param(
            b'{"id": "a", "amount": 3, "note": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="deep"
        ),
    ],
)
def test_a_line_that_is_not_strict_json_is_an_invalid_json_bad_record(
    batch: BatchModules, line: bytes
) -> None:
    # GIVEN a line json.loads would read (or crash on) WHEN parsed
    result = batch.records.parse_line(line, 7)

    # THEN it is set aside as invalid_json with its offset, never counted as a record
    assert (result.error, result.offset) == ("invalid_json", 7)
