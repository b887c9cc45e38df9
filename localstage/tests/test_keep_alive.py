"""The moto server's request handler keeps connections open and frames every answer."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from localstage._keep_alive import KeepAliveRequestHandler


def _echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers the method, path and body it got; reads only part of a body on /partial."""
    stream = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if environ["PATH_INFO"] == "/partial":
        body = stream.read(min(length, 3))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = stream.read(length)
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("the app failed")
    status = "204 No Content" if environ["PATH_INFO"] == "/empty" else "200 OK"
    headers = [("Content-Type", "text/plain"), ("Connection", "keep-alive")]
    if environ["PATH_INFO"] == "/four":  # an app that says it streams: the body is whole
        headers.append(("Transfer-Encoding", "chunked"))
    start_response(status, headers)
    if status.startswith("204"):
        return [b""]
    return [f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} ".encode(), body]


class _QuietHandler(KeepAliveRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, _echo, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_requests_share_one_connection_and_each_gets_its_own_answer(port: int) -> None:
    # GIVEN one connection
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    answers = []

    # WHEN requests with and without bodies, one the app reads only part of, a HEAD and
    # a body-less status are sent on it one after the other
    for method, path, body in [
        ("POST", "/one", b"first body"),
        ("POST", "/partial", b"0123456789"),
        ("GET", "/two", None),
        ("HEAD", "/three", None),
        ("DELETE", "/empty", None),
        ("PUT", "/four", b"last"),
    ]:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        answers.append((response.status, response.read(), response.getheader("Connection")))
        socket_before = connection.sock
        assert socket_before is not None

    # THEN every answer is the one for its request, nothing of a body leaks into the
    # next request, and the connection stayed open throughout
    assert answers == [
        (200, b"POST /one first body", None),
        (200, b"POST /partial 012", None),
        (200, b"GET /two ", None),
        (200, b"", None),
        (204, b"", None),
        (200, b"PUT /four last", None),
    ]
    assert connection.sock is socket_before
    connection.close()


def test_a_chunked_request_is_answered_then_its_connection_closed(port: int) -> None:
    # GIVEN a request whose body comes in chunks (no Content-Length)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    # WHEN it is sent
    connection.request("POST", "/chunked", body=iter([b"ab", b"cd"]), encode_chunked=True)
    response = connection.getresponse()

    # THEN werkzeug's own path answers it and closes the connection
    assert (response.status, response.read()) == (200, b"POST /chunked abcd")
    assert "close" in (response.getheader("Connection") or "")
    assert connection.sock is not None and connection.sock.recv(1) == b""  # closed by the server
    connection.close()


def test_a_failing_app_gets_a_500_and_the_connection_closes(port: int) -> None:
    # GIVEN an app that raises
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    # WHEN a request reaches it
    connection.request("POST", "/boom", body=b"x")
    response = connection.getresponse()

    # THEN the answer is a 500 that closes the connection
    assert response.status == 500
    assert response.getheader("Connection") == "close" and response.will_close
    response.read()
    connection.close()


# "\xb2" (superscript two, one byte in latin-1, as headers are read) is a digit to
# str.isdigit() but not to int().
@pytest.mark.parametrize("declared", ["abc", "-1", "1e3", "\xb2"])
def test_a_length_that_is_not_digits_gets_a_400_and_the_connection_closes(
    port: int, declared: str
) -> None:
    # GIVEN a request whose Content-Length is not a number of bytes
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest("POST", "/one")
    connection.putheader("Content-Length", declared)
    connection.endheaders(b"body")

    # WHEN it is answered THEN it is refused and the connection closes
    response = connection.getresponse()
    assert response.status == 400
    response.read()
    assert connection.sock is None or connection.sock.recv(1) == b""
    connection.close()
