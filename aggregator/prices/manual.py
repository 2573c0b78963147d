"""Prices you write yourself: a CSV file with the header ``base,quote,time,price``.

The file is read at every fetch and backfill (``read_file``); every row is given each
time and storage keeps a row it already has once. A row whose time is a date
(``2026-11-24``) is the close of that day, observed at its end (the next day, 00:00 UTC);
one with an ISO 8601 time (``2026-11-24T08:00:00Z``, ``2026-11-24 16:00+08:00``; no zone
means UTC) is a live price at that instant. A row whose time has not come yet is left
out until it has.

Strict, because a typo here is a wrong net worth: any bad row fails the fetch with its
line number (nothing of the file is stored until it is fixed). Blank lines and lines
starting with ``#`` are skipped; columns besides the four are allowed and ignored.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from aggregator import errors
from aggregator.model import RawResponse
from aggregator.prices.base import Answers, PriceConfig, PriceRequest, PriceSource
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.parsing import end_of_day, required_price
from aggregator.sources.base import check_status, expect, require_symbol

COLUMNS = ("base", "quote", "time", "price")
MAX_FILE = 8 * 1024 * 1024
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}"
                     r"(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?")


@dataclass(frozen=True, kw_only=True)
class ManualPrices(PriceConfig):
    file: str
    base_url: str = ""  # no URL: the file is read where it is


def file_request(config: ManualPrices, *_: object) -> list[PriceRequest]:
    """The one "request" of a fetch: never sent, ``read_file`` answers it."""
    return [PriceRequest(httpx.Request("GET", Path(config.file).absolute().as_uri()))]


def read_file(config: ManualPrices) -> RawResponse:
    """The file's bytes as an answer, or the error a poll would have for a missing host."""
    try:
        with open(config.file, "rb") as f:
            body = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        raise errors.Unreachable(f"{config.file}: no such file") from None
    except PermissionError:
        raise errors.PermissionDenied(f"{config.file}: permission denied") from None
    except OSError as exc:
        raise errors.Unreachable(f"{config.file}: cannot be read ({exc.strerror})") from None
    if len(body) > MAX_FILE:
        raise errors.AnswerTooLarge(f"{config.file}: over {MAX_FILE // 1024 // 1024} MiB")
    return RawResponse(endpoint=config.file, status=200, body=body, content_type="text/csv")


def _instant(text: str, where: str) -> tuple[PriceKind, datetime]:
    try:
        if DAY.fullmatch(text):
            return PriceKind.DAILY, end_of_day(date.fromisoformat(text))
        if INSTANT.fullmatch(text):
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if instant.tzinfo is None:
                return PriceKind.LIVE, instant.replace(tzinfo=UTC)
            return PriceKind.LIVE, instant.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise errors.SchemaMismatch(f"{where}: {text[:40]!r} is neither a date (YYYY-MM-DD) nor "
                                "an ISO 8601 time (YYYY-MM-DDTHH:MM[:SS][zone])")


def _rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, cells by column) of every row after the header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                missing = [c for c in COLUMNS if c not in header]
                expect(not missing and len(set(header)) == len(header),
                       f"line {line}: the header must name the columns "
                       f"{','.join(COLUMNS)} once each")
                continue
            expect(len(cells) == len(header),
                   f"line {line}: {len(cells)} fields where the header has {len(header)}")
            rows.append((line, {c: cells[header.index(c)].strip() for c in COLUMNS}))
    except csv.Error as exc:
        raise errors.Malformed(f"line {reader.line_num}: not CSV ({exc})") from None
    expect(header is not None, f"no header line {','.join(COLUMNS)}")
    return rows


def parse_file(config: ManualPrices, answers: Answers, fetched_at: datetime
               ) -> list[Observation]:
    """Every row of the file whose time has come, live and daily alike."""
    expect(len(answers) == 1, f"expected 1 answer, got {len(answers)}")
    ((_, response),) = answers
    check_status(response)
    try:
        text = response.body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.Malformed(f"not UTF-8 (byte {exc.start})") from None
    observations: list[Observation] = []
    first_line: dict[tuple[str, str, PriceKind, datetime], tuple[int, Observation]] = {}
    for line, row in _rows(text):
        where = f"line {line}"
        base = require_symbol(row["base"], f"{where}: base")
        quote = require_symbol(row["quote"], f"{where}: quote")
        expect(base != quote, f"{where}: base and quote are both {base}")
        kind, observed = _instant(row["time"], f"{where}: time")
        value = required_price(row["price"], f"{where}: price")
        key = (base, quote, kind, observed)
        if key in first_line:
            other, seen = first_line[key]
            expect(seen.price == value, f"{where}: {base}/{quote} at {row['time']} has a "
                   f"different price on line {other}")
            continue
        observation = Observation(base, quote, kind, observed, value)
        first_line[key] = (line, observation)
        if observed <= fetched_at:
            observations.append(observation)
    return observations


SOURCE = PriceSource(
    name="manual",
    title="Manual prices",
    config=ManualPrices,
    default_base_url=None,
    rate_limit=None,
    live_requests=file_request,
    parse_live=parse_file,
    history_requests=file_request,
    parse_history=parse_file,
    read_local=read_file,
)
