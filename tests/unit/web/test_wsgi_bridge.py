"""The one-hop WSGI bridge: what Flask answers reaches the ASGI server unchanged."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from server.web.accel.wsgi_bridge import OneHopWSGI

VAR = contextvars.ContextVar("bridge_test_var", default="unset")


def run(app, path="/", method="GET", body=b""):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(body)).encode())],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    async def main():
        VAR.set("from-the-loop")
        await app(scope, receive, send)

    asyncio.run(main())
    return sent


def test_small_answer_is_one_start_and_one_final_body():
    def wsgi(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Seen", VAR.get())])
        return [b"he", b"llo"]

    sent = run(OneHopWSGI(wsgi))
    assert sent[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-seen", b"from-the-loop")],
    }
    assert sent[1:] == [{"type": "http.response.body", "body": b"hello", "more_body": False}]


def test_large_answer_is_streamed_in_batches_and_closed():
    closed = []

    class Body:
        def __iter__(self):
            for i in range(10):
                yield bytes([65 + i]) * 1000

        def close(self):
            closed.append(True)

    def wsgi(environ, start_response):
        start_response("200 OK", [])
        return Body()

    sent = run(OneHopWSGI(wsgi, buffer_limit=2500))
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) > 2  # never the whole body at once
    assert all(len(m["body"]) <= 3000 for m in bodies)
    assert b"".join(m["body"] for m in bodies) == b"".join(
        bytes([65 + i]) * 1000 for i in range(10)
    )
    assert [m["more_body"] for m in bodies][-1] is False
    assert closed == [True]


def test_request_body_and_legacy_write():
    def wsgi(environ, start_response):
        data = environ["wsgi.input"].read()
        write = start_response("200 OK", [("Content-Length", str(len(data) + 1))])
        write(b">")
        return [data]

    sent = run(OneHopWSGI(wsgi), method="POST", body=b'{"a": 1}')
    assert sent[-1]["body"] == b'>{"a": 1}'


def test_an_exception_before_the_answer_propagates_and_nothing_is_sent():
    def wsgi(environ, start_response):
        raise LookupError("boom")

    sent = []
    with pytest.raises(LookupError):
        sent = run(OneHopWSGI(wsgi))
    assert sent == []


def test_start_response_with_exc_info_replaces_the_headers():
    def wsgi(environ, start_response):
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("late")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("X-B", "2")], sys.exc_info())
        return [b"x"]

    sent = run(OneHopWSGI(wsgi))
    assert sent[0]["status"] == 500 and sent[0]["headers"] == [(b"x-b", b"2")]


def test_the_app_uses_the_bridge(app):
    from server.web.accel.wsgi_bridge import OneHopWSGI as Bridge

    assert isinstance(app._middleware_app.asgi_app, Bridge)
