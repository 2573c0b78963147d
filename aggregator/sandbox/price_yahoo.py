"""Yahoo Finance's chart API: GET /v8/finance/chart/{symbol}?range=5d&interval=1d (or
period1/period2), in the answer's real shape (meta, timestamp, indicators.quote).

Each bar is stamped at its day's session open in the exchange's zone (09:30 New York for
a stock, 00:00 London for a currency), as Yahoo stamps them; today's bar, once the
session opened, is the price so far. A symbol the board does not list answers 404 with
``chart.error``. Like the real one it answers 429 to a client that does not say it is a
browser (``board.yahoo_wants_browser``). A listing in minor units (``minor=True``) is
quoted as GBp/ZAc/ILA with prices 100 times larger.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from urllib.parse import unquote

from aggregator.sandbox.price_board import Listing, PriceBoard, Series, fault_reply
from aggregator.sandbox.wire import Reply, Request, json_reply

PREFIX = "/yahoo"
ROUTES = (PREFIX + "/v8/finance/chart",)
CHART = PREFIX + "/v8/finance/chart/"
MINOR = {"GBP": "GBp", "ZAR": "ZAc", "ILS": "ILA"}
CALENDAR_RANGES = {"1mo": 31, "3mo": 92, "6mo": 183, "1y": 366, "2y": 731, "5y": 1827,
                   "10y": 3653, "max": 36525}
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]


def chart_error(status: int, code: str, description: str, outcome: str) -> Reply:
    return json_reply(status, {"chart": {"result": None,
                                         "error": {"code": code, "description": description}}},
                      outcome=outcome)


def handle(board: PriceBoard, request: Request) -> Reply:
    agent = request.header("user-agent") or ""
    if board.yahoo_wants_browser and not agent.startswith("Mozilla/"):
        return Reply(429, b"Too Many Requests\r\n", content_type="text/plain;charset=utf-8",
                     outcome="not_a_browser")
    if request.method != "GET" or not request.path.startswith(CHART):
        return chart_error(404, "Not Found", "No such path", "not_found")
    fault = board.take_fault("yahoo")
    if fault is not None:
        return fault_reply("yahoo", fault, Reply(429, b"Too Many Requests\r\n",
                                                 content_type="text/plain;charset=utf-8"),
                           chart_error(500, "Internal Server Error", "Internal Server Error", ""))
    symbol = unquote(request.path[len(CHART):])
    found = [(asset, quote, series) for (asset, quote), series in board.of("yahoo").items()
             if board.listing(asset).symbol.upper() == symbol.upper()]
    if not found:
        return chart_error(404, "Not Found", "No data found, symbol may be delisted",
                           "unknown_symbol")
    asset, quote, series = found[0]
    params = dict(request.query_params())
    if params.get("interval", "1d") != "1d":
        return chart_error(400, "Bad Request", "Invalid input - the sandbox keeps daily bars "
                           "only (interval=1d)", "bad_param")
    return _chart(board, board.listing(asset), quote, series, params)


def _bars(board: PriceBoard, listing: Listing, series: Series) -> dict[date, tuple[int, Decimal]]:
    """Day -> (its session open, unix seconds; its close or the price so far)."""
    zone = listing.tz
    bars = {}
    for day, close in series.closes.items():
        bars[day] = (int(datetime.combine(day, listing.opens, zone).timestamp()), close)
    now = board.clock()
    today = datetime.fromtimestamp(now, zone).date()
    opened = int(datetime.combine(today, listing.opens, zone).timestamp())
    if series.live is not None and today not in bars and now >= opened:
        bars[today] = (opened, series.live)
    return dict(sorted(bars.items()))


def _chart(board: PriceBoard, listing: Listing, quote: str, series: Series,
           params: dict[str, str]) -> Reply:
    bars = _bars(board, listing, series)
    chosen = list(bars.values())
    span = params.get("range")
    if "period1" in params or "period2" in params:
        try:
            first, last = int(params.get("period1", "0")), int(params.get("period2", "0"))
        except ValueError:
            return chart_error(400, "Bad Request", "Invalid input - period1/period2",
                               "bad_param")
        chosen = [b for b in chosen if first <= b[0] < last]
        span = None
    elif span is None or span not in VALID_RANGES:
        return chart_error(400, "Bad Request", f"Invalid input - range={span}", "bad_param")
    elif span.endswith("d"):
        chosen = chosen[-int(span[:-1]):]  # trading days
    elif span in CALENDAR_RANGES:
        chosen = [b for b in chosen if b[0] >= board.clock() - CALENDAR_RANGES[span] * 86400]
    scale = 2 if listing.minor else 0
    currency = MINOR.get(quote, quote) if listing.minor else quote
    closes = [c.scaleb(scale) for _, c in chosen]
    now = datetime.fromtimestamp(board.clock(), listing.tz)
    offset = now.utcoffset()
    live = None if series.live is None else series.live.scaleb(scale)
    meta: dict[str, object] = {
        "currency": currency, "symbol": listing.symbol,
        "exchangeName": "CCY" if listing.symbol.endswith("=X") else "NMS",
        "fullExchangeName": "CCY" if listing.symbol.endswith("=X") else "NasdaqGS",
        "instrumentType": "CURRENCY" if listing.symbol.endswith("=X") else "EQUITY",
        "firstTradeDate": 345479400, "regularMarketTime": board.updated(series),
        "hasPrePostMarketData": not listing.symbol.endswith("=X"),
        "gmtoffset": int(offset.total_seconds()) if offset else 0,
        "timezone": now.tzname() or "UTC", "exchangeTimezoneName": listing.zone,
        "regularMarketPrice": live,
        "chartPreviousClose": closes[0] if closes else live,
        "priceHint": 2, "dataGranularity": "1d", "range": span or "",
        "validRanges": VALID_RANGES,
    }
    result: dict[str, object] = {"meta": meta}
    if chosen:
        result["timestamp"] = [t for t, _ in chosen]
        result["indicators"] = {
            "quote": [{"open": closes, "volume": [1000 + i for i in range(len(closes))],
                       "close": closes, "high": closes, "low": closes}],
            "adjclose": [{"adjclose": closes}]}
    else:
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    return json_reply(200, {"chart": {"result": [result], "error": None}})


def config_items(board: PriceBoard) -> list[tuple[str, object]]:
    return [("symbols", {asset: board.listing(asset).symbol for asset in board.assets("yahoo")})]
