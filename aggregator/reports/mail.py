"""Send the daily report by SMTP: the text summary as the body, HTML and CSV attached."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aggregator.model import Secret
from aggregator.reports.model import Report
from aggregator.reports.text_report import render_text

SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    security: str = "starttls"  # "tls": implicit TLS (port 465); "none": loopback relays only
    username: str | None = None
    password: Secret | None = None
    timeout: float = 30.0


class MailError(Exception):
    """The report could not be sent; the message never holds the password."""


def build_message(settings: SmtpSettings, report: Report, files: list[Path]) -> EmailMessage:
    failing = len(report.failing)
    message = EmailMessage()
    message["Subject"] = (f"aggregator report {report.day}"
                          + (" (partial)" if report.partial else "")
                          + (f": {failing} account{'s' * (failing != 1)} failing"
                             if failing else ""))
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(render_text(report))
    for path in files:
        if path.suffix == ".html":
            message.add_attachment(path.read_bytes(), maintype="text", subtype="html",
                                   filename=path.name)
        elif path.suffix == ".csv":
            message.add_attachment(path.read_bytes(), maintype="text", subtype="csv",
                                   filename=path.name)
    return message


def send_report(settings: SmtpSettings, report: Report, files: list[Path]) -> None:
    message = build_message(settings, report, files)
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            if settings.security == "starttls":
                smtp.starttls(context=context)
            if settings.username and settings.password:
                smtp.login(settings.username, settings.password.reveal())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # SMTP errors quote the server's answer, never our AUTH line; be sure anyway.
        text = str(exc)
        if settings.password:
            text = text.replace(settings.password.reveal(), "[redacted]")
        raise MailError(f"sending the report to {settings.host}:{settings.port} failed: "
                        f"{type(exc).__name__}: {text}") from None
