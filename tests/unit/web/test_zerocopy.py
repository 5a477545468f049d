"""The zero-copy HTTP protocol: real uvicorn servers on real sockets.

The data plane's bytes must be identical whichever way they are sent; the
extension is offered only where the loop can ``sendfile``; the fallback
(plain ``http.response.body`` streaming) is what servers without it get.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.parse
import uuid

import pytest
import uvicorn

from server.web.accel import zerocopy
from server.web.accel.zerocopy import EXTENSION, ZeroCopyHttpToolsProtocol
from tests.conftest import free_port

BAM = "reads/htsnexus_test_NA12878.bam"


@contextlib.contextmanager
def serving(app, *, loop="asyncio"):
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop=loop,
        http=ZeroCopyHttpToolsProtocol,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(20)


def get(port, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


@pytest.mark.parametrize("loop, offered", [("asyncio", True), ("uvloop", False)])
def test_extension_is_offered_only_where_the_loop_can_sendfile(loop, offered):
    seen = []

    async def app(scope, receive, send):
        seen.append(EXTENSION in scope.get("extensions", {}))
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    with serving(app, loop=loop) as port:
        resp, body = get(port, "/")
    assert (resp.status, body, seen) == (200, b"ok", [offered])


def test_zerocopysend_sends_exactly_the_file_slice(tmp_path):
    data = bytes(range(256)) * 40_000  # 10 MB
    path = tmp_path / "blob"
    path.write_bytes(data)

    async def app(scope, receive, send):
        query = dict(urllib.parse.parse_qsl(scope["query_string"].decode()))
        offset, count = int(query["offset"]), int(query["count"])
        with open(path, "rb", buffering=0) as fh:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(count).encode())],
                }
            )
            half = count // 2  # two sends: more_body is honoured
            await send(
                {"type": EXTENSION, "file": fh, "offset": offset, "count": half, "more_body": True}
            )
            await send(
                {"type": EXTENSION, "file": fh, "offset": offset + half, "count": count - half}
            )

    with serving(app) as port:
        for offset, count in ((0, len(data)), (1, 1), (12345, 7_000_001), (len(data) - 3, 3)):
            resp, body = get(port, f"/?offset={offset}&count={count}")
            assert resp.status == 200 and body == data[offset : offset + count], (offset, count)
        # HEAD: headers only, the connection stays usable
        resp, body = get(port, "/?offset=0&count=10", method="HEAD")
        assert resp.status == 200 and body == b""


@pytest.fixture
def node(tmp_path, testdata):
    from server.registry import add_dataset, add_files
    from server.settings import Settings
    from server.web.app import create_app

    settings = Settings(
        var_dir=str(tmp_path / "var"),
        database_url=f"sqlite:///{tmp_path / 'g.db'}",
        signing_key="zc-" + uuid.uuid4().hex,
        log_format="text",
    )
    cx = create_app(settings)
    db = cx.app.extensions["genomeport"].db
    add_dataset(db, "pub", access="public")
    add_files(db, [testdata / BAM], "pub", object_id="na12878", progress=False)
    yield cx, settings
    db.dispose()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_data_plane_ranges_are_byte_exact_with_and_without_zerocopy(
    node, testdata, monkeypatch, loop
):
    cx, settings = node
    calls = []
    real = zerocopy.ZeroCopyCycle._sendfile

    async def counting(self, message):
        calls.append(message["count"])
        await real(self, message)

    monkeypatch.setattr(zerocopy.ZeroCopyCycle, "_sendfile", counting)
    data = (testdata / BAM).read_bytes()
    with serving(cx, loop=loop) as port:
        resp, body = get(port, "/reads/na12878")
        url = next(
            u["url"] for u in json.loads(body)["htsget"]["urls"] if u["url"].startswith("http")
        )
        path = url.split("://", 1)[1].split("/", 1)[1]
        for rng, want in (
            ("bytes=0-99", data[:100]),
            ("bytes=1000-", data[1000:]),
            ("bytes=-7", data[-7:]),
            ("bytes=5-5", data[5:6]),
        ):
            resp, body = get(port, "/" + path, {"Range": rng})
            assert resp.status == 206 and body == want, rng
            assert int(resp.getheader("content-length")) == len(want)
            assert resp.getheader("access-control-allow-origin") == "*"
        resp, body = get(port, "/" + path)
        assert resp.status == 200 and body == data
        resp, _ = get(port, "/" + path, {"Range": f"bytes={len(data)}-"})
        assert resp.status == 416 and resp.getheader("content-range") == f"bytes */{len(data)}"
        resp, body = get(port, "/" + path, {"Range": "bytes=0-9"}, method="HEAD")
        assert resp.status == 206 and body == b"" and resp.getheader("content-length") == "10"
    if loop == "asyncio":
        assert calls == [100, len(data) - 1000, 7, 1, len(data)]  # every body went through sendfile
    else:
        assert calls == []  # uvloop: the streaming fallback
