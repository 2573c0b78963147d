"""Load and validate the TOML config; every problem is collected, then reported at once."""

from __future__ import annotations

import codecs
import dataclasses
import ipaddress
import math
import os
import re
import tomllib
import types
import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from aggregator.errors import ConfigError
from aggregator.model import Secret
from aggregator.polling.body import MAX_ANSWER_BYTES
from aggregator.polling.ratelimit import Rate, parse_rate
from aggregator.polling.service import PollSettings
from aggregator.prices.base import PriceConfig
from aggregator.prices.registry import PRICE_SOURCES
from aggregator.reports.mail import SECURITY, SmtpSettings
from aggregator.sources.base import AccountConfig, Duration
from aggregator.sources.registry import SOURCES
from aggregator.storage.database import describe as describe_database
from aggregator.storage.database import sqlite_file, url_problem
from aggregator.storage.spool import DEFAULT_MAX_BYTES
from aggregator.storage.spool import default_path as default_spool_path
from aggregator.storage.writer import WriterSettings
from aggregator.valuation.rule import (
    DEFAULT_DAILY_MAX_AGE,
    DEFAULT_MAX_AGE,
    DEFAULT_PIVOTS,
    ValuationSettings,
)

DEFAULT_PATH = Path("/etc/aggregator/config.toml")
DEFAULT_DATABASE_URL = "sqlite:////var/lib/aggregator/holdings.db"
DEFAULT_REPORT_DIR = Path("/var/lib/aggregator/reports")
MAX_CONFIG_BYTES = 2**20  # read no further: --config /dev/zero must not fill the memory
ACCOUNT_NAME = re.compile(r"[a-z0-9_-]+")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# What str.splitlines() breaks on: the line breaks a credential or a message must not hold.
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
MAX_DURATION = 100 * 365.25 * 86400


@dataclass(frozen=True)
class Settings:
    path: Path
    # Not in repr: a URL may carry the database password, and a repr reaches tracebacks.
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    interval: Duration = Duration(300.0)
    report_time: time = time(0, 5)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    report_directory: Path = DEFAULT_REPORT_DIR
    poll_deadline: Duration = Duration(60.0)
    max_answer_bytes: int = MAX_ANSWER_BYTES
    rate_limits: Mapping[str, Rate] = field(default_factory=dict)
    metrics_listen: str | None = None  # "127.0.0.1:9464"; off when None
    smtp: SmtpSettings | None = None  # mail the nightly report; off when None
    database_timeout: Duration = Duration(10.0)  # one database call, client side
    spool_path: Path | None = None  # None: spool.default_path for the database
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    valuation: ValuationOptions | None = None  # off without [valuation]
    prices: tuple[PriceConfig, ...] = ()  # [[prices]], in order of preference
    accounts: tuple[AccountConfig, ...] = ()

    def interval_of(self, account: AccountConfig) -> Duration:
        return account.interval or self.interval

    def poll_settings(self) -> PollSettings:
        return PollSettings(deadline=self.poll_deadline.seconds, rate_limits=self.rate_limits,
                            max_answer_bytes=self.max_answer_bytes)

    def valuation_settings(self, currency: str | None = None) -> ValuationSettings | None:
        """The value rule's settings; None without [valuation]."""
        if self.valuation is None:
            return None
        options = self.valuation
        return ValuationSettings(
            currency=currency or options.currency, sources=tuple(p.name for p in self.prices),
            pivots=options.pivots, max_age=timedelta(seconds=options.max_age.seconds),
            daily_max_age=timedelta(seconds=options.daily_max_age.seconds))

    def writer_settings(self) -> WriterSettings:
        path = self.spool_path or default_spool_path(
            describe_database(self.database_url), sqlite_file=sqlite_file(self.database_url))
        return WriterSettings(spool_path=path, timeout=self.database_timeout.seconds,
                              spool_max_bytes=self.spool_max_bytes)


@dataclass(frozen=True)
class ValuationOptions:
    """``[valuation]`` as written; ``Settings.valuation_settings()`` adds the sources."""

    currency: str
    pivots: tuple[str, ...] = DEFAULT_PIVOTS
    max_age: Duration = Duration(DEFAULT_MAX_AGE.total_seconds())
    daily_max_age: Duration = Duration(DEFAULT_DAILY_MAX_AGE.total_seconds())


def config_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """``--config``, else ``$AGGREGATOR_CONFIG``, else the system path."""
    if cli_value:
        return Path(cli_value)
    if environ.get("AGGREGATOR_CONFIG"):
        return Path(environ["AGGREGATOR_CONFIG"])
    return DEFAULT_PATH


