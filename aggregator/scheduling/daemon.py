"""`aggregator run`: every account polled on its own schedule, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config import Settings
from aggregator.errors import StorageError
from aggregator.polling.poller import Account
from aggregator.polling.service import PollOutcome, PollService
from aggregator.prices.backfill import backfill
from aggregator.prices.service import PriceService
from aggregator.reports.mail import MailError
from aggregator.reports.nightly import missed_days, write_day
from aggregator.scheduling.notify import Notifier
from aggregator.storage import database, queries
from aggregator.storage.writer import Health, PollWriter
from aggregator.valuation.daily import store_days

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from aggregator.scheduling.metrics import Metrics

log = logging.getLogger("aggregator.daemon")

# In-flight polls get this long to finish after SIGTERM before they are cancelled; a
# cancelled poll writes nothing, a poll being written is finished by the writer thread.
SHUTDOWN_GRACE = 5.0
JITTER = 0.1  # of the interval, at most (CONTRACT.md)


def poll_deadline(settings: Settings, interval: float) -> float:
    """Retries must end before the next poll is due."""
    return max(1.0, min(settings.poll_deadline.seconds, 0.8 * interval))


class Daemon:
    def __init__(self, settings: Settings, service: PollService, notifier: Notifier,
                 engine: Engine, prices: PriceService | None = None) -> None:
        self.settings = settings
        self.service = service
        self.prices = prices
        self.notifier = notifier
        self.engine = engine
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.running: dict[str, asyncio.Task[PollOutcome | None]] = {}
        # The last poll of each account, and which of them failed: kept up to date per
        # poll, so the status line costs the same with 10 accounts or 10,000.
        self.last: dict[str, PollOutcome] = {}
        self.failing: set[str] = set()
        self.latest: PollOutcome | None = None
        self.stop = asyncio.Event()
        self.metrics: Metrics | None = None
        service.writer.on_change = self.health_changed
        self._database_was_up = True

    def schedule(self) -> None:
        now = datetime.now(UTC)
        for account in self.service.accounts.values():
            interval = self.settings.interval_of(account.config).seconds
            self.scheduler.add_job(
                self.launch, IntervalTrigger(seconds=interval, jitter=JITTER * interval),
                args=[account.name], id=account.name, name=account.name,
                # The first poll right away, spread a little so start-up is not one burst.
                next_run_time=now + timedelta(seconds=random.uniform(0, min(1.0, JITTER
                                                                           * interval))),
                coalesce=True, max_instances=1, misfire_grace_time=max(1, int(interval / 2)),
            )
        for feed in self.prices.feeds.values() if self.prices else ():
            interval = feed.config.interval.seconds
            self.scheduler.add_job(
                self.launch_prices, IntervalTrigger(seconds=interval, jitter=JITTER * interval),
                args=[feed.name], id=f"prices:{feed.name}", name=f"prices {feed.name}",
                # After the first polls: a live fetch asks for what is held (and the
                # pivots), which the first polls tell.
                next_run_time=now + timedelta(seconds=1.5 + random.uniform(0, 0.5)),
                coalesce=True, max_instances=1, misfire_grace_time=max(1, int(interval / 2)),
            )
        report_at = self.settings.report_time
        self.scheduler.add_job(
            self.write_reports, CronTrigger(hour=report_at.hour, minute=report_at.minute,
                                            timezone=self.settings.timezone),
            id="nightly-report", name="nightly report", coalesce=True, max_instances=1,
            misfire_grace_time=3600,
        )
        self.scheduler.start()

    async def launch_prices(self, name: str) -> None:
        """A price source's job: its live prices, fetched as our own task."""
        key = f"prices:{name}"
        if self.stop.is_set() or self.prices is None:
            return
        task = self.running.get(key)
        if task is not None and not task.done():
            log.warning("prices %s: previous fetch still running, this one skipped", name)
            return
        self.running[key] = asyncio.create_task(self.fetch_prices(name), name=key)

    async def fetch_prices(self, name: str) -> None:
        assert self.prices is not None
        feed = self.prices.feeds[name]
        try:
            held = await asyncio.to_thread(queries.assets_held_since, self.engine,
                                           datetime.now(UTC))
        except StorageError:
            held = []  # the database is away: the configured assets are still asked
        try:
            await self.prices.fetch(feed, assets=held, deadline=poll_deadline(
                self.settings, feed.config.interval.seconds))
        except Exception:
            log.exception("prices %s: fetch crashed", name)  # a bug: keep the daemon alive

    async def daily_closes(self) -> None:
        """Yesterday's closes (and a few days before, for corrections), then valued."""
        if self.prices is None:
            return
        try:
            await backfill(self.prices, self.engine,
                           since=datetime.now(UTC).date() - timedelta(days=1))
        except StorageError as exc:
            log.warning("the daily closes wait for the database: %s", exc)
        except Exception:
            log.exception("fetching the daily closes failed")

    async def catch_up(self, replayed_since: datetime | None) -> None:
        """After an outage: value again the days the replayed polls touched, then write
        the reports that waited."""
        if self.prices is not None and replayed_since is not None:
            yesterday = datetime.now(UTC).date() - timedelta(days=1)
            first = replayed_since.date()
            days = [first + timedelta(days=i) for i in range((yesterday - first).days + 1)]
            try:
                await asyncio.to_thread(store_days, self.engine, self.prices.valuation, days)
            except StorageError as exc:
                log.warning("valuing the replayed days failed: %s", exc)
        await self.write_reports()

    async def write_reports(self) -> None:
        """Every due report: yesterday's, and after downtime each missed day once."""
        settings = self.settings
        await self.daily_closes()
        try:
            days = await asyncio.to_thread(missed_days, self.engine,
                                           settings.report_directory, settings.timezone)
            valuation = settings.valuation_settings()
            if valuation is not None and days:
                await asyncio.to_thread(store_days, self.engine, valuation, days)
            for day in days:
                await asyncio.to_thread(write_day, self.engine, day,
                                        settings.timezone, settings.report_directory, None,
                                        settings.smtp, settings.valuation_settings())
                log.info("report for %s written to %s", day, settings.report_directory)
        except MailError as exc:
            log.error("%s", exc)  # the files are written; the next report mails again
        except StorageError as exc:
            # Written when the database is back (health_changed) or at the next report time.
            log.warning("the daily report waits for the database: %s", exc)
        except Exception:
            # A report failing (disk full, ...) must not stop the polling.
            log.exception("writing the daily report failed")

    async def launch(self, name: str) -> None:
        """The scheduler's job: start the poll as our own task and return at once."""
        if self.stop.is_set():
            return
        task = self.running.get(name)
        if task is not None and not task.done():
            log.warning("%s: previous poll still running, this one skipped", name)
            return
        account = self.service.accounts[name]
        self.running[name] = asyncio.create_task(self.poll(account), name=f"poll-{name}")

    async def poll(self, account: Account) -> PollOutcome | None:
        interval = self.settings.interval_of(account.config).seconds
        try:
            outcome = await self.service.poll(account, poll_deadline(self.settings, interval))
        except Exception:
            log.exception("%s: poll crashed", account.name)  # a bug: keep the daemon alive
            return None
        self.last[account.name] = outcome
        if outcome.ok:
            self.failing.discard(account.name)
        else:
            self.failing.add(account.name)
        if self.latest is None or outcome.final.finished_at >= self.latest.final.finished_at:
            self.latest = outcome
        if self.metrics is not None:
            self.metrics.record(outcome)
        self.notifier.status(self.summary())
        return outcome

    def summary(self) -> str:
        """The STATUS line: the database first when it is away, then the accounts."""
        failing = len(self.failing)
        text = (f"{len(self.service.accounts)} accounts: {len(self.last) - failing} ok, "
                f"{failing} failing")
        latest = self.latest
        if latest is not None:
            state = "ok" if latest.ok else f"failed [{latest.final.error_kind}]"
            at = latest.final.finished_at.strftime("%H:%M:%SZ")
            text += f"; last poll {latest.account} {state} at {at}"
        health = self.service.writer.health()
        if health.down_since is not None:
            since = health.down_since.strftime("%H:%MZ")
            text = (f"database unavailable since {since}, {health.spooled} polls spooled; "
                    + text)
        elif health.spooled:
            text = f"replaying {health.spooled} spooled polls; " + text
        return text

    def health_changed(self, health: Health) -> None:
        """The writer's state moved: say so at once, not only after the next poll."""
        if self.metrics is not None:
            self.metrics.storage(health)
        if health.database_up != self._database_was_up:
            self._database_was_up = health.database_up
            self.notifier.status(self.summary())
            if health.database_up and not self.stop.is_set():
                # Days valued before the replayed polls arrived, and reports that waited.
                since, self.service.writer.replayed_since = \
                    self.service.writer.replayed_since, None
                asyncio.get_running_loop().create_task(self.catch_up(since))

    async def watchdog(self, every: float) -> None:
        # Pinged from the event loop itself: a blocked loop stops the pings and systemd
        # restarts the daemon.
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(every)

    async def shutdown(self) -> None:
        self.notifier.stopping(f"stopping; {self.summary()}")
        self.scheduler.shutdown(wait=False)
        pending = [t for t in self.running.values() if not t.done()]
        if pending:
            log.info("waiting up to %gs for %d polls in flight", SHUTDOWN_GRACE, len(pending))
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.info("cancelled %d polls at the shutdown deadline; nothing of them "
                         "was written", len(late))


