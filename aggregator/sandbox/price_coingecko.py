"""CoinGecko v3: GET /simple/price and /coins/{id}/market_chart/range.

Prices are JSON numbers as CoinGecko writes them (``4.1234e-05`` for small ones: the
parser must read that text exactly). ``/simple/price`` leaves out an id it does not
know and a currency it has no price in; ``market_chart/range`` answers 404 ``{"error":
"coin not found"}`` for an unknown id. The close of day D is the point stamped D+1
00:00 UTC, as CoinGecko's daily points are; a range reaching now ends with the live
price at the instant asked. With a key set on the board, every request must carry it
in ``x-cg-demo-api-key`` (a pro key header on this "demo" host is refused as the real
one refuses it); with a per-minute limit set, calls over it get CoinGecko's 429.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aggregator.amounts import canonical
from aggregator.sandbox.price_board import PriceBoard, fault_reply
from aggregator.sandbox.wire import Reply, Request

PREFIX = "/coingecko/api/v3"
ROUTES = (PREFIX,)
LIMIT_MESSAGE = ("You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/"
                 "api/pricing to subscribe to our API plans for higher rate limits.")
PRO_ON_DEMO = ("If you are using Pro API key, please change your root URL from "
               "api.coingecko.com to pro-api.coingecko.com")
RETRY_AFTER_LIMIT = 60


def number(value: Decimal) -> str:
    """A JSON number as CoinGecko (Python floats' repr) writes it: 4.1234e-05, 67187.33."""
    digits = "".join(str(d) for d in value.normalize().as_tuple().digits)
    exponent = value.adjusted()
    sign = "-" if value < 0 else ""
    if -4 <= exponent < 16:
        return canonical(value)
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _status(status: int, code: int, message: str, outcome: str) -> Reply:
    body = '{"status":{"error_code":%d,"error_message":"%s"}}' % (code, message)  # noqa: UP031
    return Reply(status, body.encode(), outcome=outcome)


def _error(status: int, message: str, outcome: str) -> Reply:
    return Reply(status, ('{"error":"%s"}' % message).encode(), outcome=outcome)  # noqa: UP031


def _refused(board: PriceBoard, request: Request) -> Reply | None:
    if request.header("x-cg-pro-api-key") is not None:
        return _status(400, 10010, PRO_ON_DEMO, "pro_key_on_demo_host")
    if board.coingecko_key is not None:
        key = request.header("x-cg-demo-api-key")
        if key is None:
            return _status(401, 10002, "API Key Missing", "missing_auth")
        if not hmac.compare_digest(key.encode(), board.coingecko_key.encode()):
            return _status(401, 10002, "Invalid API Key", "bad_key")
    if board.coingecko_over_limit():
        reply = _status(429, 429, LIMIT_MESSAGE, "rate_limited")
        reply.headers["Retry-After"] = str(RETRY_AFTER_LIMIT)
        return reply
    return None


def handle(board: PriceBoard, request: Request) -> Reply:
    if request.method != "GET":
        return _error(405, "Method Not Allowed", "bad_method")
    refused = _refused(board, request)
    if refused is not None:
        return refused
    fault = board.take_fault("coingecko")
    if fault is not None:
        return fault_reply("coingecko", fault, _status(429, 429, LIMIT_MESSAGE, ""),
                           Reply(503, b"<html><body><h1>503 Service Temporarily Unavailable"
                                 b"</h1></body></html>", content_type="text/html"))
    path = request.path[len(PREFIX):]
    params = dict(request.query_params())
    if path == "/simple/price":
        return _simple_price(board, params)
    if path.startswith("/coins/") and path.endswith("/market_chart/range"):
        return _range(board, path[len("/coins/"):-len("/market_chart/range")], params)
    if path == "/ping":
        return Reply(200, b'{"gecko_says":"(V3) To the Moon!"}')
    return _error(404, "Not Found", "not_found")


def _coins(board: PriceBoard) -> dict[str, str]:
    """CoinGecko id -> asset, for every asset the board prices at CoinGecko."""
    return {board.coin_id(asset): asset for asset in board.assets("coingecko")}


def _simple_price(board: PriceBoard, params: dict[str, str]) -> Reply:
    if not params.get("ids") or not params.get("vs_currencies"):
        return _error(400, "Missing parameter ids or vs_currencies", "missing_param")
    coins, series = _coins(board), board.of("coingecko")
    with_time = params.get("include_last_updated_at") == "true"
    entries = []
    for coin in dict.fromkeys(params["ids"].split(",")):
        asset = coins.get(coin)
        if asset is None:
            continue  # CoinGecko leaves out an id it does not know
        fields, updated = [], []
        for vs in dict.fromkeys(params["vs_currencies"].split(",")):
            found = series.get((asset, vs.upper()))
            if found is not None and found.live is not None:
                fields.append(f'"{vs}":{number(found.live)}')
                updated.append(board.updated(found))
        if with_time and updated:
            fields.append(f'"last_updated_at":{max(updated)}')
        entries.append(f'"{coin}":{{{",".join(fields)}}}')
    return Reply(200, ("{" + ",".join(entries) + "}").encode())


def _range(board: PriceBoard, coin: str, params: dict[str, str]) -> Reply:
    bounds = [params.get(k, "") for k in ("from", "to")]
    if not params.get("vs_currency") or not all(b.isascii() and b.isdigit() for b in bounds):
        return _error(400, "Missing or invalid parameter vs_currency, from or to",
                      "bad_param")
    asset = _coins(board).get(coin)
    if asset is None:
        return _error(404, "coin not found", "unknown_coin")
    first, last = (int(b) for b in bounds)
    series = board.of("coingecko").get((asset, params["vs_currency"].upper()))
    points: list[tuple[int, Decimal]] = []
    if series is not None:
        for day in sorted(series.closes):
            stamp = int((datetime.combine(day, datetime.min.time(), UTC)
                         + timedelta(days=1)).timestamp())
            if first <= stamp <= last:
                points.append((stamp * 1000, series.closes[day]))
        now = board.clock()
        if series.live is not None and last >= now:
            points.append((int(now * 1000), series.live))

    def column(scale: int) -> str:
        return "[" + ",".join(f"[{t},{number(p.scaleb(scale))}]" for t, p in points) + "]"

    body = (f'{{"prices":{column(0)},"market_caps":{column(9)},'
            f'"total_volumes":{column(7)}}}')
    return Reply(200, body.encode())


def config_items(board: PriceBoard) -> list[tuple[str, object]]:
    """``ids`` and ``quotes`` for every series the board has at CoinGecko, and the key."""
    series = board.of("coingecko")
    items: list[tuple[str, object]] = [
        ("ids", {asset: board.coin_id(asset) for asset in board.assets("coingecko")}),
        ("quotes", sorted({quote for _, quote in series})),
    ]
    if board.coingecko_key is not None:
        items.append(("api_key", board.coingecko_key))
    return items
