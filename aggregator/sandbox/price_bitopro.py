"""BitoPro v3's public prices: GET /tickers, /tickers/{pair}, /trading-history/{pair}.

Served under the balance fake's own base URL (``/bitopro/v3``), as the real API serves
both. Prices are strings with 8 decimals, like BitoPro's; the answer to ``/tickers``
carries no time. Daily bars start at 00:00 UTC (milliseconds); the bar of today, while
there is a live price, is the price so far, as on the real exchange. A pair the board
does not have answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from aggregator.sandbox.accounts import plain
from aggregator.sandbox.price_board import PriceBoard, Series, fault_reply
from aggregator.sandbox.wire import Reply, Request, json_reply

PREFIX = "/bitopro/v3"
ROUTES = (PREFIX + "/tickers", PREFIX + "/trading-history")
RESOLUTIONS = ("1m", "5m", "15m", "30m", "1h", "3h", "4h", "6h", "12h", "1d", "1w", "1M")


def text(price: Decimal) -> str:
    """Eight decimals as BitoPro writes them, more only when the price has more."""
    exponent = price.as_tuple().exponent
    return f"{price:.8f}" if isinstance(exponent, int) and exponent >= -8 else plain(price)


def pair_of(asset: str, quote: str) -> str:
    return f"{asset.lower()}_{quote.lower()}"


def _error(status: int, message: str, outcome: str) -> Reply:
    return json_reply(status, {"error": message}, outcome=outcome)


def ticker(pair: str, series: Series) -> dict[str, object]:
    assert series.live is not None
    closes = [series.closes[d] for d in sorted(series.closes)]
    before = closes[-1] if closes else series.live
    change = ((series.live - before) / before * 100).quantize(Decimal("0.01")) if before else 0
    return {"pair": pair, "lastPrice": text(series.live), "isBuyer": False,
            "priceChange24hr": str(change), "volume24hr": "12.34567890",
            "high24hr": text(max(series.live, before)), "low24hr": text(min(series.live, before))}


def handle(board: PriceBoard, request: Request) -> Reply:
    if request.method != "GET":
        return _error(405, "Method Not Allowed", "bad_method")
    fault = board.take_fault("bitopro")
    if fault is not None:
        return fault_reply("bitopro", fault, _error(429, "Too Many Requests", ""),
                           _error(500, "Internal Server Error", ""))
    pairs = {pair_of(a, q): s for (a, q), s in board.of("bitopro").items()}
    path = request.path[len(PREFIX):]
    if path == "/tickers":
        return json_reply(200, {"data": [ticker(p, s) for p, s in sorted(pairs.items())
                                         if s.live is not None]})
    if path.startswith("/tickers/"):
        series = pairs.get(path[len("/tickers/"):])
        if series is None or series.live is None:
            return _error(404, "Unsupported pair.", "unknown_pair")
        return json_reply(200, {"data": ticker(path[len("/tickers/"):], series)})
    if path.startswith("/trading-history/"):
        return _history(board, pairs.get(path[len("/trading-history/"):]), request)
    return _error(404, "Resource Not Found", "not_found")


def _history(board: PriceBoard, series: Series | None, request: Request) -> Reply:
    params = dict(request.query_params())
    if params.get("resolution") not in RESOLUTIONS:
        return _error(400, "Wrong parameter: resolution", "bad_param")
    bounds = []
    for key in ("from", "to"):
        value = params.get(key, "")
        if not value.isascii() or not value.isdigit():
            return _error(400, f"Wrong parameter: {key}", "bad_param")
        bounds.append(int(value))
    if params["resolution"] != "1d":
        return _error(400, "Wrong parameter: resolution (the sandbox keeps daily bars only)",
                      "bad_param")
    if series is None:
        return _error(404, "Unsupported pair.", "unknown_pair")
    first, last = bounds
    bars = dict(series.closes)
    today = board.now().date()
    if series.live is not None and today not in bars:
        bars[today] = series.live  # the bar still running
    rows = []
    previous: Decimal | None = None
    for day in sorted(bars):
        start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
        close = bars[day]
        opened = previous if previous is not None else close
        previous = close
        if first <= start <= last:
            rows.append({"timestamp": start * 1000, "open": text(opened),
                         "high": text(max(opened, close)), "low": text(min(opened, close)),
                         "close": text(close), "volume": "3.14159265"})
    return json_reply(200, {"data": rows})



def config_items(board: PriceBoard) -> list[tuple[str, object]]:
    return []  # public, and it answers every pair it lists
