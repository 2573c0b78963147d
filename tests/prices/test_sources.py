"""What each price source asks, the key it sends, its config checks, and the manual file."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator import errors
from aggregator.model import Secret
from aggregator.prices import bitopro, coingecko, manual, yahoo
from aggregator.prices.base import PriceConfig, PriceQuery, PriceRequest
from aggregator.prices.registry import PRICE_SOURCES
from aggregator.sources.base import Rate

QUERY = PriceQuery(("BTC", "ZPR", "AAPL", "USD", "TWD", "BRK-B"), ("TWD", "USDT"))
FIRST, LAST = date(2026, 11, 1), date(2026, 11, 3)
NOV_1, NOV_4 = 1793491200, 1793750400  # 00:00 UTC


def urls(requests: list[PriceRequest]) -> list[str]:
    return [str(r.request.url) for r in requests]


def sent_headers(auth: httpx.Auth, request: httpx.Request) -> httpx.Headers:
    return next(auth.auth_flow(request)).headers


def test_registry_lists_every_module_once() -> None:
    assert list(PRICE_SOURCES) == ["bitopro", "coingecko", "yahoo", "manual"]
    for name, source in PRICE_SOURCES.items():
        assert source.name == name and source.title
        assert issubclass(source.config, PriceConfig)
        assert source.rate_limit is None or isinstance(source.rate_limit, Rate)
        assert (source.history_requests is None) == (source.parse_history is None)
        assert (source.default_base_url is None) == (source.read_local is not None)


# bitopro

def test_bitopro_asks_every_pair_once_and_history_per_pair() -> None:
    config = bitopro.BitoProPrices(name="b", source="bitopro",
                                   base_url="https://api.bitopro.com/v3")
    assert urls(bitopro.live_requests(config, QUERY)) == ["https://api.bitopro.com/v3/tickers"]
    history = bitopro.history_requests(config, QUERY, FIRST, LAST)
    assert all(r.missing_ok and r.base and r.quote for r in history)
    pairs = [(r.base, r.quote) for r in history]
    assert ("TWD", "TWD") not in pairs and ("TWD", "USDT") in pairs
    assert not [p for p in pairs if p[0] == "BRK-B"]  # not a BitoPro symbol: not asked
    assert urls(history)[0] == ("https://api.bitopro.com/v3/trading-history/btc_twd"
                                f"?resolution=1d&from={NOV_1}&to={NOV_4}")


# coingecko

def gecko(**keys: Any) -> coingecko.CoinGeckoPrices:
    values: dict[str, Any] = {"base_url": "https://api.coingecko.com/api/v3",
                              "ids": {"ZPR": "zper", "ETH": "ethereum"}, **keys}
    return coingecko.CoinGeckoPrices(name="g", source="coingecko", **values)


def test_coingecko_asks_only_configured_assets_the_query_wants() -> None:
    (request,) = coingecko.live_requests(gecko(), QUERY)
    params = request.request.url.params
    assert params["ids"] == "zper"  # ETH is not held
    assert params["vs_currencies"] == "twd"  # default: the reference currency
    assert params["include_last_updated_at"] == "true" and params["precision"] == "full"
    (request,) = coingecko.live_requests(gecko(quotes=["TWD", "USD"]), QUERY)
    assert request.request.url.params["vs_currencies"] == "twd,usd"
    assert coingecko.live_requests(gecko(ids={"ETH": "ethereum"}), QUERY) == []


def test_coingecko_history_is_one_daily_range_per_asset_and_quote() -> None:
    history = coingecko.history_requests(gecko(quotes=["TWD", "USD"]), QUERY, FIRST, LAST)
    assert [(r.base, r.quote) for r in history] == [("ZPR", "TWD"), ("ZPR", "USD")]
    assert urls(history)[1] == (
        "https://api.coingecko.com/api/v3/coins/zper/market_chart/range?vs_currency=usd"
        f"&from={NOV_1}&to={NOV_4}&interval=daily&precision=full")


def test_coingecko_key_goes_in_the_header_of_its_host() -> None:
    key = "CG-demo-Key-1234"
    demo = gecko(api_key=Secret(key))
    (request,) = coingecko.live_requests(demo, QUERY)
    assert key not in str(request.request.url)  # never in a URL, which gets logged
    assert sent_headers(coingecko.make_auth(demo), request.request)["x-cg-demo-api-key"] == key
    pro = gecko(api_key=Secret(key), base_url="https://pro-api.coingecko.com/api/v3")
    (request,) = coingecko.live_requests(pro, QUERY)
    headers = sent_headers(coingecko.make_auth(pro), request.request)
    assert headers["x-cg-pro-api-key"] == key and "x-cg-demo-api-key" not in headers
    (request,) = coingecko.live_requests(gecko(), QUERY)
    headers = sent_headers(coingecko.make_auth(gecko()), request.request)
    assert not [h for h in headers if h.startswith("x-cg-")]
    assert demo.secrets() == [Secret(key)]  # redacted wherever an answer echoes it


def test_coingecko_config_problems() -> None:
    assert gecko().problems() == []
    problems = gecko(ids={"zpr": "Zper Token"}, quotes=["twd"]).problems()
    assert [k for k, _ in problems] == ["ids", "ids", "quotes"]


# yahoo

def test_yahoo_asks_each_configured_symbol_like_a_browser() -> None:
    config = yahoo.YahooPrices(name="y", source="yahoo", base_url="https://query1.finance.yahoo.com",
                               symbols={"USD": "TWD=X", "AAPL": "AAPL", "SPX": "^GSPC",
                                        "BRK-B": "BRK-B", "VOO": "VOO"})
    live = yahoo.live_requests(config, QUERY)
    assert urls(live) == [
        "https://query1.finance.yahoo.com/v8/finance/chart/TWD=X?range=5d&interval=1d",
        "https://query1.finance.yahoo.com/v8/finance/chart/AAPL?range=5d&interval=1d",
        "https://query1.finance.yahoo.com/v8/finance/chart/BRK-B?range=5d&interval=1d"]
    assert [r.base for r in live] == ["USD", "AAPL", "BRK-B"]
    assert "python-httpx" not in live[0].request.headers["user-agent"]
    history = yahoo.history_requests(config, QUERY, FIRST, LAST)
    params = history[0].request.url.params
    # A day either side: trading days are in the exchange's zone.
    assert int(params["period1"]) == NOV_1 - 86400 and int(params["period2"]) == NOV_4 + 86400
    assert params["interval"] == "1d"
    assert config.problems() == []
    bad = yahoo.YahooPrices(name="y", source="yahoo", base_url="https://x",
                            symbols={"usd": "TWD=X", "AAPL": "AAPL?x=1"})
    assert [k for k, _ in bad.problems()] == ["symbols", "symbols"]


# manual

def manual_config(path: Path) -> manual.ManualPrices:
    return manual.ManualPrices(name="m", source="manual", file=str(path))


def parse_file(config: manual.ManualPrices) -> list[Any]:
    (request,) = manual.file_request(config)
    return manual.parse_file(config, [(request, manual.read_file(config))],
                             datetime(2026, 11, 24, 8, tzinfo=UTC))


def test_manual_reads_the_file_at_every_fetch(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("base,quote,time,price\nZPR,TWD,2026-11-20,0.0013\n")
    config = manual_config(path)
    assert [str(o.price) for o in parse_file(config)] == ["0.0013"]
    path.write_text("base,quote,time,price\nZPR,TWD,2026-11-20,0.0013\nZPR,TWD,2026-11-21,0.0014\n")
    assert [str(o.price) for o in parse_file(config)] == ["0.0013", "0.0014"]
    answer = manual.read_file(config)
    assert answer.status == 200 and answer.endpoint == str(path)
    assert answer.body == path.read_bytes()


@pytest.mark.parametrize(("content", "kind", "text"), [
    (b"base,quote,time,price\nZPR,TWD,2026-11-20,0.0013\xff\n", "malformed", "not UTF-8"),
    (b"base,quote,time,price\nZPR,TWD,2026-11-20,0.00\x0013\n", "schema", "line 2: price"),
    (b"base,quote,time,price\nZPR,TWD,9999-12-31,1\n", "schema", "line 2: time"),
    (b"base,quote,time,price\nZPR,TWD,0001-01-01T00:00+01:00,1\n", "schema", "line 2: time"),
    (b'base,quote,time,price\nZPR,TWD,2026-11-20,"0.0013\n', "malformed", "not CSV"),
])
def test_manual_bad_files(tmp_path: Path, content: bytes, kind: str, text: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(content)
    with pytest.raises(errors.SourceError) as info:
        parse_file(manual_config(path))
    assert info.value.kind == kind and text in str(info.value), str(info.value)


def test_manual_file_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    with pytest.raises(errors.Unreachable, match="no such file"):
        manual.read_file(manual_config(tmp_path / "missing.csv"))
    with pytest.raises(errors.Unreachable, match="cannot be read"):
        manual.read_file(manual_config(tmp_path))  # a directory
    big = tmp_path / "big.csv"
    monkeypatch.setattr(manual, "MAX_FILE", 100)
    big.write_bytes(b"x" * 101)
    with pytest.raises(errors.AnswerTooLarge):
        manual.read_file(manual_config(big))
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.csv"
        locked.write_text("base,quote,time,price\n")
        locked.chmod(0)
        with pytest.raises(errors.PermissionDenied):
            manual.read_file(manual_config(locked))
