"""Debug logging never prints a credential: quiet libraries, then redaction of every line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from aggregator.logs import QUIET, setup_logging
from aggregator.model import Secret
from aggregator.polling.redact import Redactor

TOKEN = "tok-c4n4ry-5e7a1"


class Echo(BaseHTTPRequestHandler):
    """Answers with the request's Authorization header in a header of its own."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("X-Echo-Authorization", self.headers.get("Authorization", ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    setup_logging()


def echoed(url: str) -> str:
    answer = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    return answer.headers["X-Echo-Authorization"]


def test_verbose_is_debug_for_aggregator_only() -> None:
    setup_logging(verbose=True)
    assert logging.getLogger("aggregator.polling.redact").isEnabledFor(logging.DEBUG)
    for name in ("httpcore.http11", "httpx", "psycopg", "asyncio"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    setup_logging(verbose=False)
    assert not logging.getLogger("aggregator.polling.redact").isEnabledFor(logging.DEBUG)


def test_httpcore_stays_quiet_under_a_debug_root(
    echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(verbose=True)
    logging.getLogger().setLevel(logging.DEBUG)  # as an embedding program might
    assert echoed(echo_url) == f"Bearer {TOKEN}"
    assert "httpcore" in QUIET and TOKEN not in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_line_is_redacted(echo_url: str, capsys: pytest.CaptureFixture[str],
                                fmt: str) -> None:
    setup_logging(verbose=True, fmt=fmt)
    logging.getLogger("httpcore").setLevel(logging.DEBUG)  # a library that talks anyway
    echoed(echo_url)
    err = capsys.readouterr().err
    assert "X-Echo-Authorization" in err and TOKEN in err  # the check below can fail
    redactor = Redactor([Secret(TOKEN)])
    echoed(echo_url)
    logging.getLogger("aggregator.test").error("failed: %r", TOKEN.encode())
    err = capsys.readouterr().err
    assert "X-Echo-Authorization" in err and "failed: b'[redacted]'" in err
    assert TOKEN not in err
    del redactor
