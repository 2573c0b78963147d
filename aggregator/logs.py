"""Logging to stderr for journald: plain lines, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from aggregator.polling.redact import redact_everywhere

LOG_FORMATS = ("text", "json")
# Libraries that log URLs (a Bitzoom test-token URL carries the user id) or whole request
# and response headers (httpcore's trace at DEBUG: an echoing server returns the API key)
# stay quiet below WARNING, with -v too.
QUIET = ("httpx", "httpcore", "hpack", "h2", "h11", "urllib3", "apscheduler", "alembic")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a poll line carries its fields under "poll"."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        poll = getattr(record, "poll", None)
        if isinstance(poll, dict):
            data.update(poll)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class Redacting(logging.Formatter):
    """Another formatter's line without any secret of any account of this process.

    The last line of defence: whatever a library puts into a message or a traceback.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_everywhere(self._inner.format(record))


def setup_logging(verbose: bool = False, fmt: str = "text") -> None:
    """One handler on stderr; ``verbose``: debug lines of aggregator itself.

    Other libraries stay at INFO even then (``QUIET`` ones at WARNING): what they print
    at DEBUG is theirs to choose, headers and connection strings included.
    """
    handler = logging.StreamHandler(sys.stderr)
    # journald adds its own timestamps; the level is enough in front of the message.
    handler.setFormatter(Redacting(JsonFormatter() if fmt == "json"
                                   else logging.Formatter("%(levelname)s %(name)s: %(message)s")))
    handler.set_name("aggregator")
    root = logging.getLogger()
    # Replace only our own handler: others (a test's log capture) stay.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "aggregator"] + [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aggregator").setLevel(logging.DEBUG if verbose else logging.NOTSET)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
