"""The redactor finds a secret in every form libraries and servers write it in."""

from __future__ import annotations

import html
import json
import time
import traceback
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest

from aggregator.model import Secret
from aggregator.polling.redact import KEEP_MINTED, MARK, Redactor, redact_everywhere
from aggregator.sandbox import Sandbox

CORE = "c4n4ry7b1d9e"  # letters and digits: as they are in every form
# Every character an encoder treats specially: slash, plus, space, quotes, backslash,
# ampersand, angle brackets, non-ASCII in and beyond the BMP, a line break.
SECRET = f"k/{CORE}+ '\"\\&<é>😀\nend"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


def httpx_header_error(value: str, url: str) -> str:
    """What httpx says about a header value it cannot send (a repr of the bytes)."""
    try:
        httpx.get(url, headers={"X-Key": value})
    except httpx.LocalProtocolError as exc:
        return str(exc)
    raise AssertionError("httpx sent the header")


FORMS: dict[str, Callable[[str], str]] = {
    "as is": lambda s: s,
    "repr": repr,
    "repr of bytes": lambda s: repr(s.encode()),
    "JSON": json.dumps,
    "JSON, not ASCII": lambda s: json.dumps(s, ensure_ascii=False),
    "JSON, slashes escaped (PHP)": lambda s: json.dumps(s).replace("/", "\\/"),
    "JSON, HTML-safe (Go)": lambda s: json.dumps(s).replace("<", "\\u003c")
    .replace(">", "\\u003e").replace("&", "\\u0026"),
    "JSON, upper-case hex": lambda s: json.dumps(s).replace("\\ud83d\\ude00", "\\uD83D\\uDE00")
    .replace("\\u00e9", "\\u00E9"),
    "JSON of a repr": lambda s: json.dumps(repr(s.encode())),
    "form body": lambda s: urlencode({"apiKey": s}),
    "URL path, lower-case hex": lambda s: quote(s, safe="").lower(),
    "httpx query": lambda s: str(httpx.URL("https://h/t", params={"userid": s})),
    "HTML": html.escape,
    "HTML numeric": lambda s: "".join(f"&#{ord(c)};" if not c.isalnum() else c for c in s),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_is_redacted_in_text_and_bytes(form: str) -> None:
    redactor = Redactor([Secret(SECRET)])
    encoded = FORMS[form](SECRET)
    assert CORE in encoded  # the check below can fail
    text = f"before {encoded} middle {encoded} after"
    assert CORE not in redactor.text(text)
    assert redactor.text(text).count(MARK) == 2
    assert CORE.encode() not in redactor.bytes(text.encode())


def test_httpx_illegal_header_value_message(sandbox: Sandbox) -> None:
    # The reported leak: a two-line key quoted whole in httpx's complaint.
    key = f"key-{CORE}\nsecond-line"
    message = httpx_header_error(key, sandbox.url)
    assert "Illegal header value" in message and CORE in message
    assert CORE not in Redactor([Secret(key)]).text(message)


def test_a_traceback_quoting_a_secret() -> None:
    redactor = Redactor([Secret(SECRET)])
    try:
        raise ValueError(f"bad value {SECRET!r}")
    except ValueError as exc:
        trace = "".join(traceback.format_exception(exc))
    assert CORE in trace and CORE not in redactor.text(trace)


def test_other_text_is_left_alone() -> None:
    redactor = Redactor([Secret(f"k/{CORE}")])
    text = f"{CORE} alone, k/ alone, %2F, \\/ and &amp; are not the secret"
    assert redactor.text(text) == text
    assert redactor.text(f"x k/{CORE} y") == f"x {MARK} y"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor([Secret("abc123"), Secret("xyz-abc123-def")])
    assert redactor.text("xyz-abc123-def abc123") == f"{MARK} {MARK}"


def test_minted_secrets_are_added_and_bounded() -> None:
    redactor = Redactor([Secret("configured-1")])
    tokens = [f"token-{i}-{CORE}" for i in range(KEEP_MINTED + 1)]
    for token in tokens:
        redactor.add(Secret(token))
    assert redactor.text(tokens[-1]) == MARK
    assert redactor.text(tokens[1]) == MARK
    assert redactor.text(tokens[0]) == tokens[0]  # the oldest went
    assert redactor.text("configured-1") == MARK  # configured ones always stay
    redactor.add(Secret("configured-1"))  # known already: no slot taken
    assert redactor.text(tokens[1]) == MARK


def test_redact_everywhere_knows_every_live_redactor() -> None:
    first, second = Redactor([Secret(f"first-{CORE}")]), Redactor()
    second.add(Secret(f"second-{CORE}"))
    line = f"first-{CORE} second-{CORE}"
    assert redact_everywhere(line) == f"{MARK} {MARK}"
    del first, second


def test_a_large_echoing_body_stays_fast() -> None:
    # A secret starting with punctuation cannot use the regex engine's literal prefix
    # search; the windows around its letters keep it linear.
    secret = f"/+ .{CORE}"
    redactor = Redactor([Secret(secret)])
    body = ((b"x/%&\\" * 200 + quote(secret, safe="").encode() + b" ") * 16_000)
    began = time.process_time()
    redacted = redactor.bytes(body)
    assert time.process_time() - began < 3.0  # ~0.3 s here; a full scan took 2 s per pass
    assert CORE.encode() not in redacted and redacted.count(MARK.encode()) == 16_000