async def run_daemon(settings: Settings, duration: float | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``duration`` seconds); 0 after a clean stop.

    The database may be down at start-up: polls are spooled from the first one and
    replayed, schema upgrade first, once it answers.
    """
    notifier = Notifier()
    writer_settings = settings.writer_settings()
    # One engine with bounded waits for the writer and the reports alike.
    engine = database.open_database(settings.database_url, write_timeout=writer_settings.timeout)
    writer = PollWriter(engine, writer_settings)
    try:
        await writer.start()
        async with PollService(settings.accounts, settings.poll_settings(), writer) as service:
            valuation = settings.valuation_settings()
            prices = None if valuation is None else PriceService(settings.prices, valuation,
                                                                 service)
            daemon = Daemon(settings, service, notifier, engine, prices)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, daemon.stop.set)
            server = await _start_metrics(settings, daemon)
            daemon.schedule()
            reports = asyncio.create_task(daemon.write_reports())  # days missed while down
            watchdog = None
            every = notifier.watchdog_interval()
            if every:
                watchdog = asyncio.create_task(daemon.watchdog(every))
            notifier.ready(f"{len(service.accounts)} accounts scheduled")
            log.info("started: %d accounts, database %s", len(service.accounts),
                     database.describe(settings.database_url))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(daemon.stop.wait(), duration)
            await daemon.shutdown()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reports, SHUTDOWN_GRACE)
            if watchdog is not None:
                watchdog.cancel()
            if server is not None:
                server.close()
                await server.wait_closed()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    finally:
        await writer.close(SHUTDOWN_GRACE)
        engine.dispose()
        notifier.close()
    log.info("stopped")
    return 0


async def _start_metrics(settings: Settings, daemon: Daemon) -> asyncio.Server | None:
    if not settings.metrics_listen:
        return None
    from aggregator.scheduling.metrics import Metrics, serve_metrics

    metrics = Metrics({a.name: a.config.source for a in daemon.service.accounts.values()},
                      daemon.service.limits)
    metrics.storage(daemon.service.writer.health())
    daemon.metrics = metrics
    host, _, port = settings.metrics_listen.rpartition(":")
    return await serve_metrics(metrics, host.strip("[]"), int(port))