def parse_duration(text: object) -> Duration:
    if not isinstance(text, str):
        raise ValueError('expected a duration such as "30s", "5m" or "1h"')
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f'{text!r} is not a duration such as "30s", "5m" or "1h"')
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds < 1:
        raise ValueError(f"{text!r} is shorter than 1s")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than 100 years")  # timers overflow far beyond
    return Duration(seconds)


_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB)")
_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def parse_size(text: object) -> int:
    """A size in bytes written "512KiB", "16MiB" or "1GiB"."""
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError('expected a size such as "16MiB" or "1GiB"')
    size = int(match[1]) * _SIZE_UNITS[match[2]]
    if size < 1024:
        raise ValueError(f"{text!r} is smaller than 1KiB")
    return size


class _Problems:
    """Collects one line per problem, each naming the file and where in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        # One problem, one line: a message from a library may hold a line break.
        self.lines.append(_LINE_BREAK.sub(" ", f"{self.path}: {where}: {message}"))


def load_config(
    path: Path, environ: Mapping[str, str] = os.environ, *, need_accounts: bool = False
) -> Settings:
    """Read, validate and resolve secrets; raise ConfigError listing every problem.

    ``need_accounts``: a file without any ``[[accounts]]`` is a problem too (``run``,
    ``poll`` and ``check-config``: there would be nothing to poll).
    """
    raw = _read_toml(path)
    if not raw:
        raise ConfigError([f"{path}: is empty: nothing is configured"])
    problems = _Problems(path)
    if need_accounts and raw.get("accounts", []) == []:
        problems.add("accounts", "no [[accounts]] table: nothing to poll")
    settings = _settings(raw, path, problems, environ)
    if problems.lines:
        raise ConfigError(problems.lines)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    def fail(message: str) -> ConfigError:
        return ConfigError([f"{path}: {message}"])

    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise fail("no such config file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a config file") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise fail(f"is larger than {MAX_CONFIG_BYTES // 2**20} MiB: not a config file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise fail("is UTF-16 text; save it as UTF-8")
    if b"\0" in data:
        raise fail("contains NUL bytes (a binary or UTF-16 file?); a config file is TOML "
                   "in UTF-8")
    try:
        # A UTF-8 byte order mark, as some editors write, is no reason to refuse the file.
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 text (byte {exc.start}); a config file is TOML in UTF-8") \
            from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib quotes at most one character of the file, never a whole value.
        raise fail(f"not valid TOML: {exc}") from None


def _table(raw: dict[str, Any], key: str, problems: _Problems) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.add(key, "must be a table")
        return {}
    return value


def _unknown(table: Mapping[str, Any], known: set[str], where: str, problems: _Problems) -> None:
    for key in sorted(set(table) - known):
        problems.add(f"{where}.{key}" if where else key, "unknown key")


def _settings(
    raw: dict[str, Any], path: Path, problems: _Problems, environ: Mapping[str, str]
) -> Settings:
    _unknown(raw, {"database", "schedule", "report", "poll", "rate_limits", "metrics",
                   "spool", "valuation", "prices", "accounts"}, "", problems)
    values: dict[str, Any] = {}

    database = _table(raw, "database", problems)
    _unknown(database, {"url", "timeout"}, "database", problems)
    if "url" in database:
        url = database["url"]
        if not isinstance(url, str) or not url:
            problems.add("database.url", "must be a non-empty string")
        elif (problem := url_problem(url)) is not None:
            problems.add("database.url", problem)
        else:
            values["database_url"] = url
    if "timeout" in database:
        _convert(lambda: parse_duration(database["timeout"]), "database.timeout",
                 "database_timeout", values, problems)

    spool = _table(raw, "spool", problems)
    _unknown(spool, {"path", "max_size"}, "spool", problems)
    if "path" in spool:
        if isinstance(spool["path"], str) and spool["path"]:
            values["spool_path"] = Path(spool["path"])
        else:
            problems.add("spool.path", "must be a non-empty string")
    if "max_size" in spool:
        _convert(lambda: parse_size(spool["max_size"]), "spool.max_size", "spool_max_bytes",
                 values, problems)

    schedule = _table(raw, "schedule", problems)
    _unknown(schedule, {"interval", "report_time", "timezone"}, "schedule", problems)
    if "interval" in schedule:
        _convert(lambda: parse_duration(schedule["interval"]), "schedule.interval",
                 "interval", values, problems)
    if "report_time" in schedule:
        _convert(lambda: _parse_clock(schedule["report_time"]), "schedule.report_time",
                 "report_time", values, problems)
    if "timezone" in schedule:
        _convert(lambda: _parse_zone(schedule["timezone"]), "schedule.timezone",
                 "timezone", values, problems)

    report = _table(raw, "report", problems)
    _unknown(report, {"directory", "smtp"}, "report", problems)
    if "smtp" in report:
        smtp = _smtp(report["smtp"], problems, environ)
        if smtp is not None:
            values["smtp"] = smtp
    if "directory" in report:
        if isinstance(report["directory"], str) and report["directory"]:
            values["report_directory"] = Path(report["directory"])
        else:
            problems.add("report.directory", "must be a non-empty string")

    poll = _table(raw, "poll", problems)
    _unknown(poll, {"deadline", "max_answer_size"}, "poll", problems)
    if "deadline" in poll:
        _convert(lambda: parse_duration(poll["deadline"]), "poll.deadline",
                 "poll_deadline", values, problems)
    if "max_answer_size" in poll:
        _convert(lambda: parse_size(poll["max_answer_size"]), "poll.max_answer_size",
                 "max_answer_bytes", values, problems)

    limits = _table(raw, "rate_limits", problems)
    rates: dict[str, Rate] = {}
    for source_name, text in limits.items():
        if source_name not in SOURCES:
            problems.add(f"rate_limits.{source_name}", "unknown source")
            continue
        try:
            rates[source_name] = parse_rate(text)
        except ValueError as exc:
            problems.add(f"rate_limits.{source_name}", str(exc))
    values["rate_limits"] = rates

    metrics = _table(raw, "metrics", problems)
    _unknown(metrics, {"listen"}, "metrics", problems)
    if "listen" in metrics:
        _convert(lambda: _parse_listen(metrics["listen"]), "metrics.listen", "metrics_listen",
                 values, problems)

    if "valuation" in raw:
        valuation = _valuation(_table(raw, "valuation", problems), problems)
        if valuation is not None:
            values["valuation"] = valuation
    prices_raw = raw.get("prices", [])
    if not isinstance(prices_raw, list):
        problems.add("prices", "must be an array of tables ([[prices]])")
        prices_raw = []
    prices: list[PriceConfig] = []
    for index, table in enumerate(prices_raw):
        price = _price_source(index, table, problems, environ)
        if price is None:
            continue
        if price.name in {p.name for p in prices}:
            problems.add(f"prices {price.name!r}", "name is used by another [[prices]] table")
        prices.append(price)
    values["prices"] = tuple(prices)

    accounts_raw = raw.get("accounts", [])
    if not isinstance(accounts_raw, list):
        problems.add("accounts", "must be an array of tables ([[accounts]])")
        accounts_raw = []
    accounts: list[AccountConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(accounts_raw):
        account = _account(index, table, problems, environ)
        if account is None:
            continue
        if account.name in seen:
            problems.add(f"account {account.name!r}", "name is used by another account")
        seen.add(account.name)
        accounts.append(account)
    return Settings(path=path, accounts=tuple(accounts), **values)


_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,19}")


def _valuation(table: dict[str, Any], problems: _Problems) -> ValuationOptions | None:
    _unknown(table, {"currency", "pivots", "max_age", "daily_max_age"}, "valuation", problems)
    found = len(problems.lines)
    currency = table.get("currency")
    if not isinstance(currency, str) or not _SYMBOL.fullmatch(currency):
        problems.add("valuation.currency", 'required, an upper-case symbol such as "TWD"')
    pivots = table.get("pivots", list(DEFAULT_PIVOTS))
    if not isinstance(pivots, list) or not all(isinstance(p, str) and _SYMBOL.fullmatch(p)
                                               for p in pivots):
        problems.add("valuation.pivots", 'expected a list of upper-case symbols, e.g. '
                     '["USDT", "USD"]')
    values: dict[str, Any] = {}
    for key in ("max_age", "daily_max_age"):
        if key in table:
            try:
                values[key] = parse_duration(table[key])
            except ValueError as exc:
                problems.add(f"valuation.{key}", str(exc))
    if len(problems.lines) > found or not isinstance(currency, str):
        return None
    return ValuationOptions(currency=currency, pivots=tuple(pivots), **values)


def _convert(
    parse: typing.Callable[[], Any], where: str, key: str, values: dict[str, Any],
    problems: _Problems,
) -> None:
    try:
        values[key] = parse()
    except ValueError as exc:
        problems.add(where, str(exc))


_SMTP_KEYS = {"host", "port", "security", "username", "password", "from", "to"}


def _smtp(table: object, problems: _Problems, environ: Mapping[str, str]) -> SmtpSettings | None:
    if not isinstance(table, dict):
        problems.add("report.smtp", "must be a table")
        return None
    _unknown(table, _SMTP_KEYS, "report.smtp", problems)
    found = len(problems.lines)
    for key in ("host", "from"):
        if not isinstance(table.get(key), str) or not table[key]:
            problems.add(f"report.smtp.{key}", "required, a non-empty string")
    to = table.get("to")
    if not isinstance(to, list) or not to or not all(isinstance(t, str) and t for t in to):
        problems.add("report.smtp.to", "required, a list of addresses")
    port = table.get("port", 587)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems.add("report.smtp.port", "must be a port number")
    security = table.get("security", "starttls")
    if security not in SECURITY:
        problems.add("report.smtp.security", f"must be one of {', '.join(SECURITY)}")
    password = None
    if "password" in table:
        try:
            password = resolve_secret(table["password"], environ)
        except ValueError as exc:
            problems.add("report.smtp.password", str(exc))
    username = table.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        problems.add("report.smtp.username", "must be a non-empty string")
    if len(problems.lines) > found:
        return None
    return SmtpSettings(host=table["host"], sender=table["from"], recipients=tuple(to or ()),
                        port=port, security=security, username=username, password=password)


def _parse_listen(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\[?[0-9A-Za-z.:-]+\]?:\d{1,5}", value):
        raise ValueError('expected "host:port", e.g. "127.0.0.1:9464"')
    if not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ValueError("the port must be between 1 and 65535")
    return value


def _parse_clock(value: object) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
        raise ValueError('expected "HH:MM"')
    return time.fromisoformat(value)


def _parse_zone(value: object) -> ZoneInfo:
    if not isinstance(value, str):
        raise ValueError("expected an IANA zone name such as \"Europe/Berlin\"")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None


def _account(
    index: int, table: object, problems: _Problems, environ: Mapping[str, str]
) -> AccountConfig | None:
    found = _plugin(index, table, problems, environ, SOURCES, "accounts", "account")
    return found if isinstance(found, AccountConfig) else None


def _price_source(
    index: int, table: object, problems: _Problems, environ: Mapping[str, str]
) -> PriceConfig | None:
    found = _plugin(index, table, problems, environ, PRICE_SOURCES, "prices", "prices")
    return found if isinstance(found, PriceConfig) else None


def _plugin(
    index: int, table: object, problems: _Problems, environ: Mapping[str, str],
    registry: Mapping[str, Any], section: str, label: str,
) -> Any:
    """One [[accounts]] or [[prices]] table, checked against its source's config type."""
    if not isinstance(table, dict):
        problems.add(f"{section}[{index}]", "must be a table")
        return None
    name = table.get("name")
    if not isinstance(name, str) or not ACCOUNT_NAME.fullmatch(name):
        problems.add(f"{section}[{index}].name", "required, made of [a-z0-9_-]")
        return None
    where = f"{label} {name!r}"
    source_name = table.get("source")
    source = registry.get(source_name) if isinstance(source_name, str) else None
    if source is None:
        problems.add(f"{where}: source",
                     f"unknown source {source_name!r}; known: {', '.join(sorted(registry))}")
        return None
    # A source that reads a local file (manual prices) has no URL.
    local = getattr(source, "read_local", None) is not None

    hints = typing.get_type_hints(source.config)
    fields = {f.name: f for f in dataclasses.fields(source.config)}
    for key in sorted(set(table) - set(fields) | ({"base_url"} & set(table) if local
                                                   else set())):
        problems.add(f"{where}: {key}", "unknown key")
    values: dict[str, Any] = {}
    ok = True
    for key, f in fields.items():
        if key not in table:
            if key == "base_url" and (source.default_base_url or local):
                values[key] = source.default_base_url or ""
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.add(f"{where}: {key}", "required")
                ok = False
            continue
        try:
            values[key] = _coerce(table[key], hints[key], environ)
        except ValueError as exc:
            problems.add(f"{where}: {key}", str(exc))
            ok = False
    if not ok:
        return None
    plugin = source.config(**values)
    url = [] if local else _url_problems(plugin)
    for key, message in [*url, *plugin.problems()]:
        problems.add(f"{where}: {key}", message)
    return plugin


