"""The report by mail, through a real SMTP conversation on loopback."""

from __future__ import annotations

import base64
import email
import socketserver
import threading
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from aggregator.model import Secret
from aggregator.reports.files import write_report
from aggregator.reports.mail import MailError, SmtpSettings, send_report
from aggregator.reports.model import Report

PASSWORD = "smtp-pa55-c4n4ry"


class Relay(socketserver.ThreadingTCPServer):
    """A minimal SMTP server: EHLO with AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Session)
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, str]] = []


class Session(socketserver.StreamRequestHandler):
    server: Relay

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 relay ready")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-relay")
                self.reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(command.split()[2]).decode().split("\0")
                self.server.logins.append((user, password))
                self.reply("235 ok" if password == PASSWORD else "535 bad credentials")
            elif verb == "MAIL":
                sender = command.split(":", 1)[1].strip("<> ")
                self.reply("250 ok")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip("<> "))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                self.server.messages.append((sender, recipients, data))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 unknown")


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def settings(relay: Relay, password: str = PASSWORD) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=relay.server_address[1], security="none",
                        sender="aggregator@example.com",
                        recipients=("me@example.com", "you@example.com"),
                        username="reports", password=Secret(password))


def test_report_is_mailed_with_attachments(relay: Relay, report: Report,
                                           tmp_path: Path) -> None:
    files = write_report(report, tmp_path)
    send_report(settings(relay), report, files)
    ((sender, recipients, data),) = relay.messages
    assert sender == "aggregator@example.com"
    assert recipients == ["me@example.com", "you@example.com"]
    assert relay.logins == [("reports", PASSWORD)]
    message: Message = email.message_from_bytes(data)
    assert str(report.day) in message["Subject"]
    parts = {part.get_filename(): part for part in message.walk() if part.get_filename()}
    assert set(parts) == {f"{report.day}.html", f"{report.day}.csv"}
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain"
                and not p.get_filename())
    text = body.get_payload(decode=True).decode().replace("\r\n", "\n")  # SMTP line ends
    assert text == (tmp_path / f"{report.day}.txt").read_text()


def test_refused_login_is_an_error_without_the_password(relay: Relay, report: Report,
                                                        tmp_path: Path) -> None:
    with pytest.raises(MailError) as caught:
        send_report(settings(relay, "wrong-c4n4ry"), report, write_report(report, tmp_path))
    assert "535" in str(caught.value) and "c4n4ry" not in str(caught.value)
    assert relay.messages == []
