"""Notifier against real AF_UNIX datagram sockets, as systemd would listen."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.scheduling.notify import Notifier


def _receive_all(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on ``sock``, in arrival order."""
    messages: list[bytes] = []
    sock.settimeout(0.5)
    while True:
        try:
            messages.append(sock.recv(4096))
        except (TimeoutError, BlockingIOError):
            return messages
        sock.settimeout(0.05)


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield sock, str(path)
    finally:
        sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"aggregator-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        yield sock, "@" + name
    finally:
        sock.close()


def _exercise(notifier: Notifier) -> None:
    notifier.ready()
    notifier.ready(status="started")
    notifier.status("2 accounts ok\n1 failing")
    notifier.watchdog()
    notifier.stopping()
    notifier.stopping(status="shutting\r\ndown")


EXPECTED = [
    b"READY=1",
    b"READY=1\nSTATUS=started",
    b"STATUS=2 accounts ok 1 failing",
    b"WATCHDOG=1",
    b"STOPPING=1",
    b"STOPPING=1\nSTATUS=shutting down",
]


def test_messages_arrive_in_order_on_a_path_socket(
        path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "60000000"})
    assert notifier.enabled
    _exercise(notifier)
    notifier.close()
    assert _receive_all(sock) == EXPECTED


def test_messages_arrive_in_order_in_the_abstract_namespace(
        abstract_socket: tuple[socket.socket, str]) -> None:
    sock, address = abstract_socket
    with Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "60000000",
                   "WATCHDOG_PID": str(os.getpid())}) as notifier:
        assert notifier.enabled
        _exercise(notifier)
    assert _receive_all(sock) == EXPECTED


def test_usable_again_after_close(path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})
    notifier.status("one")
    notifier.close()
    notifier.close()
    notifier.status("two")
    notifier.close()
    assert _receive_all(sock) == [b"STATUS=one", b"STATUS=two"]


def test_disabled_without_notify_socket(path_socket: tuple[socket.socket, str]) -> None:
    sock, _ = path_socket
    notifier = Notifier({"WATCHDOG_USEC": "60000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    _exercise(notifier)
    notifier.close()
    assert _receive_all(sock) == []


def test_empty_notify_socket_is_disabled() -> None:
    assert not Notifier({"NOTIFY_SOCKET": ""}).enabled


def test_default_reads_os_environ(monkeypatch: pytest.MonkeyPatch,
                                  path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = Notifier()
    assert notifier.watchdog_interval() == 1.0
    notifier.ready()
    notifier.close()
    assert _receive_all(sock) == [b"READY=1"]


@pytest.mark.parametrize(("usec", "interval"), [
    ("60000000", 30.0),
    ("1000000", 0.5),
    ("3", 1.5e-6),
])
def test_watchdog_interval_is_half_of_watchdog_usec(usec: str, interval: float) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": usec})
    assert notifier.watchdog_interval() == pytest.approx(interval)


@pytest.mark.parametrize("usec", [None, "", "0", "-5", "soon"])
def test_no_watchdog_without_a_valid_watchdog_usec(usec: str | None) -> None:
    environ = {"NOTIFY_SOCKET": "@x"}
    if usec is not None:
        environ["WATCHDOG_USEC"] = usec
    assert Notifier(environ).watchdog_interval() is None


def test_watchdog_pid_of_ours_keeps_the_watchdog() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "10000000",
                         "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval() == 5.0


def test_watchdog_pid_mismatch_disables_the_watchdog(
        path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000",
                         "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.enabled  # the other notifications are still ours to send
    assert notifier.watchdog_interval() is None
    notifier.watchdog()
    notifier.ready()
    notifier.close()
    assert _receive_all(sock) == [b"READY=1"]


def test_send_errors_are_logged_once_and_never_raised(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert notifier.enabled
    with caplog.at_level(logging.DEBUG, logger="aggregator.scheduling.notify"):
        notifier.ready()
        notifier.status("still here")
        notifier.stopping()
    notifier.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "NOTIFY_SOCKET" in warnings[0].getMessage()


def test_unsupported_address_is_disabled(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aggregator.scheduling.notify"):
        notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    notifier.ready()  # no-op, no error
    assert len(caplog.records) == 1