def _url_problems(account: AccountConfig | PriceConfig) -> list[tuple[str, str]]:
    # The URL itself is never quoted: its userinfo or query may hold a credential.
    url = account.base_url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number or out of range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return [("base_url", "is not a valid URL (check the host and the port)")]
    if "@" in parts.netloc:
        return [("base_url", "must not contain user:password@; an account's credentials go in "
                 "its own keys")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [("base_url", "is not an http(s) URL such as https://api.example.com/v3")]
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        return [("base_url", "contains a space or a control character")]
    if parts.query or parts.fragment:
        return [("base_url", "must not have a query (?...) or a fragment (#...)")]
    if parts.scheme == "http" and not account.allow_insecure_http and not _loopback(parts.hostname):
        return [("base_url", "plain http to a non-loopback host; use https or set "
                 "allow_insecure_http = true")]
    return []


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(value: Any, hint: Any, environ: Mapping[str, str]) -> Any:
    """Check one TOML value against a config field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        (inner,) = options  # the config types use only `X | None`
        return _coerce(value, inner, environ)
    if hint is Secret:
        return resolve_secret(value, environ)
    if hint is Duration:
        return parse_duration(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("expected an integer")
        return value
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ValueError("expected a non-empty string")
        return value
    if origin is dict and typing.get_args(hint) == (str, str):
        if not isinstance(value, dict) or not value or not all(
                isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()):
            raise ValueError('expected a table of names to non-empty strings, e.g. '
                             '{ BTC = "bitcoin" }')
        return dict(value)
    if origin is list and typing.get_args(hint) == (str,):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a non-empty list of strings")
        return list(value)
    raise TypeError(f"config type {hint!r} is not supported")


def resolve_secret(value: object, environ: Mapping[str, str] = os.environ) -> Secret:
    """A literal string or ``{env=..}``, ``{file=..}``, ``{credential=..}``.

    A value with a control character is refused: it could not go into a header as it
    is, and the library's complaint would quote it.
    """
    text, what = _secret_text(value, environ)
    problem = _unsendable(text)
    if problem is not None:
        raise ValueError(f"{what}: {problem}" if what else problem)
    return Secret(text)


def _secret_text(value: object, environ: Mapping[str, str]) -> tuple[str, str]:
    """The secret's text, and where it came from ("" for a literal)."""
    if isinstance(value, str):
        if not value:
            raise ValueError("is empty")
        return value, ""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("expected a string or one of {env=...}, {file=...}, {credential=...}")
    ((kind, ref),) = value.items()
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"{kind} must name a non-empty string")
    if kind == "env":
        if not environ.get(ref):
            raise ValueError(f"environment variable {ref} is not set or empty")
        return environ[ref], f"environment variable {ref}"
    if kind == "file":
        return _read_secret_file(Path(ref), f"file {ref}"), f"file {ref}"
    if kind == "credential":
        directory = environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ValueError(f"credential {ref}: $CREDENTIALS_DIRECTORY is not set "
                             "(use LoadCredential= in the systemd unit)")
        if "/" in ref:
            raise ValueError(f"credential name {ref!r} must not contain '/'")
        what = f"credential {ref}"
        return _read_secret_file(Path(directory) / ref, what), what
    raise ValueError(f"unknown secret reference {kind!r}; use env, file or credential")


def _read_secret_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ValueError(f"{what}: is a directory") from None
    except OSError as exc:
        raise ValueError(f"{what}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what}: not UTF-8 text") from None
    text = text.rstrip("\r\n")
    if not text:
        raise ValueError(f"{what}: is empty")
    if _LINE_BREAK.search(text):
        raise ValueError(f"{what}: has more than one line (only a trailing line break "
                         "is stripped)")
    return text


def _unsendable(text: str) -> str | None:
    """Why a credential cannot be used as it is, or None. Never shows the value."""
    if _LINE_BREAK.search(text):
        return "contains a line break"
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            return "contains a control character"
        if category == "Cf":
            return "contains an invisible formatting character (such as a byte order mark)"
        if category == "Cs":
            return "is not valid Unicode text"  # undecodable bytes in an environment variable
    if not text.isascii():
        # Keys and tokens travel in HTTP headers, which carry ASCII only; exchanges issue
        # them in ASCII, so anything else is a copy-and-paste accident.
        return "contains a non-ASCII character"
    return None
