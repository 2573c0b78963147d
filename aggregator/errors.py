"""Every error the program raises on purpose, and the one list of the kinds a poll fails with.

Each class that names a ``kind`` (the stable string in the poll log, metrics and reports:
databases keep it, so it never changes) says whether a poll retries it within its deadline
(``retryable``) and whether it holds every account of its source and host across polls
(``holds_host``). Every ``SourceError`` carries ``.code`` (the exchange's error code or
the HTTP status) and ``.retry_after`` (seconds) when the answer gave them. ``kinds()``
lists them; the poller, the README and the tests derive from it.

::

    AggregatorError
    ├─ ConfigError          .problems, one line each → exit 78
    ├─ SourceError          a poll of one account failed
    │  ├─ TransientError    retried within the poll deadline
    │  │  ├─ Timeout            timeout
    │  │  ├─ Unreachable        unreachable
    │  │  ├─ RateLimited        rate_limited (holds the host: .retry_after, else a growing backoff)
    │  │  └─ ServerError        server_error
    │  ├─ AuthError         never retried
    │  │  ├─ BadCredentials     bad_credentials (unknown key, bad signature)
    │  │  ├─ PermissionDenied   permission_denied
    │  │  ├─ ClockSkew          clock_skew
    │  │  ├─ TokenExpired       token_expired (and a refresh did not help)
    │  │  └─ TokenRefreshFailed token_refresh_failed
    │  ├─ ResponseError     the answer itself is wrong, even on HTTP 200
    │  │  ├─ Malformed          malformed (not JSON, bad UTF-8, bad number)
    │  │  ├─ SchemaMismatch     schema (JSON, but not a shape we know)
    │  │  ├─ ApiError           api_error (an error the exchange reported)
    │  │  └─ AnswerTooLarge     too_large (over the size limit, decompressed; 1st KiB kept)
    │  ├─ HostOnHold        backoff (nothing sent: the host is on hold after a rate limit)
    │  └─ Unexpected        bug (an exception nobody foresaw; its traceback is logged)
    └─ StorageError
       ├─ DatabaseUnavailable  down, frozen, full or read-only: the poll is spooled
       └─ PollUnstorable       unstorable (refused as it is: stored as a failed poll)

Messages never contain a secret: they are built from status codes, field names and
the exchange's own error text, never from request headers or parameters.
"""

from __future__ import annotations

from typing import ClassVar


class AggregatorError(Exception):
    """Base of every deliberate error."""

    # None for the errors that never end a poll (a bad config, a database gone away).
    kind: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False
    holds_host: ClassVar[bool] = False


class ConfigError(AggregatorError):
    """The configuration cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StorageError(AggregatorError):
    """The database refused or is unreachable."""


class DatabaseUnavailable(StorageError):
    """The database cannot take writes now (down, frozen, full, read-only): spool, retry."""


class PollUnstorable(StorageError):
    """This poll cannot be written as it is, however often it is tried."""

    kind: ClassVar[str] = "unstorable"


class SourceError(AggregatorError):
    """A poll of one account failed."""

    # Only a fallback: every class that is raised names its own (a test checks).
    kind: ClassVar[str] = "source_error"

    def __init__(self, message: str, *, code: int | str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class TransientError(SourceError):
    retryable: ClassVar[bool] = True


class Timeout(TransientError):
    kind = "timeout"


class Unreachable(TransientError):
    kind = "unreachable"


class RateLimited(TransientError):
    kind = "rate_limited"
    # Bitzoom bans an IP for repeated excess: no account of that host may ask again soon.
    holds_host = True

    def __init__(self, message: str, retry_after: float | None = None, *,
                 code: int | str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class ServerError(TransientError):
    kind = "server_error"


class AuthError(SourceError):
    pass


class BadCredentials(AuthError):
    kind = "bad_credentials"


class PermissionDenied(AuthError):
    kind = "permission_denied"


class ClockSkew(AuthError):
    kind = "clock_skew"


class TokenExpired(AuthError):
    kind = "token_expired"


class TokenRefreshFailed(AuthError):
    kind = "token_refresh_failed"


class ResponseError(SourceError):
    pass


class Malformed(ResponseError):
    kind = "malformed"


class SchemaMismatch(ResponseError):
    kind = "schema"


class ApiError(ResponseError):
    kind = "api_error"

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message, code=code)


class AnswerTooLarge(ResponseError):
    """An answer over the size limit (after decompression: a bomb too); never retried."""

    kind = "too_large"


class HostOnHold(SourceError):
    """A poll came due while its host is on hold after a rate limit: nothing was sent.

    Not retried within the poll: the hold outlasts it, and the next poll comes anyway.
    """

    kind = "backoff"


class Unexpected(SourceError):
    """Never raised: the kind of a poll that died of an exception nobody foresaw."""

    kind = "bug"


def kinds() -> dict[str, type[AggregatorError]]:
    """Every kind a failed poll is stored with, each with its class, in definition order."""
    found: dict[str, type[AggregatorError]] = {}

    def walk(cls: type[AggregatorError]) -> None:
        kind = vars(cls).get("kind")
        if isinstance(kind, str) and cls is not SourceError and cls.__module__ == __name__:
            if kind in found:
                raise RuntimeError(f"kind {kind!r} named by {found[kind].__name__} and "
                                   f"{cls.__name__}")
            found[kind] = cls
        for sub in cls.__subclasses__():
            walk(sub)

    walk(AggregatorError)
    return found


BUG_KIND = Unexpected.kind
# A poll the database refused as it was is stored as a failed poll of this kind, with its
# raw answers, so the poll log still has it.
UNSTORABLE_KIND = PollUnstorable.kind
