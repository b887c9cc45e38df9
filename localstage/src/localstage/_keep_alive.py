"""HTTP/1.1 keep-alive for localstage's werkzeug servers.

werkzeug's development server answers every request with ``Connection: close``, so
each SDK call paid a TCP connect, a new server thread, a selector to drain the socket
and a response written in three or more sends. Every request of a stage goes through
moto's server, which runs them one at a time: that overhead was most of its CPU.
:class:`KeepAliveRequestHandler` answers a request with a known length on the same
connection, in one send. A request framed otherwise (``Transfer-Encoding``) takes
werkzeug's own path and closes the connection, as before.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from werkzeug.serving import WSGIRequestHandler


def whole_body(result: Iterable[bytes]) -> bytes:
    """A WSGI app's answer as one bytes object; the iterable is closed, as WSGI requires."""
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


#: Answers that carry no body, so no ``Content-Length`` is added to them (RFC 9110 8.6).
_NO_BODY_STATUSES = frozenset({204, 304})


class KeepAliveRequestHandler(WSGIRequestHandler):
    """A werkzeug request handler that keeps the connection open between requests."""

    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            super().run_wsgi()
            return
        # The whole body is read here: a handler that reads less would otherwise leave
        # bytes that the next request on this connection starts with.
        declared = self.headers.get("Content-Length") or "0"
        # RFC 9110 8.6: 1*DIGIT, ASCII digits only (str.isdigit() also takes "\xb2");
        # anything else is unframeable.
        if not (declared.isascii() and declared.isdigit()):
            self.close_connection = True
            self.send_error(400, "Bad Content-Length")
            return
        length = int(declared)
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length else b"")
        answer: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            answer[:] = [(status, headers)]
            return self._refuse_write

        try:
            body = whole_body(self.server.app(environ, start_response))
        except Exception as error:  # what werkzeug does: log it, answer 500, close
            self.server.log("error", f"Error on request: {error!r}")
            self.close_connection = True
            answer[:] = [("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")])]
            body = HTTPStatus.INTERNAL_SERVER_ERROR.phrase.encode()
        status, headers = answer[-1]
        self.wfile.write(
            self._head(status, headers, body) + (b"" if self.command == "HEAD" else body)
        )

    def _head(self, status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        code = int(status.split(None, 1)[0])
        lines = [f"{self.protocol_version} {status}"]
        names = set()
        for name, value in headers:
            # The body is whole here: it goes with a length, never in chunks.
            if name.lower() in {"connection", "keep-alive", "transfer-encoding"}:
                continue
            names.add(name.lower())
            lines.append(f"{name}: {value}")
        if "content-length" not in names and code not in _NO_BODY_STATUSES and code >= 200:
            lines.append(f"Content-Length: {len(body)}")
        if "date" not in names:
            lines.append(f"Date: {self.date_time_string()}")
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")

    @staticmethod
    def _refuse_write(_data: bytes) -> None:
        raise NotImplementedError("the WSGI write() callable is not supported: return the body")
