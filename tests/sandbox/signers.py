"""Client-side signing written for these tests only, independent of aggregator.auth and the
sandbox's own verification code, so the two can disagree when one is wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse

import jwt


def now_ms() -> int:
    return int(time.time() * 1000)


def bitopro_headers(key: str, secret: str, identity: str, nonce: int) -> dict[str, str]:
    payload_json = json.dumps({"identity": identity, "nonce": nonce}, separators=(",", ":"))
    payload = base64.b64encode(payload_json.encode()).decode()
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha384).hexdigest()
    return {
        "X-BITOPRO-APIKEY": key,
        "X-BITOPRO-PAYLOAD": payload,
        "X-BITOPRO-SIGNATURE": signature,
    }


def bitopro_signed_payload(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha384).hexdigest()


def bitz_form(
    key: str, secret: str, *, timestamp: int | None = None, nonce: str = "a1B2c3", **extra: str
) -> dict[str, str]:
    params = {"apiKey": key, "timeStamp": str(timestamp or int(time.time())), "nonce": nonce}
    params.update(extra)
    text = "&".join(f"{k}={params[k]}" for k in sorted(params)) + secret
    params["sign"] = hashlib.md5(text.encode()).hexdigest()
    return params


def bitzoom_canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    pairs.sort()
    return "&".join(
        urllib.parse.quote_plus(k) + "=" + urllib.parse.quote_plus(v) for k, v in pairs
    )


def bitzoom_signature(
    secret: str,
    timestamp: str,
    nonce: str,
    recv_window: str,
    method: str,
    path: str,
    query: str,
    body: bytes,
) -> str:
    lines = [
        timestamp,
        nonce,
        recv_window,
        method,
        path,
        bitzoom_canonical_query(query),
        hashlib.sha256(body).hexdigest(),
    ]
    return hmac.new(secret.encode(), "\n".join(lines).encode(), hashlib.sha256).hexdigest()


def bitzoom_hmac_headers(
    key: str,
    secret: str,
    *,
    path: str,
    query: str = "",
    nonce: str = "n-0001",
    timestamp: int | None = None,
    recv_window: str | None = "5000",
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else now_ms())
    signature = bitzoom_signature(
        secret, ts, nonce, recv_window or "", "GET", path, query, b""
    )
    headers = {
        "X-BZ-APIKEY": key,
        "X-BZ-TIMESTAMP": ts,
        "X-BZ-NONCE": nonce,
        "X-BZ-SIGNATURE": signature,
    }
    if recv_window is not None:
        headers["X-BZ-RECVWINDOW"] = recv_window
    return headers


def pitrade_token(
    client_id: str,
    secret: str,
    *,
    iat: int | None = None,
    lifetime: int = 900,
    algorithm: str = "HS256",
) -> str:
    issued = int(time.time()) if iat is None else iat
    claims = {"clientId": client_id, "iat": issued, "exp": issued + lifetime}
    return jwt.encode(claims, secret, algorithm=algorithm)
