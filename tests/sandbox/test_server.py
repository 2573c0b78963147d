from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx

from aggregator.sandbox import Sandbox
from tests.sandbox.conftest import fresh_accounts
from tests.sandbox.signers import bitz_form


def test_unknown_path_404_json(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.get(sandbox.url + "/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"
    assert client.get(sandbox.base_url("bitopro") + "/orders").status_code == 404


def test_base_urls(sandbox: Sandbox) -> None:
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert sandbox.base_url("bitopro") == sandbox.url + "/bitopro/v3"
    assert sandbox.base_url("bitz") == sandbox.url + "/bitz"
    assert sandbox.base_url("bitzoom") == sandbox.url + "/bitzoom"
    assert sandbox.base_url("pitrade") == sandbox.url + "/pitrade/api"


def test_keep_alive_reuses_one_connection(sandbox: Sandbox) -> None:
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            headers, _, rest = head.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(rest) < length:
                rest += sock.recv(4096)
            assert headers.startswith(b"HTTP/1.1 404")
            assert len(rest) == length


def test_request_log_and_count(sandbox: Sandbox, client: httpx.Client) -> None:
    form = bitz_form("bz-key", "bz-secret")
    client.post(sandbox.base_url("bitz") + "/Assets/getUserAssets", data=form)
    client.get(sandbox.url + "/bitzoom/api/servermanage/testtoken?userid=user-42")
    assert sandbox.count("getUserAssets") == 1
    assert sandbox.count("getUserAssets", "bz") == 1
    assert sandbox.count("getUserAssets", "bp") == 0
    assert sandbox.count("testtoken", "zb") == 1
    entry = sandbox.requests[0]
    assert entry.status == 200 and entry.outcome == "ok"
    # The query may carry a credential: never logged.
    assert all("?" not in r.path for r in sandbox.requests)


def test_fifty_concurrent_requests_while_one_hangs() -> None:
    with Sandbox(fresh_accounts(), latency=0.2) as sandbox:
        sandbox.set_fault("bz", "hang")
        url = sandbox.url + "/bitzoom/api/servermanage/testtoken?userid=user-42"
        with httpx.Client(timeout=0.5) as hanging:
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=51)
            stuck = pool.submit(
                hanging.post,
                sandbox.base_url("bitz") + "/Assets/getUserAssets",
                data=bitz_form("bz-key", "bz-secret"),
            )
            time.sleep(0.05)
            started = time.monotonic()
            limits = httpx.Limits(max_connections=60)
            with httpx.Client(timeout=5, limits=limits) as client:
                answers = list(pool.map(lambda _: client.get(url).status_code, range(50)))
            elapsed = time.monotonic() - started
            pool.shutdown(wait=False)
            assert answers == [200] * 50
            # 50 answers with 0.2 s latency each, in parallel: well under serial 10 s.
            assert elapsed < 2.0
            try:
                stuck.result(timeout=2)
            except httpx.ReadTimeout:
                pass
            else:
                raise AssertionError("the hung request was answered")


def test_latency_is_applied() -> None:
    with Sandbox(fresh_accounts(), latency=0.15) as sandbox, httpx.Client() as client:
        started = time.monotonic()
        client.get(sandbox.url + "/nowhere")
        assert time.monotonic() - started >= 0.15
