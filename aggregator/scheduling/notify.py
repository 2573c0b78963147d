"""systemd's notification protocol (sd_notify) spoken directly with the standard library.

systemd passes ``$NOTIFY_SOCKET``: the address of an ``AF_UNIX`` datagram socket, either a
filesystem path or, when it starts with ``@``, a name in the Linux abstract namespace.
Each datagram is newline-separated ``KEY=VALUE`` assignments (``READY=1``,
``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``). ``$WATCHDOG_USEC`` asks for a
``WATCHDOG=1`` ping at least that often; ``$WATCHDOG_PID``, when set, names the process
the watchdog is meant for.

Without ``$NOTIFY_SOCKET`` (not started by systemd, or not ``Type=notify``) every method
is a no-op. Sending never raises into the daemon: the first failure is logged at
WARNING, later ones at DEBUG, so a vanished socket cannot flood the journal.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

__all__ = ["Notifier"]

_SEND_TIMEOUT = 1.0  # seconds


def _address(value: str) -> str | bytes | None:
    """The ``sendto`` address for ``$NOTIFY_SOCKET``, or None when it is unusable."""
    if value.startswith("@"):
        # Abstract namespace: a leading NUL instead of the '@'.
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    # systemd also knows vsock addresses ("vsock:CID:PORT"); a daemon of ours is never
    # handed one, so treat anything else as "no notification socket".
    return None


def _one_line(text: str) -> str:
    """STATUS is a single line: a newline would start a new (bogus) assignment."""
    return " ".join(text.splitlines())


class Notifier:
    """Sends state changes and watchdog pings to systemd, if systemd is listening."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        raw = environ.get("NOTIFY_SOCKET", "")
        self._address = _address(raw) if raw else None
        if raw and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket address; not notifying systemd",
                        raw)
        self._socket: socket.socket | None = None
        self._warned = False
        self._watchdog_usec = self._read_watchdog(environ) if self._address is not None else None

    @staticmethod
    def _read_watchdog(environ: Mapping[str, str]) -> int | None:
        usec_text = environ.get("WATCHDOG_USEC", "")
        if not usec_text:
            return None
        try:
            usec = int(usec_text)
        except ValueError:
            log.warning("WATCHDOG_USEC=%r is not a number; no watchdog pings", usec_text)
            return None
        if usec <= 0:
            return None
        pid_text = environ.get("WATCHDOG_PID", "")
        if pid_text:
            try:
                pid = int(pid_text)
            except ValueError:
                return None
            if pid != os.getpid():
                # The watchdog belongs to another process (e.g. our parent).
                return None
        return usec

    @property
    def enabled(self) -> bool:
        """Whether there is a notification socket to talk to."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the timeout), None without a watchdog."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self, status: str | None = None) -> None:
        """Start-up is complete."""
        self._send("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        """A one-line summary shown by ``systemctl status``."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Still alive. Only sent when the watchdog is ours."""
        if self._watchdog_usec is not None:
            self._send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        """Shutdown has begun."""
        self._send("STOPPING=1" if status is None else f"STOPPING=1\nSTATUS={_one_line(status)}")

    def close(self) -> None:
        """Closes the socket; later messages open a new one."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._socket is None:
                # Not inherited by children (PEP 446). A bounded timeout: a datagram to a
                # full receive queue blocks, and this runs on the event loop.
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.settimeout(_SEND_TIMEOUT)
            self._socket.sendto(message.encode(), self._address)
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "cannot notify systemd at NOTIFY_SOCKET: %s", exc)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
