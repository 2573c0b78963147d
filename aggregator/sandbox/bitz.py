"""Bitz POST /Assets/getUserAssets: MD5-signed form fields; every error is HTTP 200 + status."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from decimal import Decimal
from urllib.parse import parse_qsl

from aggregator.sandbox import envelopes
from aggregator.sandbox.accounts import EXACT, FakeAccount, FakeBalance, plain
from aggregator.sandbox.fake import TINY, Expected, Fake, balances, holding, required
from aggregator.sandbox.faults import fault_reply
from aggregator.sandbox.state import State
from aggregator.sandbox.wire import Reply, Request, json_reply

PREFIX = "/bitz"
BALANCE_PATH = PREFIX + "/Assets/getUserAssets"
REQUIRED = ("apiKey", "timeStamp", "nonce", "sign")
NONCE = re.compile(r"[A-Za-z0-9]{6}")
TIME_TOLERANCE = 30  # seconds
NONCE_MEMORY = 60.0  # a nonce may not come back within this many seconds

# Made-up USD prices for the exchange's own valuation of each line.
USD_PRICES = {
    "btc": Decimal("65000"),
    "eth": Decimal("3200"),
    "usdt": Decimal("1"),
    "usdc": Decimal("1"),
    "bnb": Decimal("580"),
    "ltc": Decimal("80"),
    "xrp": Decimal("0.52"),
    "doge": Decimal("0.15"),
    "trx": Decimal("0.12"),
    "bz": Decimal("0.35"),
}
CNY_PER_USD = Decimal("7.2")
EIGHT = Decimal("0.00000001")


def sign(params: dict[str, str], secret: str) -> str:
    """Lowercase hex MD5 of the sorted raw k=v pairs (all but sign) with the secret appended."""
    # Byte order of the names, as the text says (the seed's own example is unsorted).
    names = sorted((k for k in params if k != "sign"), key=lambda k: k.encode())
    text = "&".join(f"{k}={params[k]}" for k in names)
    return hashlib.md5((text + secret).encode()).hexdigest()


def _form(request: Request) -> dict[str, str] | None:
    """The form fields; None if the body is not a form or repeats a field."""
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    return form if len(form) == len(pairs) else None


def handle(state: State, request: Request) -> Reply:
    if request.path != BALANCE_PATH:
        return json_reply(404, {"error": "Not Found"}, outcome="not_found")
    now = state.clock()
    if request.method != "POST":
        return envelopes.bitz_error(-102, "Invalid parameter", now, outcome="bad_method")
    form = _form(request)
    if form is None or any(not form.get(k) for k in REQUIRED):
        return envelopes.bitz_error(-102, "Invalid parameter", now, outcome="missing_param")
    if not NONCE.fullmatch(form["nonce"]) or not form["timeStamp"].isdigit():
        return envelopes.bitz_error(-102, "Invalid parameter", now, outcome="bad_param")
    account = state.find("bitz", "api_key", form["apiKey"])
    if account is None:
        return envelopes.bitz_error(-109, "Invalid apiKey", now, outcome="unknown_key")
    name = account.name
    expected = sign(form, account.credentials["api_secret"])
    if not hmac.compare_digest(expected.encode(), form["sign"].encode()):
        return _refused(-105, "Invalid sign", now, "bad_signature", name)
    if abs(int(form["timeStamp"]) - now) > TIME_TOLERANCE:
        return _refused(-103, "Verification failed", now, "clock_skew", name)
    if not state.accept_unique("bitz", form["apiKey"], form["nonce"], name, NONCE_MEMORY):
        return _refused(-103, "Verification failed", now, "reused_nonce", name)
    fault = state.take_fault(name)
    if fault is not None:
        return fault_reply(state, account, fault, now, request)
    return _named(envelopes.bitz(200, "", assets(state, account), now), name)


def _named(reply: Reply, name: str) -> Reply:
    reply.account = name
    return reply


def _refused(status: int, msg: str, now: float, outcome: str, name: str) -> Reply:
    return _named(envelopes.bitz_error(status, msg, now, outcome=outcome), name)


def _eight(amount: Decimal) -> Decimal:
    return amount.quantize(EIGHT, context=EXACT)


def assets(state: State, account: FakeAccount) -> dict[str, object]:
    info: list[dict[str, str]] = []
    sum_usd = sum_cny = sum_btc = Decimal(0)
    for asset, balance in state.snapshot(account).items():
        total, available, locked = balance.resolved()
        usd = _eight(EXACT.multiply(total, USD_PRICES.get(asset.lower(), Decimal(0))))
        cny = _eight(EXACT.multiply(usd, CNY_PER_USD))
        btc = _eight(EXACT.divide(usd, USD_PRICES["btc"]))
        sum_usd, sum_cny = EXACT.add(sum_usd, usd), EXACT.add(sum_cny, cny)
        sum_btc = EXACT.add(sum_btc, btc)
        info.append(
            {
                "name": asset,
                "num": plain(total),
                "over": plain(available),
                "lock": plain(locked),
                "btc": plain(btc),
                "usd": plain(usd),
                "cny": plain(cny),
            }
        )
    return {
        "cny": plain(_eight(sum_cny)),
        "usd": plain(_eight(sum_usd)),
        "btc_total": plain(_eight(sum_btc)),
        "info": info,
    }


CREDENTIALS = ("api_key", "api_secret")
SYMBOLS = ("btc", "eth", "usdt", "ltc", "xrp", "usdc", "bnb", "doge")


def config_items(account: FakeAccount) -> list[tuple[str, str]]:
    return required(account, CREDENTIALS)


def expected_holdings(account: FakeAccount) -> list[Expected]:
    return [holding(account, asset.upper(), "crypto", *balance.resolved())
            for asset, balance in account.balances.items()]


def api_error(account: FakeAccount, now: float) -> Reply:
    return envelopes.bitz_error(-112, "System maintenance", now)


def with_amount(account: FakeAccount, amount: str, now: float) -> Reply:
    return envelopes.bitz(200, "", {"info": [{"name": "btc", "num": amount, "over": "0",
                                              "lock": "0"}]}, now)


def demo_accounts() -> list[FakeAccount]:
    return [FakeAccount(
        name="demo-bitz",
        source="bitz",
        credentials={
            "api_key": "demo-bitz-key-2f9c7e31",
            "api_secret": "demo-bitz-secret-5a8d03b6",
        },
        balances={
            "btc": FakeBalance(Decimal("0.01200000"), Decimal("0.01000000")),
            "usdt": FakeBalance(Decimal("845.37250000")),
            "eth": FakeBalance(Decimal("0.50000000"), Decimal("0.35000000")),
        },
    )]


def e2e_accounts(tag: str) -> list[FakeAccount]:
    return [FakeAccount(
        "bz", "bitz", {"api_key": f"bz-key{tag}", "api_secret": f"bz-secret{tag}"},
        {"usdt": FakeBalance(Decimal("500.25"), Decimal("400.25"), Decimal(100)),
         "btc": FakeBalance(TINY)},
    )]


def make(variant: str, name: str, tag: str, amounts: Sequence[Decimal]) -> FakeAccount:
    return FakeAccount(name, "bitz",
                       {"api_key": f"{tag}-bitz-key", "api_secret": f"{tag}-bitz-secret"},
                       balances(SYMBOLS, amounts))


FAKE = Fake(
    source="bitz",
    prefix=PREFIX,
    handle=handle,
    key_fields=("api_key",),
    config_items=config_items,
    poll_paths=(BALANCE_PATH.removeprefix(PREFIX),),
    expected_holdings=expected_holdings,
    api_error=api_error,
    with_amount=with_amount,
    demo_accounts=demo_accounts,
    e2e_accounts=e2e_accounts,
    variants=("",),
    make=make,
)
