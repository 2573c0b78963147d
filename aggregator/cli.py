"""The `aggregator` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import __version__
from aggregator.amounts import canonical
from aggregator.config import Settings, config_path, load_config
from aggregator.errors import ConfigError, StorageError
from aggregator.logs import LOG_FORMATS, setup_logging
from aggregator.output import FORMATS, HOLDING_COLUMNS, render

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from aggregator.polling.service import PollService
    from aggregator.sources.base import AccountConfig
    from aggregator.valuation.rule import ValuationSettings

EX_CONFIG = 78  # sysexits.h: configuration error

POLL_COLUMNS = ("id", "account", "started_at", "finished_at", "status", "error_kind",
                "error_message", "attempt")
DAILY_COLUMNS = ("day", "account", "source", "asset", "kind", "total", "available", "locked")
HISTORY_COLUMNS = ("account", "source", "asset", "kind", "total", "available", "locked",
                   "valid_from", "valid_to")


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before and after the command; SUPPRESS keeps a later
    # default from overwriting an earlier value.
    config_opt = argparse.ArgumentParser(add_help=False)
    config_opt.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS,
        help="config file (default: $AGGREGATOR_CONFIG, else /etc/aggregator/config.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="aggregator", parents=[config_opt],
        description="Poll exchange and broker balances, keep their history in SQL.",
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="stderr log lines as text (default) or one JSON object each")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[config_opt], help="the daemon",
                              description="Poll every account on its schedule until SIGTERM "
                              "or SIGINT; speaks sd_notify under systemd.")
    run.add_argument("--duration", type=float, metavar="SECONDS",
                     help="stop by itself after this long (default: run until stopped)")

    poll = commands.add_parser("poll", parents=[config_opt], help="poll accounts once and store",
                               description="Poll every (or the named) account once and store "
                               "the results. Exit 1 if any poll failed.")
    poll.add_argument("--account", action="append", default=[], metavar="NAME",
                      help="only this account (repeatable)")

    holdings = commands.add_parser("holdings", parents=[config_opt],
                                   help="holdings as of a time",
                                   description="Holdings as of TIME, one row per account "
                                   "and asset.")
    holdings.add_argument("--at", type=parse_time, metavar="TIME",
                          help="ISO 8601 time (default: now)")
    holdings.add_argument("--account", action="append", default=[], metavar="NAME")
    holdings.add_argument("--format", choices=FORMATS, default="table")

    history = commands.add_parser("history", parents=[config_opt],
                                  help="how holdings changed over time",
                                  description="The periods in which each holding stayed the "
                                  "same.")
    history.add_argument("--account", required=True, metavar="NAME")
    history.add_argument("--asset", metavar="SYMBOL")
    history.add_argument("--since", type=parse_time, metavar="TIME")
    history.add_argument("--until", type=parse_time, metavar="TIME")
    history.add_argument("--daily", action="store_true",
                         help="one row per day (end of day in the configured timezone) "
                         "instead of one per change: for long ranges")
    history.add_argument("--format", choices=FORMATS, default="table")

    polls = commands.add_parser("polls", parents=[config_opt], help="the latest polls",
                                description="The latest polls, newest first, with their ids "
                                "for `aggregator raw`.")
    polls.add_argument("--account", metavar="NAME")
    polls.add_argument("--failed", action="store_true", help="only failed polls")
    polls.add_argument("--limit", type=int, default=20, metavar="N", help="default 20")
    polls.add_argument("--format", choices=FORMATS, default="table")

    raw = commands.add_parser("raw", parents=[config_opt],
                              help="the raw answers a poll received",
                              description="Print the answers of one poll byte for byte on "
                              "stdout; a header per answer on stderr.")
    raw.add_argument("poll_id", type=int, metavar="POLL_ID")

    report = commands.add_parser("report", parents=[config_opt], help="write a daily report",
                                 description="Write the HTML, CSV and text report of a day. "
                                 "Today gives a partial report up to now.")
    report.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the day (default: yesterday in the configured timezone)")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="folder for the files (default: report.directory)")
    report.add_argument("--mail", action="store_true",
                        help="also send it to the recipients in [report.smtp]")

    value = commands.add_parser("value", parents=[config_opt],
                                help="every holding valued in your currency",
                                description="Every holding as of TIME with its rate and value "
                                "in the currency of [valuation] (or --currency); an unknown "
                                "rate is shown as unknown, never as 0 or 1.")
    value.add_argument("--at", type=parse_time, metavar="TIME",
                       help="ISO 8601 time, UTC without a zone (default: now)")
    value.add_argument("--account", action="append", default=[], metavar="NAME")
    value.add_argument("--currency", metavar="C", type=str.upper)
    value.add_argument("--format", choices=FORMATS, default="table")

    worth = commands.add_parser("networth", parents=[config_opt],
                                help="the value at the end of each day",
                                description="The net worth at the end of each UTC day; a day "
                                "with no holding has no row.")
    worth.add_argument("--since", type=date.fromisoformat, metavar="DATE",
                       help="first day (default: the first day of the stored history)")
    worth.add_argument("--until", type=date.fromisoformat, metavar="DATE",
                       help="last day (default: yesterday)")
    worth.add_argument("--by", choices=("account", "asset"))
    worth.add_argument("--currency", metavar="C", type=str.upper)
    worth.add_argument("--format", choices=FORMATS, default="table")

    prices = commands.add_parser("prices", parents=[config_opt], help="fetch prices")
    price_commands = prices.add_subparsers(dest="prices_command", required=True,
                                           metavar="ACTION")
    fetch = price_commands.add_parser("fetch", parents=[config_opt],
                                      help="fetch live prices once and store them",
                                      description="Fetch live prices from every (or the named) "
                                      "[[prices]] source. Exit 1 if any failed.")
    fetch.add_argument("--name", action="append", default=[], metavar="NAME")
    backfill = price_commands.add_parser(
        "backfill", parents=[config_opt], help="store daily closes of past days",
        description="Store daily closes, from every source that has history, for every "
        "asset held on or after DATE and the pivots, with a few days of overlap; then "
        "value those days again.")
    backfill.add_argument("--since", type=date.fromisoformat, metavar="DATE",
                          help="default: the first day of the holdings history")

    db = commands.add_parser("db", parents=[config_opt], help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", parents=[config_opt],
                           help="apply the schema migrations (harmless to repeat)")

    commands.add_parser("check-config", parents=[config_opt],
                        help="validate the config and resolve every secret",
                        description="Validate the config and resolve every secret without "
                        "printing any. Exit 78 when it is bad.")

    demo = commands.add_parser("demo", parents=[config_opt],
                               help="run against built-in sandbox exchanges",
                               description="Start sandbox exchanges on loopback, write a demo "
                               "config and SQLite database, run the daemon against them, then "
                               "show holdings and what changed. Needs no credentials.")
    demo.add_argument("--dir", type=Path, default=Path("aggregator-demo"),
                      help="folder for the demo config and database (default: ./aggregator-demo)")
    demo.add_argument("--duration", type=float, default=10.0, metavar="SECONDS",
                      help="run the daemon this long, 0 = until Ctrl-C (default 10)")
    demo.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                      help="poll interval (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.log_format)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"aggregator: config: {line}", file=sys.stderr)
        return EX_CONFIG
    except StorageError as exc:
        print(f"aggregator: database: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"aggregator: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from aggregator.demo import run_demo

        return run_demo(args.dir, duration=args.duration or None, interval=args.interval)
    # Without an account, run, poll and check-config would have nothing to do.
    settings = load_config(config_path(getattr(args, "config", None)),
                           need_accounts=args.command in ("run", "poll", "check-config"))
    if args.command == "check-config":
        names = ", ".join(a.name for a in settings.accounts)
        print(f"{settings.path}: ok, {len(settings.accounts)} accounts ({names})")
        return 0
    if args.command == "run":
        from aggregator.scheduling.daemon import run_daemon

        return asyncio.run(run_daemon(settings, duration=args.duration))
    if args.command == "prices":
        return asyncio.run(_prices(settings, args))
    if args.command == "poll":
        # The per-poll log line would repeat what `poll` prints on stdout.
        # Lost polls (ERROR) are the one thing stdout cannot say.
        logging.getLogger("aggregator.poll").setLevel(logging.ERROR)
        return asyncio.run(_poll(settings, args.account))

    from aggregator.storage import database

    engine = database.open_database(settings.database_url)
    try:
        database.upgrade(engine)
        return _DATABASE_COMMANDS[args.command](args, settings, engine)
    finally:
        engine.dispose()


def _db(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.storage import database

    print(f"database schema at revision {database.current_revision(engine)}", file=sys.stderr)
    return 0


def _holdings(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.storage import queries

    rows = queries.holdings_at(engine, at=args.at, account_names=args.account)
    _print(render([dataclasses.asdict(r) for r in rows], HOLDING_COLUMNS, args.format))
    return 0


def _history(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.storage import queries

    if args.daily:
        zone = settings.timezone
        last = (args.until or datetime.now(UTC)).astimezone(zone).date()
        first = (args.since.astimezone(zone).date() if args.since
                 else last - timedelta(days=29))
        days = queries.daily(engine, args.account, first, last, zone, asset=args.asset)
        _print(render([dataclasses.asdict(d) for d in days], DAILY_COLUMNS, args.format))
        return 0
    intervals = queries.history(engine, args.account, asset=args.asset, since=args.since,
                                until=args.until)
    _print(render([dataclasses.asdict(r) for r in intervals], HISTORY_COLUMNS, args.format))
    return 0


def _report(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.reports.mail import MailError
    from aggregator.reports.nightly import write_day, yesterday

    if args.mail and settings.smtp is None:
        raise ConfigError([f"{settings.path}: report.smtp: --mail needs this table"])
    day = args.date or yesterday(settings.timezone)
    valuation = settings.valuation_settings()
    if valuation is not None:
        from aggregator.valuation.daily import store_days

        # valuations_daily stays current for the days the report speaks of (UTC days).
        store_days(engine, valuation, [day - timedelta(days=1), day])
    try:
        paths = write_day(engine, day, settings.timezone, args.out or settings.report_directory,
                          smtp=settings.smtp if args.mail else None, valuation=valuation)
    except MailError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _polls(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.storage import queries

    rows = queries.recent_polls(engine, args.account, args.limit, failed_only=args.failed)
    _print(render([dataclasses.asdict(r) for r in rows], POLL_COLUMNS, args.format))
    return 0


def _raw(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.storage import queries

    answers = queries.responses_of(engine, args.poll_id)
    if not answers:
        print(f"aggregator: poll {args.poll_id} has no stored answer", file=sys.stderr)
        return 1
    for answer in answers:
        print(f"# {answer.endpoint}: HTTP {answer.http_status}, "
              f"{answer.content_type or 'no content type'}, {len(answer.body)} bytes",
              file=sys.stderr, flush=True)
        sys.stdout.buffer.write(answer.body + b"\n")
        sys.stdout.flush()
    return 0


VALUE_COLUMNS = ("account", "source", "asset", "kind", "amount", "currency", "price",
                 "value", "price_source", "price_observed_at")
NETWORTH_COLUMNS = ("day", "currency", "value", "holdings", "unpriced")


def _valuation(settings: Settings, currency: str | None = None) -> ValuationSettings:
    found = settings.valuation_settings(currency)
    if found is None:
        raise ConfigError([f"{settings.path}: valuation: this command needs a [valuation] "
                           "table (its currency, and [[prices]] sources)"])
    return found


def _value(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.valuation.rule import exact_total
    from aggregator.valuation.value import value_at

    valuation = _valuation(settings, args.currency)
    rows = value_at(engine, valuation, args.at, args.account)
    _print(render([dataclasses.asdict(r) for r in rows], VALUE_COLUMNS, args.format))
    if args.format == "table":
        unpriced = sum(1 for r in rows if r.value is None)
        total = canonical(exact_total([r.value for r in rows]))
        _print(f"total {total} {valuation.currency}"
               + (f" ({unpriced} of {len(rows)} holdings unpriced, not counted)\n"
                  if unpriced else f" ({len(rows)} holdings)\n"))
    return 0


def _networth(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    from aggregator.storage import queries
    from aggregator.valuation.value import networth

    valuation = _valuation(settings, args.currency)
    last = args.until or datetime.now(UTC).date() - timedelta(days=1)
    first = args.since
    if first is None:
        began = queries.first_holding_at(engine)
        first = began.date() if began is not None else last + timedelta(days=1)
    days = networth(engine, valuation, first, last, args.by)
    columns = NETWORTH_COLUMNS if args.by is None else ("day", args.by, *NETWORTH_COLUMNS[1:])
    rows = []
    for day in days:
        row = dataclasses.asdict(day)
        group = row.pop("group")
        if args.by is not None:
            row[args.by] = group
        rows.append(row)
    _print(render(rows, columns, args.format))
    return 0


_DATABASE_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, Engine], int]] = {
    "value": _value,
    "networth": _networth,
    "db": _db,
    "holdings": _holdings,
    "history": _history,
    "polls": _polls,
    "raw": _raw,
    "report": _report,
}


async def _poll(settings: Settings, names: list[str]) -> int:
    from aggregator.polling.service import describe

    unknown = sorted(set(names) - {a.name for a in settings.accounts})
    if unknown:
        raise ConfigError([f"{settings.path}: no account named {n!r}" for n in unknown])
    async with _polls_once(settings, settings.accounts) as (service, _):
        outcomes = await service.poll_all(names)
    for outcome in outcomes:
        print(describe(outcome))
    # A poll not yet in the database is not done, though it is kept.
    return 0 if all(o.ok for o in outcomes) and not _waiting(service) else 1


@contextlib.asynccontextmanager
async def _polls_once(settings: Settings, accounts: Sequence[AccountConfig]
                      ) -> AsyncIterator[tuple[PollService, Engine]]:
    """The poll service of a one-off command, its writer and engine; on the way out,
    whatever waits (this run's records or an earlier run's) gets one deadline to land."""
    from aggregator.polling.service import PollService
    from aggregator.storage import database
    from aggregator.storage.writer import PollWriter

    writer_settings = settings.writer_settings()
    engine = database.open_database(settings.database_url, write_timeout=writer_settings.timeout)
    writer = PollWriter(engine, writer_settings)
    try:
        await writer.start()
        async with PollService(accounts, settings.poll_settings(), writer) as service:
            yield service, engine
        await writer.close(writer_settings.timeout + 5)
    finally:
        engine.dispose()


def _waiting(service: PollService) -> int:
    """How many records still wait for the database, said on stderr."""
    writer = service.writer
    waiting = writer.health().spooled
    if waiting:
        print(f"aggregator: database unavailable: {waiting} records wait in {writer.spool.path}; "
              "`aggregator run` or the next one-off command stores them", file=sys.stderr)
    return waiting


def _print(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def _prices(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.prices.backfill import backfill
    from aggregator.prices.service import PriceService, describe
    from aggregator.storage import queries

    valuation = _valuation(settings)
    unknown = sorted(set(getattr(args, "name", []) or []) - {p.name for p in settings.prices})
    if unknown:
        raise ConfigError([f"{settings.path}: no [[prices]] named {n!r}" for n in unknown])
    async with _polls_once(settings, ()) as (polls, engine):
        service = PriceService(settings.prices, valuation, polls)
        if args.prices_command == "fetch":
            try:
                held = queries.assets_held_since(engine, datetime.now(UTC))
            except StorageError:
                held = []  # the database is away: the configured assets are still asked
            outcomes = await service.fetch_all(args.name, assets=held)
        else:
            outcomes = await backfill(service, engine, args.since)
    for outcome in outcomes:
        print(describe(outcome))
    return 0 if all(o.ok for o in outcomes) and not _waiting(polls) else 1
