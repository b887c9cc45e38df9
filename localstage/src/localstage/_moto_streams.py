"""Inside the moto process: DynamoDB Streams ``GetRecords`` answered as JSON directly.

moto answers ``GetRecords`` through its model-driven serializer, which looks every
member of every record up under several name aliases: about 3.6 ms per record here,
and a fan-out of 1,000 subtasks reads about 2,000 records. The records moto keeps are
already in the wire shape (DynamoDB JSON images) except ``ApproximateCreationDateTime``,
a UTC datetime the JSON protocol sends as epoch seconds (milliseconds kept, as moto's
serializer does). Here they are dumped as they are. Binary (``B``) values go out as
moto stores them, base64 once, as ``GetItem`` answers them.
"""

from __future__ import annotations

import calendar
import json
from datetime import datetime
from typing import Any

from localstage._moto_patch import Patch


def _wire_value(value: Any) -> Any:
    if isinstance(value, datetime):
        seconds = calendar.timegm(value.utctimetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def get_records(handler: Any) -> str:
    """``DynamoDBStreamsHandler.get_records``, dumping moto's records without its serializer."""
    iterator = handler._get_param("ShardIterator")
    limit = handler._get_param("Limit")
    result = handler.backend.get_records(iterator, 1000 if limit is None else limit)
    return json.dumps(result, default=_wire_value)


def patches() -> list[Patch]:
    """Answer ``GetRecords`` with :func:`get_records`."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    return [Patch(DynamoDBStreamsHandler, "get_records", get_records)]
