"""The sandbox's price fakes against the real price sources: requests built by each
source, sent over loopback HTTP, answers parsed by its parser. What comes back must be
what the board was told to serve (computed here by hand), and each knob must show as
the error kind the real API's answer would give."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator import errors
from aggregator.config import load_config
from aggregator.model import RawResponse, Secret
from aggregator.prices.base import PriceConfig, PriceQuery
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.registry import PRICE_SOURCES
from aggregator.sandbox import Sandbox
from aggregator.sandbox.price_fakes import demo_prices, price_tables, write_manual_file

D = Decimal
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
QUERY = PriceQuery(("BTC", "ZPR", "AAPL", "USD"), ("TWD", "USD"))
LIVE, DAILY = PriceKind.LIVE, PriceKind.DAILY


def day(n: int) -> date:
    return date(2026, 11, n)


def end(n: int) -> datetime:
    return datetime(2026, 11, n, tzinfo=UTC) + timedelta(days=1)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        box.state.clock = NOW.timestamp
        board = box.prices
        board.set_price("bitopro", "BTC", "TWD", D("3052811.5"))
        board.set_closes("bitopro", "BTC", "TWD", {day(22): D("3011000"),
                                                   day(23): D("3049999.25")})
        board.coin_ids["ZPR"] = "zper"
        for quote, live in (("TWD", "0.0013258"), ("USD", "0.000041234")):
            board.set_price("coingecko", "ZPR", quote, D(live), at=NOW - timedelta(minutes=5))
        board.set_closes("coingecko", "ZPR", "TWD", {day(22): D("0.0012901"),
                                                     day(23): D("0.0013011")})
        board.set_price("yahoo", "AAPL", "USD", D("232.78"), at=NOW - timedelta(seconds=30))
        board.set_closes("yahoo", "AAPL", "USD", {day(20): D("227.63"), day(23): D("231.1")})
        board.list_on_yahoo("USD", "TWD=X", zone="Europe/London", opens=clock_time(0))
        board.set_price("yahoo", "USD", "TWD", D("31.765"), at=NOW - timedelta(seconds=60))
        board.set_closes("yahoo", "USD", "TWD", {day(20): D("31.70"), day(23): D("31.75")})
        yield box


def configs(sandbox: Sandbox, **keys: Any) -> dict[str, PriceConfig]:
    """Each source configured from ``price_tables``, as the TOML would give it."""
    found = {}
    for table in tomllib.loads(price_tables(sandbox))["prices"]:
        values = {**table, **keys.get(table["source"], {})}
        if isinstance(values.get("api_key"), str):
            values["api_key"] = Secret(values["api_key"])
        found[table["source"]] = PRICE_SOURCES[table["source"]].config(**values)
    return found


def fetch(config: PriceConfig, history: bool = False, query: PriceQuery = QUERY
          ) -> list[Observation]:
    source = PRICE_SOURCES[config.source]
    if history:
        assert source.history_requests is not None and source.parse_history is not None
        requests = source.history_requests(config, query, day(22), day(23))
    else:
        requests = source.live_requests(config, query)
    auth = source.auth(config) if source.auth is not None else httpx.Auth()
    answers = []
    with httpx.Client(timeout=5) as client:
        for asked in requests:
            answer = client.send(asked.request, auth=auth)
            url = str(asked.request.url.copy_with(query=None))
            retry = answer.headers.get("retry-after")
            answers.append((asked, RawResponse(url[len(config.base_url):], answer.status_code,
                                               answer.content, answer.headers.get("content-type"),
                                               None if retry is None else float(retry))))
    parse = source.parse_history if history else source.parse_live
    assert parse is not None
    return parse(config, answers, NOW)


def points(observations: list[Observation]) -> set[tuple[str, str, PriceKind, datetime, Decimal]]:
    return {(o.base, o.quote, o.kind, o.observed_at, o.price) for o in observations}


def test_each_fake_serves_what_the_board_says(sandbox: Sandbox) -> None:
    c = configs(sandbox)
    assert points(fetch(c["bitopro"])) == {("BTC", "TWD", LIVE, NOW, D("3052811.5"))}
    # The bar of today is running: not a close.
    assert points(fetch(c["bitopro"], history=True)) == {
        ("BTC", "TWD", DAILY, end(22), D("3011000")),
        ("BTC", "TWD", DAILY, end(23), D("3049999.25"))}

    five = NOW - timedelta(minutes=5)
    assert points(fetch(c["coingecko"])) == {("ZPR", "TWD", LIVE, five, D("0.0013258")),
                                             ("ZPR", "USD", LIVE, five, D("0.000041234"))}
    assert points(fetch(c["coingecko"], history=True)) == {
        ("ZPR", "TWD", DAILY, end(22), D("0.0012901")),
        ("ZPR", "TWD", DAILY, end(23), D("0.0013011"))}

    assert points(fetch(c["yahoo"])) == {
        ("AAPL", "USD", LIVE, NOW - timedelta(seconds=30), D("232.78")),
        ("AAPL", "USD", DAILY, end(20), D("227.63")),
        ("AAPL", "USD", DAILY, end(23), D("231.1")),
        ("USD", "TWD", LIVE, NOW - timedelta(seconds=60), D("31.765")),
        ("USD", "TWD", DAILY, end(20), D("31.7")),
        ("USD", "TWD", DAILY, end(23), D("31.75"))}


def test_coingecko_writes_small_prices_with_an_exponent(sandbox: Sandbox) -> None:
    url = sandbox.price_base_url("coingecko") + "/simple/price"
    body = httpx.get(url, params={"ids": "zper", "vs_currencies": "usd"}).text
    assert body == '{"zper":{"usd":4.1234e-05}}'


def test_pence_listing(sandbox: Sandbox) -> None:
    sandbox.prices.list_on_yahoo("VOD", "VOD.L", zone="Europe/London", opens=clock_time(8),
                                 minor=True)
    sandbox.prices.set_price("yahoo", "VOD", "GBP", D("0.7256"), at=NOW)
    config = configs(sandbox)["yahoo"]
    answer = httpx.get(sandbox.price_base_url("yahoo") + "/v8/finance/chart/VOD.L",
                       params={"range": "5d", "interval": "1d"},
                       headers={"User-Agent": "Mozilla/5.0"}).json()
    assert answer["chart"]["result"][0]["meta"]["currency"] == "GBp"
    assert points(fetch(config, query=PriceQuery(("VOD",), ("GBP",)))) == {
        ("VOD", "GBP", LIVE, NOW, D("0.7256"))}


@pytest.mark.parametrize("source", ["bitopro", "coingecko", "yahoo"])
def test_faults_are_the_apis_own_answers(sandbox: Sandbox, source: str) -> None:
    config = configs(sandbox)[source]
    board = sandbox.prices
    board.set_fault(source, "rate_limited", count=1, retry_after=7)
    with pytest.raises(errors.RateLimited) as info:
        fetch(config)
    assert info.value.retry_after == 7
    assert fetch(config)  # the fault was for one request
    board.set_fault(source, "server_error", count=1)
    with pytest.raises(errors.ServerError):
        fetch(config)
    board.set_fault(source, "malformed", count=1)
    with pytest.raises(errors.Malformed):
        fetch(config)
    board.set_fault(source, "malformed")
    board.set_fault(source, None)
    assert fetch(config)


def test_unknown_names_fail_the_fetch_but_a_pair_bitopro_lacks_is_no_data(
        sandbox: Sandbox) -> None:
    c = configs(sandbox, coingecko={"ids": {"ZPR": "zper", "BTC": "bitcoin"}},
                yahoo={"symbols": {"AAPL": "AAPL", "BTC": "NOPE"}})
    with pytest.raises(errors.ApiError, match="'bitcoin'"):
        fetch(c["coingecko"])
    with pytest.raises(errors.ApiError, match="coin not found"):
        fetch(c["coingecko"], history=True)
    with pytest.raises(errors.ApiError, match="No data found"):
        fetch(c["yahoo"])
    # BitoPro lists no zpr_twd, aapl_usd, ...: those are asked and are no data.
    assert {o.base for o in fetch(c["bitopro"], history=True)} == {"BTC"}
    sandbox.prices.remove("coingecko", "ZPR", "USD")
    assert {o.quote for o in fetch(configs(sandbox)["coingecko"])} == {"TWD"}


def test_coingecko_checks_its_key(sandbox: Sandbox) -> None:
    sandbox.prices.coingecko_key = "CG-right-key"
    tables = configs(sandbox)
    assert tables["coingecko"].secrets() == [Secret("CG-right-key")]  # price_tables passes it
    assert fetch(tables["coingecko"])
    for wrong in ({}, {"api_key": "CG-wrong"}):
        config = configs(sandbox, coingecko={"api_key": None, **wrong})["coingecko"]
        with pytest.raises(errors.BadCredentials):
            fetch(config)
    # A pro key must go to the pro host: the demo host refuses the pro header.
    url = sandbox.price_base_url("coingecko") + "/simple/price?ids=zper&vs_currencies=twd"
    answer = httpx.get(url, headers={"x-cg-pro-api-key": "CG-right-key"})
    assert answer.status_code == 400 and "pro-api.coingecko.com" in answer.text
    assert sandbox.count("/coingecko/") == 4


def test_coingecko_rate_limit_per_minute(sandbox: Sandbox) -> None:
    sandbox.prices.coingecko_per_minute = 2
    config = configs(sandbox)["coingecko"]
    fetch(config)
    fetch(config)
    with pytest.raises(errors.RateLimited, match="exceeded the Rate Limit") as info:
        fetch(config)
    assert info.value.retry_after == 60


def test_yahoo_refuses_clients_that_are_not_browsers(sandbox: Sandbox) -> None:
    url = sandbox.price_base_url("yahoo") + "/v8/finance/chart/AAPL?range=5d&interval=1d"
    assert httpx.get(url).status_code == 429  # python-httpx's own User-Agent
    assert fetch(configs(sandbox)["yahoo"])  # the source says it is a browser


def test_manual_file_round_trip(sandbox: Sandbox, tmp_path: Path) -> None:
    board = sandbox.prices
    board.set_price("manual", "GOLD", "TWD", D("2712.5"), at=NOW - timedelta(hours=1))
    board.set_closes("manual", "GOLD", "TWD", {day(23): D("2700")})
    path = write_manual_file(board, tmp_path / "prices.csv")
    assert path.read_text() == ("base,quote,time,price\nGOLD,TWD,2026-11-23,2700\n"
                                "GOLD,TWD,2026-11-24T14:00:00Z,2712.5\n")
    tables = tomllib.loads(price_tables(sandbox, [], manual_file=path))["prices"]
    config = PRICE_SOURCES["manual"].config(**tables[0])
    source = PRICE_SOURCES["manual"]
    assert source.read_local is not None
    answers = [(request, source.read_local(config))
               for request in source.live_requests(config, QUERY)]
    assert points(source.parse_live(config, answers, NOW)) == {
        ("GOLD", "TWD", DAILY, end(23), D("2700")),
        ("GOLD", "TWD", LIVE, NOW - timedelta(hours=1), D("2712.5"))}


def test_price_tables_load_through_the_config(sandbox: Sandbox, tmp_path: Path) -> None:
    demo_prices(sandbox.prices)
    sandbox.prices.coingecko_key = "CG-demo-key"
    manual = write_manual_file(sandbox.prices, tmp_path / "prices.csv")
    path = tmp_path / "config.toml"
    path.write_text(f"[database]\nurl = 'sqlite:///{tmp_path}/db.sqlite'\n\n"
                    "[valuation]\ncurrency = 'TWD'\n\n"
                    + price_tables(sandbox, manual_file=manual, interval="2s"))
    settings = load_config(path, environ={})
    assert [p.name for p in settings.prices] == ["bitopro", "coingecko", "yahoo", "manual"]
    by_name = {p.name: p for p in settings.prices}
    gecko, yahoo = by_name["coingecko"], by_name["yahoo"]
    assert getattr(gecko, "ids") == {"USDT": "tether", "ZPR": "zper"}  # noqa: B009
    assert getattr(gecko, "api_key") == Secret("CG-demo-key")  # noqa: B009
    assert getattr(yahoo, "symbols")["USD"] == "TWD=X"  # noqa: B009
    assert all(p.interval.seconds == 2 for p in settings.prices)


def test_demo_prices_value_every_demo_asset_in_twd(sandbox: Sandbox) -> None:
    """Each asset the demo accounts hold (and ZPR) has a live rate to TWD, directly or
    through USD or USDT, and closes of the days before for backfill and the report."""
    from aggregator.sandbox import demo_accounts

    demo_prices(sandbox.prices)
    c = configs(sandbox)
    held = {a.upper() for account in demo_accounts() for a in account.balances}
    query = PriceQuery(tuple(sorted(held | {"USD", "ZPR"})), ("TWD", "USDT", "USD"))
    live = {(o.base, o.quote) for name in ("bitopro", "coingecko", "yahoo")
            for o in fetch(c[name], query=query) if o.kind == LIVE}
    for asset in query.assets:
        if asset != "TWD":
            assert (asset, "TWD") in live or any(
                (asset, p) in live and (p, "TWD") in live for p in ("USD", "USDT")), asset
    daily = {(o.base, o.quote) for name in ("bitopro", "coingecko", "yahoo")
             for o in fetch(c[name], history=True, query=query)}
    assert daily == live


@pytest.mark.parametrize("source", ["bitopro", "coingecko", "yahoo", "manual"])
async def test_through_the_fetch_machinery(sandbox: Sandbox, tmp_path: Path,
                                           source: str) -> None:
    """The poller's machinery (auth, bounded reads, a missing pair passed over, the local
    file) gets from each fake what the parsers alone got."""
    from aggregator.prices.fetch import fetch_once, prepare_feed

    sandbox.prices.coingecko_key = "CG-machinery"
    sandbox.prices.set_closes("manual", "GOLD", "TWD", {day(23): D("2700")})
    manual = write_manual_file(sandbox.prices, tmp_path / "prices.csv")
    tables = tomllib.loads(price_tables(sandbox, manual_file=manual))["prices"]
    (table,) = [t for t in tables if t["source"] == source]
    if "api_key" in table:
        table["api_key"] = Secret(table["api_key"])
    config = PRICE_SOURCES[source].config(**table)
    feed = prepare_feed(config)
    async with httpx.AsyncClient() as client:
        for kind in (LIVE, DAILY):
            record = await fetch_once(client, feed, kind, QUERY, (day(22), day(23)),
                                      clock=lambda: NOW)
            assert record.error_kind is None, record.error_message
            direct = fetch(config, history=kind == DAILY) if source != "manual" else None
            assert record.observations
            if direct is not None:
                assert points(list(record.observations)) == points(direct)
            assert b"CG-machinery" not in b"".join(r.body for r in record.responses)
