"""Remove secret values from anything that is kept or shown, escaped forms included.

Libraries rarely quote a value as it is: httpx's "Illegal header value b'...'" is a
repr (a line break shows as ``\\n``), a server echoing a request writes JSON (``\\/``,
``\\u00e9``, ``\\u003c``), a URL or form body percent-encodes (``%2F``, ``+``), an HTML
error page uses entities (``&amp;``). So each secret becomes a pattern in which every
character may appear in any of those forms, at any depth of backslash escaping, mixed
freely. Letters and digits are never escaped by any of them, which makes the secret's
longest run of them a cheap test before the pattern runs at all.

Base64 is not covered: no source sends a credential base64-encoded (BitoPro's payload
encodes the identity and a nonce, a JWT's signature is an HMAC output).
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from aggregator.model import Secret

log = logging.getLogger(__name__)

MARK = "[redacted]"
# Tokens minted at run time that are still redacted; older ones have expired long ago
# (a PiTrade token lives 15 minutes) and an account re-signing for months must not grow.
KEEP_MINTED = 16

# One escape, or an escape escaped again (JSON of a repr), up to a depth that bounds how
# long one character's form can be.
_BACKSLASHES = r"\\{1,4}"
_LONGEST_FORM = 32  # characters; the bytes repr of a 4-byte UTF-8 character is 28
_SHORT_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f", "\v": "v",
                  "\a": "a", "\0": "0"}
_HTML_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "(?:apos|#39)"}
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
AnyStr = TypeVar("AnyStr", str, bytes)


def _hex(value: int, digits: int) -> str:
    return f"(?i:{value:0{digits}x})"


def _char_forms(char: str) -> str:
    """A regex for one character of a secret in every form an encoder may give it."""
    if char.isascii() and char.isalnum():
        return char
    code = ord(char)
    utf8 = char.encode("utf-8", "surrogatepass")
    forms = [re.escape(char)]
    if char == "\\":
        forms = [_BACKSLASHES]
    elif char in "\"'/":
        forms.append(_BACKSLASHES + re.escape(char))  # JSON \" \/, repr \'
    if char in _SHORT_ESCAPES:
        forms.append(_BACKSLASHES + _SHORT_ESCAPES[char])
    if code < 0x100:
        forms.append(_BACKSLASHES + "x" + _hex(code, 2))  # repr of str
    if code < 0x10000:
        forms.append(_BACKSLASHES + "u" + _hex(code, 4))  # JSON, repr
    else:
        high, low = divmod(code - 0x10000, 0x400)
        forms.append(_BACKSLASHES + "u" + _hex(0xD800 + high, 4)
                     + _BACKSLASHES + "u" + _hex(0xDC00 + low, 4))  # JSON surrogate pair
        forms.append(_BACKSLASHES + "U" + _hex(code, 8))  # repr
    if len(utf8) > 1:
        forms.append("".join(_BACKSLASHES + "x" + _hex(b, 2) for b in utf8))  # repr of bytes
    forms.append("".join("%" + _hex(b, 2) for b in utf8))  # URL, form body
    if char == " ":
        forms.append(r"\+")  # form body
    forms.append(f"&#(?:0{{0,3}}{code}|(?i:x0{{0,3}}{code:x}));")  # HTML
    if char in _HTML_NAMES:
        forms.append(f"&{_HTML_NAMES[char]};")
    return "(?:" + "|".join(forms) + ")"


@dataclass(frozen=True)
class _Pattern:
    """One secret: its pattern, and where around its anchor a match can lie."""

    length: int
    anchor: str  # the longest run of letters and digits: every form contains it as is
    before: int  # at most this many characters of a match precede the anchor
    after: int  # ... and follow it
    text_pattern: re.Pattern[str]
    bytes_pattern: re.Pattern[bytes]

    @classmethod
    def of(cls, value: str) -> _Pattern:
        source = "".join(_char_forms(c) for c in value)
        anchor = max(_ALNUM_RUN.findall(value), key=len, default="")
        at = value.index(anchor) if anchor else 0
        return cls(len(value), anchor, _LONGEST_FORM * at,
                   _LONGEST_FORM * (len(value) - at - len(anchor)),
                   re.compile(source), re.compile(source.encode("utf-8", "surrogatepass")))

    def redact_text(self, value: str) -> str:
        return self._sub(value, self.anchor, self.text_pattern, MARK)

    def redact_bytes(self, value: bytes) -> bytes:
        return self._sub(value, self.anchor.encode(), self.bytes_pattern, MARK.encode())

    def _sub(self, value: AnyStr, anchor: AnyStr, pattern: re.Pattern[AnyStr],
             mark: AnyStr) -> AnyStr:
        if not anchor:
            return pattern.sub(mark, value)
        # The pattern runs only in a window around each place the anchor is: in a body of
        # megabytes that echoes a secret, a scan from every position would take seconds.
        pieces: list[AnyStr] = []
        done = 0  # value[:done] is in pieces
        at = value.find(anchor)
        while at != -1:
            end = at + len(anchor) + self.after
            match = pattern.search(value, max(done, at - self.before), end)
            while match is not None and match.end() <= at:
                match = pattern.search(value, match.end(), end)
            if match is not None and match.start() <= at:
                pieces += [value[done:match.start()], mark]
                done = match.end()
                at = value.find(anchor, done)
            else:
                at = value.find(anchor, at + 1)
        if not pieces:
            return value
        pieces.append(value[done:])
        return value[:0].join(pieces)


class Redactor:
    """Replaces every occurrence of the given secrets, in text and in bytes.

    ``add`` registers a credential that exists only at run time (a fetched or signed
    token); auths call it through ``aggregator.auth.minted.MintsSecrets``.
    """

    def __init__(self, secrets: Iterable[Secret] = (), owner: str = "") -> None:
        self._owner = owner  # the account, for the debug line
        self._guard = threading.Lock()
        self._configured = {s.reveal(): _Pattern.of(s.reveal()) for s in secrets if s.reveal()}
        self._minted: dict[str, _Pattern] = {}  # oldest first
        self.patterns: tuple[_Pattern, ...] = ()
        self._publish()

    def add(self, secret: Secret) -> None:
        """Also redact ``secret`` from now on."""
        value = secret.reveal()
        if not value or value in self._configured or value in self._minted:
            return
        pattern = _Pattern.of(value)
        with self._guard:
            self._minted[value] = pattern
            while len(self._minted) > KEEP_MINTED:
                del self._minted[next(iter(self._minted))]
            self._publish()
        log.debug("%s: a new run-time credential is redacted from now on (%d kept)",
                  self._owner or "redactor", len(self._minted))

    def _publish(self) -> None:
        # Longest first, so a secret containing another is replaced whole. Readers take
        # the tuple as a whole: add() may run in another thread.
        self.patterns = tuple(sorted([*self._configured.values(), *self._minted.values()],
                                     key=lambda p: p.length, reverse=True))
        _everyone.changed(self)

    def text(self, value: str) -> str:
        for pattern in self.patterns:
            value = pattern.redact_text(value)
        return value

    def bytes(self, value: bytes) -> bytes:
        for pattern in self.patterns:
            value = pattern.redact_bytes(value)
        return value


class _Everyone:
    """The patterns of every live redactor, indexed by the first characters of their
    anchors: a log line is matched only against secrets whose anchor could be in it, so
    a daemon of a thousand accounts pays microseconds per line, not milliseconds."""

    GRAM = 4

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()
        self._index: tuple[tuple[_Pattern, ...], dict[str, list[_Pattern]]] | None = None

    def changed(self, redactor: Redactor) -> None:
        with self._guard:
            if redactor not in self._redactors:
                self._redactors.add(redactor)
                # Its patterns leave the index with it. No lock: a finalizer may run in
                # the middle of anything, and one assignment is atomic.
                weakref.finalize(redactor, self._forget)
            self._index = None

    def _forget(self) -> None:
        self._index = None

    def _built(self) -> tuple[tuple[_Pattern, ...], dict[str, list[_Pattern]]]:
        with self._guard:
            if self._index is None:
                short: list[_Pattern] = []
                by_gram: dict[str, list[_Pattern]] = {}
                for redactor in list(self._redactors):
                    for pattern in redactor.patterns:
                        if len(pattern.anchor) < self.GRAM:
                            short.append(pattern)
                        else:
                            by_gram.setdefault(pattern.anchor[:self.GRAM], []).append(pattern)
                self._index = (tuple(short), by_gram)
            return self._index

    def redact(self, value: str) -> str:
        short, by_gram = self._built()
        found = set(short)
        for at in range(len(value) - self.GRAM + 1):
            hit = by_gram.get(value[at:at + self.GRAM])
            if hit:
                found.update(hit)
        for pattern in sorted(found, key=lambda p: p.length, reverse=True):
            value = pattern.redact_text(value)
        return value


_everyone = _Everyone()


def redact_everywhere(value: str) -> str:
    """``value`` without any secret of any account of this process: for log lines."""
    return _everyone.redact(value)
