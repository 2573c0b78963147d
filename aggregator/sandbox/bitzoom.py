"""Bitzoom Futures: the test-token endpoint and GET /api/v1/balance, bearer JWT or HMAC keys."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from decimal import Decimal
from urllib.parse import parse_qsl, quote_plus

from aggregator.sandbox import envelopes, jwt_hs256
from aggregator.sandbox.accounts import FakeAccount, FakeBalance, plain
from aggregator.sandbox.fake import HUGE, TINY, Expected, Fake, balances, holding, required
from aggregator.sandbox.faults import fault_reply
from aggregator.sandbox.state import State
from aggregator.sandbox.wire import Reply, Request, json_reply

PREFIX = "/bitzoom"
TOKEN_PATH = PREFIX + "/api/servermanage/testtoken"
BALANCE_PATH = PREFIX + "/api/v1/balance"
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
NONCE_MEMORY = 120.0  # longer than the widest receive window, so a replay always shows


def canonical_query(raw_query: str) -> str:
    """Pairs kept with blanks and duplicates, sorted by (key, value), form-encoded, joined."""
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs)


def signed_text(
    timestamp: str, nonce: str, recv_window: str, method: str, path: str, query: str, body: bytes
) -> str:
    """The seven lines the HMAC covers."""
    return "\n".join(
        [
            timestamp,
            nonce,
            recv_window,
            method.upper(),
            path,
            canonical_query(query),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def hmac_signature(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def issue_token(state: State, user_id: str) -> str:
    """A bearer JWT for ``user_id``, signed with the sandbox's own key."""
    now = state.clock()
    with state.lock:
        state.token_serial += 1
        serial = state.token_serial
    iat = int(now)
    ttl = state.token_ttl
    exp: float = iat + int(ttl) if float(ttl).is_integer() else round(now + ttl, 3)
    claims = {"userid": user_id, "iat": iat, "exp": exp, "jti": serial}
    return jwt_hs256.encode(claims, state.token_key)


def handle(state: State, request: Request) -> Reply:
    if request.path == TOKEN_PATH and request.method == "GET":
        return _test_token(state, request)
    if request.path == BALANCE_PATH and request.method == "GET":
        return _balance(state, request)
    return json_reply(404, {"code": -1, "msg": "Not Found", "data": None}, outcome="not_found")


def _test_token(state: State, request: Request) -> Reply:
    user_id = dict(request.query_params()).get("userid", "")
    account = state.find("bitzoom", "user_id", user_id) if user_id else None
    if account is None or account.credentials.get("auth", "bearer") != "bearer":
        return json_reply(
            200, {"code": -1002, "msg": "Unauthorized", "data": None}, outcome="unknown_user"
        )
    token = issue_token(state, user_id)
    form = state.token_form
    if form == "text":
        reply = Reply(200, token.encode(), content_type="text/plain; charset=utf-8")
    elif form == "json_string":
        reply = Reply(200, json.dumps(token).encode())
    elif form == "data_string":
        reply = json_reply(200, {"code": 0, "msg": "success", "data": token})
    elif form == "top_token":
        reply = json_reply(200, {"code": 0, "msg": "success", "token": token})
    else:
        reply = json_reply(200, {"code": 0, "msg": "success", "data": {"token": token}})
    reply.account, reply.outcome = account.name, "token"
    return reply


def _balance(state: State, request: Request) -> Reply:
    now = state.clock()
    if request.header("X-BZ-APIKEY") is not None:
        result = _check_hmac(state, request, now)
    elif request.header("Authorization") is not None:
        result = _check_bearer(state, request, now)
    else:
        # Before any credential there is no account, so no envelope choice: the plain one.
        return json_reply(
            401, {"code": -1002, "msg": "Unauthorized", "data": None}, outcome="missing_auth"
        )
    if isinstance(result, Reply):
        return result
    account = result
    fault = state.take_fault(account.name)
    if fault is not None:
        return fault_reply(state, account, fault, now, request)
    wanted = dict(request.query_params()).get("AssetID")
    rows = [row for row in balance_rows(state, account) if wanted in (None, row["asset"])]
    reply = envelopes.bitzoom(account.envelope, rows, now)
    reply.account = account.name
    return reply


