"""Bounded reading: answer size, gzip/deflate bombs, bodies that are not what they claim."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from decimal import Decimal

import pytest

from aggregator import errors
from aggregator.model import PollRecord, Secret
from aggregator.polling import body
from aggregator.polling.client import make_client
from aggregator.polling.poller import poll_once, prepare
from aggregator.sandbox import FakeAccount, FakeBalance, Sandbox, hostile
from aggregator.sources.base import AccountConfig
from aggregator.sources.bitopro import BitoProConfig
from aggregator.sources.bitzoom import BitzoomConfig
from aggregator.sources.pitrade import PiTradeConfig
from tests.polling.conftest import Canned, Server

MIB = 1 << 20
PAYLOAD = b'{"data":[{"currency":"btc","amount":"1.5","available":"1"}]}'


async def _chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def read(data: bytes | Iterable[bytes], encoding: str | None = None,
         limit: int = body.MAX_ANSWER_BYTES) -> body.Body:
    async def source() -> AsyncIterator[bytes]:
        if isinstance(data, bytes):
            async for chunk in _chunks(data):
                yield chunk
        else:
            for chunk in data:
                yield chunk

    return asyncio.run(body.read_body(source(), encoding, limit))


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(("encoding", "encode"), [
    (None, lambda d: d),
    ("identity", lambda d: d),
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("GZIP", gzip.compress),
    ("deflate", zlib.compress),  # as the RFC means it: zlib-wrapped
    ("deflate", raw_deflate),  # as some servers send it
    ("gzip, deflate", lambda d: zlib.compress(gzip.compress(d))),  # applied in that order
    ("gzip", lambda d: gzip.compress(d[:20]) + gzip.compress(d[20:])),  # two members
    ("gzip", lambda d: gzip.compress(d) + b"\0\0\0"),  # NUL padding after the stream
])
def test_encodings_we_ask_for_are_decoded(encoding: str | None, encode: object) -> None:
    assert callable(encode)
    got = read(encode(PAYLOAD), encoding)
    assert got.problem is None
    assert got.content == PAYLOAD


def test_the_limit_is_inclusive_and_counts_decoded_bytes() -> None:
    data = b"x" * 5000
    assert read(data, None, limit=5000).problem is None
    over = read(data, None, limit=4999)
    assert isinstance(over.problem, errors.AnswerTooLarge)
    assert over.kept(lambda b: b) == data[:body.KEPT_BYTES]
    # 5000 bytes that compress to a few dozen are still 5000 bytes.
    packed = gzip.compress(data)
    assert len(packed) < 100
    assert isinstance(read(packed, "gzip", limit=4999).problem, errors.AnswerTooLarge)
    assert read(packed, "gzip", limit=5000).content == data


def test_a_gzip_bomb_stops_at_the_limit_without_expanding() -> None:
    bomb = hostile.gzip_bomb(256)  # 256 MiB of zeros in about 260 KiB
    assert len(bomb) < MIB // 2
    tracemalloc.start()
    try:
        began = time.monotonic()
        got = read(bomb, "gzip", limit=16 * MIB)
        took = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(got.problem, errors.AnswerTooLarge)
    assert "16 MiB (decompressed)" in str(got.problem)
    assert got.kept(lambda b: b) == bytes(body.KEPT_BYTES)
    # The decoded prefix up to the limit, and little else: never the 256 MiB.
    assert peak < 3 * 16 * MIB, peak
    assert took < 5


def test_a_raw_body_over_the_limit_stops_reading() -> None:
    produced = 0

    def endless() -> Iterable[bytes]:
        nonlocal produced
        while True:
            produced += 64 * 1024
            yield b"7" * (64 * 1024)

    got = read(endless(), None, limit=MIB)
    assert isinstance(got.problem, errors.AnswerTooLarge)
    assert produced <= MIB + 64 * 1024


@pytest.mark.parametrize(("encoding", "data", "says"), [
    ("gzip", PAYLOAD, "not valid gzip"),  # declared gzip, sent plain
    ("deflate", PAYLOAD, "not valid deflate"),
    ("gzip", gzip.compress(PAYLOAD)[:-12], "ends early"),  # cut short
    ("deflate", zlib.compress(PAYLOAD) + b"garbage", "after the end"),
    ("br", PAYLOAD, "'br', which was not asked for"),  # we never ask for it
    ("zstd", PAYLOAD, "'zstd'"),
    ("compress", PAYLOAD, "'compress'"),
])
def test_a_body_that_is_not_what_it_claims_is_malformed(
    encoding: str, data: bytes, says: str
) -> None:
    got = read(data, encoding)
    assert isinstance(got.problem, errors.Malformed)
    assert says in str(got.problem)
    # The raw bytes are kept (bounded), for diagnosis.
    assert got.kept(lambda b: b) == data[:body.KEPT_BYTES]


def test_an_empty_body_declared_gzip_is_empty() -> None:
    got = read(b"", "gzip")
    assert got.problem is None and got.content == b""


def test_a_secret_cut_by_the_kept_kib_is_still_redacted() -> None:
    secret = b"S3CRET-" * 20
    data = b"a" * (body.KEPT_BYTES - 50) + secret + b"b" * 10_000
    got = read(data, None, limit=4096)
    kept = got.kept(lambda b: b.replace(secret, b"[redacted]"))
    assert len(kept) == body.KEPT_BYTES
    assert b"S3CRET" not in kept


# Through poll_once: the poll log gets the kind, the raw body its first KiB.


def poll(config: AccountConfig, limit: int = body.MAX_ANSWER_BYTES) -> PollRecord:
    async def run() -> PollRecord:
        async with make_client() as client:
            return await poll_once(client, prepare(config), max_answer_bytes=limit)

    return asyncio.run(run())


def bitopro(sandbox: Sandbox) -> BitoProConfig:
    return BitoProConfig(name="bp", source="bitopro", base_url=sandbox.base_url("bitopro"),
                         api_key=Secret("k"), api_secret=Secret("s"), identity="me")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    fake = FakeAccount("bp", "bitopro", {"api_key": "k", "api_secret": "s", "identity": "me"},
                       {"btc": FakeBalance(Decimal("1.5"))})
    pitrade = FakeAccount("pt", "pitrade", {"client_id": "c", "secret": "pt-secret"},
                          {"AAPL": FakeBalance(Decimal(3))}, cash=Decimal(10))
    with Sandbox([fake, pitrade]) as running:
        yield running


@pytest.mark.parametrize(("fault", "kind", "starts"), [
    ("big_body", "too_large", b'{"data":[{"currency":"btc"'),
    ("gzip_bomb", "too_large", bytes(16)),
    ("bad_gzip", "malformed", b'{"data":[{"currency":"btc","amount":"1"'),
    ("huge_amount", "schema", b'{"data":[{"currency":"btc","amount":"1e999999999"'),
])
def test_hostile_answers_are_failed_polls_of_their_kind(
    sandbox: Sandbox, fault: str, kind: str, starts: bytes
) -> None:
    sandbox.set_fault("bp", fault)
    record = poll(bitopro(sandbox))
    assert record.error_kind == kind, record.error_message
    (answer,) = record.responses
    assert answer.status == 200
    assert answer.body.startswith(starts)
    assert len(answer.body) <= (body.KEPT_BYTES if kind != "schema" else 1000)


def test_error_answers_are_classified_by_status_even_when_too_large(sandbox: Sandbox) -> None:
    # Tiny limits: the 429's and 500's own JSON bodies are over them.
    sandbox.set_fault("bp", "rate_limited", retry_after=7)
    record = poll(bitopro(sandbox), limit=10)
    assert record.error_kind == "rate_limited"
    assert record.responses[-1].retry_after == 7.0
    sandbox.set_fault("bp", "server_error")
    assert poll(bitopro(sandbox), limit=10).error_kind == "server_error"


def test_pitrade_http_errors_on_the_first_request_keep_their_kind(sandbox: Sandbox) -> None:
    config = PiTradeConfig(name="pt", source="pitrade", base_url=sandbox.base_url("pitrade"),
                           client_id="c", secret=Secret("pt-secret"))
    sandbox.set_fault("pt", "rate_limited", count=1, retry_after=5)
    record = poll(config)
    assert record.error_kind == "rate_limited", record.error_message
    assert [r.endpoint for r in record.responses] == ["/portfolio"]
    assert record.responses[0].retry_after == 5.0
    sandbox.set_fault("pt", "server_error", count=1)
    assert poll(config).error_kind == "server_error"
    assert poll(config).error_kind is None


def test_pitrade_fresh_token_refused_as_expired_is_clock_skew(sandbox: Sandbox) -> None:
    config = PiTradeConfig(name="pt", source="pitrade", base_url=sandbox.base_url("pitrade"),
                           client_id="c", secret=Secret("pt-secret"))
    # The exchange's clock is an hour ahead: every token we sign has expired for it.
    sandbox.state.clock = lambda: time.time() + 3600
    record = poll(config)
    assert record.error_kind == "clock_skew", record.error_message
    assert "Token Expired" in (record.error_message or "")
    refused = [r for r in sandbox.requests if r.outcome == "expired_token"]
    assert len(refused) == 2  # the first token, then the fresh one


def test_an_auth_flow_reads_within_the_limit_too(server: Server) -> None:
    # The Bitzoom token endpoint answers a bomb: the auth flow never sees it expanded,
    # and nothing of it is kept (its start would be where the token is).
    server.routes["/api/servermanage/testtoken"] = Canned(
        200, hostile.gzip_bomb(64), {"Content-Type": "application/json",
                                     "Content-Encoding": "gzip"})
    config = BitzoomConfig(name="zb", source="bitzoom", base_url=server.base_url,
                           user_id=Secret("4242"))
    record = poll(config, limit=MIB)
    assert record.error_kind == "too_large", record.error_message
    (answer,) = record.responses
    assert answer.endpoint == "/api/servermanage/testtoken"
    assert answer.body == b""
    assert server.hits == ["/api/servermanage/testtoken"]


def test_a_401_read_before_re_signing_is_bounded(server: Server) -> None:
    # PiTrade re-signs on a 401: the first 401 is read by the flow, here within the limit.
    big = b'{"error":"Unauthorized","pad":"' + b"x" * (2 * MIB) + b'"}'
    server.routes["/portfolio"] = Canned(401, big)
    config = PiTradeConfig(name="pt", source="pitrade", base_url=server.base_url,
                           client_id="c", secret=Secret("s"))
    record = poll(config, limit=MIB)
    assert record.error_kind == "bad_credentials", record.error_message
    assert server.hits == ["/portfolio", "/portfolio"]
    assert len(record.responses[0].body) == body.KEPT_BYTES


def test_we_ask_only_for_encodings_we_can_bound(server: Server) -> None:
    server.routes["/api/servermanage/testtoken"] = Canned(200, b'{"code":0,"data":"t.o.k"}')
    server.routes["/api/v1/balance"] = Canned(200, b'{"code":0,"data":[]}')
    config = BitzoomConfig(name="zb", source="bitzoom", base_url=server.base_url,
                           user_id=Secret("4242"))
    assert poll(config).error_kind is None
    # The token request the auth flow makes as well as the balance request.
    assert server.hits == ["/api/servermanage/testtoken", "/api/v1/balance"]
    assert {h["accept-encoding"] for h in server.headers} == {"gzip, deflate"}


async def test_a_key_that_is_not_a_valid_header_is_bad_credentials_not_retried(
        server: Server) -> None:
    from aggregator.polling.poller import poll_until_deadline

    # The config refuses such a key; a key that reaches the header anyway must not be
    # retried as "unreachable" nor quoted.
    config = BitzoomConfig(name="zb", source="bitzoom", base_url=server.base_url,
                           auth="hmac", api_key=Secret("line-one\nline-two"),
                           api_secret=Secret("s"))
    async with make_client() as client:
        records = await poll_until_deadline(client, prepare(config), 5.0)
    assert len(records) == 1  # not retried
    assert records[0].error_kind == errors.BadCredentials.kind
    assert "line-one" not in (records[0].error_message or "")
    assert server.hits == []  # nothing went out
