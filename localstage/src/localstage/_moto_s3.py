"""Inside the moto process: S3 object events go to a journal for localstage to deliver.

moto calls ``moto.s3.notifications.send_event`` wherever S3 emits an event
(PutObject, POST, CopyObject, CompleteMultipartUpload, DeleteObject(s), delete
markers, tagging, ACLs), inside the request, so the object's size, ETag and version
are exact even when the next request overwrites it. Each call is journaled (moto's
own delivery still runs and does nothing: localstage never configures notifications
on moto). The parent reads the journal at ``GET /_localstage/s3/journal?wait=<s>``
(a long poll that returns and clears it); the path never reaches moto.
"""

from __future__ import annotations

import time
from typing import Any

from localstage._moto_journal import Journal
from localstage._moto_patch import Patch

JOURNAL_PATH = "/_localstage/s3/journal"
#: Nobody reads the journal when no bucket has notifications: keep it bounded.
_MAX_ENTRIES = 20_000


def new_journal() -> Journal:
    """The journal :func:`patches` fills (the moto process serves it as middleware)."""
    return Journal(JOURNAL_PATH, max_entries=_MAX_ENTRIES, drop_when_full=_MAX_ENTRIES // 10)


def patches(journal: Journal) -> list[Patch]:
    """Journal every S3 event moto emits."""
    from moto.s3 import notifications

    send_event = notifications.send_event

    def journaled_send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        if key is not None:
            version = getattr(key, "version_id", None)
            journal.append(
                {
                    "eventName": str(getattr(event_name, "value", event_name)).removeprefix("s3:"),
                    "bucket": bucket.name,
                    "key": key.name,
                    "size": getattr(key, "size", None),
                    "eTag": str(getattr(key, "etag", "") or "").strip('"') or None,
                    "versionId": version if version not in (None, "null") else None,
                    "time": time.time(),
                    "sequencer": f"{time.time_ns():016X}",
                }
            )
        send_event(account_id, event_name, bucket, key)

    return [Patch(notifications, "send_event", journaled_send_event)]
