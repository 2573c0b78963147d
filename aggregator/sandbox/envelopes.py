"""Each exchange's wrapping of an answer: Bitz's status envelope, Bitzoom's two envelopes."""

from __future__ import annotations

import hashlib

from aggregator.sandbox.wire import Reply, json_reply


def microtime(now: float) -> str:
    """PHP's microtime(): "0.94303600 1532672546"."""
    seconds = int(now)
    # Truncate, not round: rounding could print "1.00000000" beside the old second.
    fraction = min(int((now - seconds) * 100_000_000), 99_999_999)
    return f"0.{fraction:08d} {seconds}"


def bitz(status: int, msg: str, data: object, now: float, *, outcome: str = "ok") -> Reply:
    # Bitz answers HTTP 200 even for errors; "status" carries the verdict.
    return json_reply(
        200,
        {
            "status": status,
            "msg": msg,
            "data": data,
            "time": int(now),
            "microtime": microtime(now),
            "source": "api",
        },
        outcome=outcome,
    )


def bitz_error(status: int, msg: str, now: float, *, outcome: str = "refused") -> Reply:
    return bitz(status, msg, None, now, outcome=outcome)


def _traceid(now: float) -> str:
    return hashlib.sha256(repr(now).encode()).hexdigest()[:32]


def bitzoom(envelope: str, data: object, now: float) -> Reply:
    if envelope == "success":
        return json_reply(
            200,
            {
                "traceid": _traceid(now),
                "errorCode": 200,
                "errorMessage": "",
                "success": True,
                "duration": 3,
                "data": data,
                "host": "sandbox",
                "showType": 0,
            },
        )
    return json_reply(200, {"code": 0, "msg": "success", "data": data})


def bitzoom_error(
    envelope: str, code: int, msg: str, now: float, *, outcome: str = "refused"
) -> Reply:
    # Errors ride on HTTP 200 in either envelope.
    if envelope == "success":
        return json_reply(
            200,
            {
                "traceid": _traceid(now),
                "errorCode": code,
                "errorMessage": msg,
                "success": False,
                "duration": 1,
                "data": None,
                "host": "sandbox",
                "showType": 0,
            },
            outcome=outcome,
        )
    return json_reply(200, {"code": code, "msg": msg, "data": None}, outcome=outcome)