def _refuse(
    account: FakeAccount | None, code: int, msg: str, now: float, outcome: str
) -> Reply:
    envelope = account.envelope if account is not None else "code"
    reply = envelopes.bitzoom_error(envelope, code, msg, now, outcome=outcome)
    reply.account = account.name if account is not None else None
    return reply


def _check_bearer(state: State, request: Request, now: float) -> FakeAccount | Reply:
    header = request.header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        return _refuse(None, -1022, "Invalid signature", now, "bad_token")
    try:
        claims = jwt_hs256.verify(token.strip(), state.token_key)
        exp = jwt_hs256.numeric_claim(claims, "exp")
    except jwt_hs256.InvalidToken:
        return _refuse(None, -1022, "Invalid signature", now, "bad_token")
    user_id, serial = claims.get("userid"), claims.get("jti")
    account = state.find("bitzoom", "user_id", user_id) if isinstance(user_id, str) else None
    if account is None:
        return _refuse(None, -1002, "Unauthorized", now, "unknown_user")
    with state.lock:
        revoked = not isinstance(serial, int) or serial <= state.revoked_through
    if revoked or now >= exp:
        return _refuse(account, -1002, "Unauthorized", now, "expired_token")
    return account


def _check_hmac(state: State, request: Request, now: float) -> FakeAccount | Reply:
    key = request.header("X-BZ-APIKEY") or ""
    timestamp = request.header("X-BZ-TIMESTAMP")
    nonce = request.header("X-BZ-NONCE")
    given = request.header("X-BZ-SIGNATURE")
    window_text = request.header("X-BZ-RECVWINDOW")
    account = state.find("bitzoom", "api_key", key)
    if account is None or account.credentials.get("auth") != "hmac":
        return _refuse(None, -1022, "Invalid API key", now, "unknown_key")
    if not timestamp or not nonce or not given:
        return _refuse(account, -1022, "Missing signature headers", now, "missing_auth")
    if not timestamp.isdigit():
        return _refuse(account, -1022, "Invalid timestamp", now, "bad_param")
    window = DEFAULT_RECV_WINDOW
    if window_text is not None:
        if not window_text.isdigit() or not 1 <= int(window_text) <= MAX_RECV_WINDOW:
            return _refuse(account, -1022, "Invalid recvWindow", now, "bad_param")
        window = int(window_text)
    text = signed_text(
        timestamp,
        nonce,
        window_text if window_text is not None else "",
        request.method,
        request.path,
        request.query,
        request.body,
    )
    expected = hmac_signature(account.credentials["api_secret"], text)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return _refuse(account, -1022, "Invalid signature", now, "bad_signature")
    if abs(int(timestamp) - now * 1000) > window:
        return _refuse(account, -1021, "Timestamp outside recvWindow", now, "clock_skew")
    if not state.accept_unique("bitzoom", key, nonce, account.name, NONCE_MEMORY):
        return _refuse(account, -1022, "Nonce already used", now, "reused_nonce")
    return account


def balance_rows(state: State, account: FakeAccount) -> list[dict[str, str]]:
    rows = []
    for asset, balance in state.snapshot(account).items():
        total, available, _ = balance.resolved()
        rows.append(
            {
                "asset": asset,
                "walletBalance": plain(total),
                "availableBalance": plain(available),
                "unrealizedProfit": "0",
                "marginBalance": plain(total),
            }
        )
    return rows


