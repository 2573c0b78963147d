"""The answers of an injected fault, in each exchange's own style where it has one."""

from __future__ import annotations

import json

from aggregator.sandbox import hostile
from aggregator.sandbox.accounts import FakeAccount
from aggregator.sandbox.state import Fault, State, fake_of
from aggregator.sandbox.wire import Reply, Request, json_reply

# Cut off mid-literal: HTTP 200 that a JSON parser must refuse.
MALFORMED_BODY = b'{"data": [tru'
WRONG_SHAPE = {"result": {"balances": "n/a"}}


def retry_after_text(seconds: float) -> str:
    """Delta-seconds as HTTP writes them; a fraction only when one was asked for."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def fault_reply(state: State, account: FakeAccount, fault: Fault, now: float,
                request: Request) -> Reply:
    name, outcome = account.name, f"fault:{fault.kind}"
    fake = fake_of(state.fakes, account)
    if fault.kind == "echo":
        return _echo(request, ("authorization", *fake.credential_headers), name, outcome)
    if fault.kind in hostile.KINDS:
        return hostile.reply(fake.with_amount, account, fault.kind, now)
    if fault.kind == "malformed":
        return Reply(200, MALFORMED_BODY, account=name, outcome=outcome)
    if fault.kind == "wrong_shape":
        return json_reply(200, WRONG_SHAPE, account=name, outcome=outcome)
    if fault.kind == "server_error":
        return json_reply(500, {"error": "Internal Server Error"}, account=name, outcome=outcome)
    if fault.kind == "rate_limited":
        return json_reply(
            429,
            {"error": "Too Many Requests"},
            account=name,
            outcome=outcome,
            headers={"Retry-After": retry_after_text(fault.retry_after)},
        )
    if fault.kind == "hang":
        return Reply(0, b"", account=name, outcome=outcome, hang=True)
    if fault.kind == "api_error":
        # The exchange's own "try later" error, where it puts one.
        reply = fake.api_error(account, now)
        reply.account, reply.outcome = name, outcome
        return reply
    raise ValueError(f"unknown fault {fault.kind!r}")


def _echo(request: Request, credential_headers: tuple[str, ...], name: str,
          outcome: str) -> Reply:
    """A careless server that reflects what it was sent.

    The credential headers go into its error text and into headers of its own, the whole
    request into its body (JSON with escaped slashes, as PHP writes it).
    """
    credentials = {k: v for k, v in request.headers.items() if k in credential_headers}
    body = {
        "error": "Rejected " + " ".join(f"{k}={v}" for k, v in credentials.items()),
        "request": {"method": request.method, "path": request.path, "query": request.query,
                    "headers": dict(request.headers),
                    "body": request.body.decode("utf-8", "replace")},
    }
    return Reply(400, json.dumps(body).replace("/", "\\/").encode(), account=name,
                 outcome=outcome, headers={f"X-Echo-{k}": v for k, v in credentials.items()})
