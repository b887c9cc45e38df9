"""Signed raw-HTTP calls to the stage of ``tiny_api.py`` (fixture ``api_stage``).

Over ``http.client`` so that a test controls exactly what is sent: repeated headers,
non-ASCII in the path, a body of a given size, a signature made at a given time.
"""

from __future__ import annotations

import datetime
import http.client
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from localstage.stage import LocalStage
from localstage.target import LocalTarget


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def call(
    stage: LocalStage,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    tamper: str | None = None,
    signed_at: datetime.datetime | None = None,
) -> Answer:
    """Send a SigV4-signed request; ``path`` is raw (already percent-encoded), after the stage.

    Only ``Content-Type`` of ``headers`` is signed; the others (repeats included) are
    sent as given. ``tamper`` replaces the path after signing; ``signed_at`` is the
    signing time (UTC, naive, as botocore keeps it), now when not given.
    """
    target = LocalTarget(stage)
    base = urllib.parse.urlsplit(target.resolve_url(target.output("test-Tiny", "ApiUrl")))
    raw_path = f"{base.path.rstrip('/')}/{path}"
    url = f"http://{base.netloc}{raw_path}"
    signed = {name: value for name, value in headers if name.lower() == "content-type"}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    signer = SigV4Auth(target.caller_credentials(), "execute-api", "us-east-1")
    if signed_at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
            signer.add_auth(request)
    connection = http.client.HTTPConnection(base.netloc, timeout=60)
    try:
        sent_path = f"{base.path.rstrip('/')}/{tamper}" if tamper else raw_path
        connection.putrequest(method, sent_path, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        for name, value in headers:
            if name.lower() != "content-type":
                connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()