# auth -> the credentials it needs; the answer envelope comes with the variant.
CREDENTIALS = {"bearer": ("user_id",), "hmac": ("api_key", "api_secret")}
ENVELOPES = ("code", "success")
VARIANTS = {"bearer": "code", "hmac": "success"}  # variant (= auth) -> its envelope
SYMBOLS = ("BTC", "ETH", "USDT", "LTC", "XRP", "USDC", "BNB", "SOL")


def config_items(account: FakeAccount) -> list[tuple[str, str]]:
    auth = account.credentials.get("auth", "bearer")
    if auth not in CREDENTIALS:
        raise ValueError(f"{account.name}: bitzoom auth must be bearer or hmac")
    if account.envelope not in ENVELOPES:
        raise ValueError(f"{account.name}: envelope must be 'code' or 'success'")
    return [("auth", auth), *required(account, CREDENTIALS[auth])]


def expected_holdings(account: FakeAccount) -> list[Expected]:
    rows = []
    for asset, balance in account.balances.items():
        total, available, _ = balance.resolved()
        rows.append(holding(account, asset.upper(), "crypto", total, available, None))
    return rows


def api_error(account: FakeAccount, now: float) -> Reply:
    return envelopes.bitzoom_error(account.envelope, -1001, "Disconnected", now)


def with_amount(account: FakeAccount, amount: str, now: float) -> Reply:
    return envelopes.bitzoom(account.envelope, [{"asset": "BTC", "walletBalance": amount}], now)


def demo_accounts() -> list[FakeAccount]:
    return [
        FakeAccount(
            name="demo-bitzoom",
            source="bitzoom",
            credentials={"auth": "bearer", "user_id": "demo-user-10086"},
            balances={
                "USDT": FakeBalance(Decimal("1000.50000000"), Decimal("900.50000000")),
                "BTC": FakeBalance(Decimal("0.00250000")),
            },
        ),
        FakeAccount(
            name="demo-bitzoom-hmac",
            source="bitzoom",
            credentials={
                "auth": "hmac",
                "api_key": "demo-bitzoom-key-6d2a94",
                "api_secret": "demo-bitzoom-secret-0e7b35c8",
            },
            balances={
                "USDT": FakeBalance(Decimal("250.75"), Decimal("200.75")),
                "ETH": FakeBalance(Decimal("0.8123")),
            },
            envelope="success",
        ),
    ]


def e2e_accounts(tag: str) -> list[FakeAccount]:
    return [
        FakeAccount("zb", "bitzoom", {"auth": "bearer", "user_id": f"4242{tag}"},
                    {"USDT": FakeBalance(HUGE), "BTC": FakeBalance(TINY, TINY)}),
        FakeAccount("zh", "bitzoom",
                    {"auth": "hmac", "api_key": f"zh-key{tag}", "api_secret": f"zh-secret{tag}"},
                    {"USDT": FakeBalance(Decimal("250.75"), Decimal("200.75"))},
                    envelope="success"),
    ]


def make(variant: str, name: str, tag: str, amounts: Sequence[Decimal]) -> FakeAccount:
    credentials = {"auth": variant, "user_id": f"{tag}-bitzoom-user"} if variant == "bearer" \
        else {"auth": variant, "api_key": f"{tag}-bitzoom-key",
              "api_secret": f"{tag}-bitzoom-secret"}
    return FakeAccount(name, "bitzoom", credentials, balances(SYMBOLS, amounts),
                       envelope=VARIANTS[variant])


FAKE = Fake(
    source="bitzoom",
    prefix=PREFIX,
    handle=handle,
    key_fields=("user_id", "api_key"),
    config_items=config_items,
    poll_paths=(BALANCE_PATH.removeprefix(PREFIX),),
    expected_holdings=expected_holdings,
    api_error=api_error,
    with_amount=with_amount,
    demo_accounts=demo_accounts,
    e2e_accounts=e2e_accounts,
    variants=tuple(VARIANTS),
    make=make,
    credential_headers=("x-bz-apikey", "x-bz-signature"),
)
