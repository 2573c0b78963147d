"""Every error the program raises on purpose.

::

    AggregatorError
    ├─ ConfigError          .problems, one line each → exit 78
    ├─ SourceError          .kind (stable string for the poll log, metrics, reports)
    │  ├─ TransientError    retried within the poll deadline
    │  │  ├─ Timeout            timeout
    │  │  ├─ Unreachable        unreachable
    │  │  ├─ RateLimited        rate_limited (.retry_after seconds)
    │  │  └─ ServerError        server_error
    │  ├─ AuthError         never retried
    │  │  ├─ BadCredentials     bad_credentials (unknown key, bad signature)
    │  │  ├─ PermissionDenied   permission_denied
    │  │  ├─ ClockSkew          clock_skew
    │  │  ├─ TokenExpired       token_expired (and a refresh did not help)
    │  │  └─ TokenRefreshFailed token_refresh_failed
    │  └─ ResponseError     the answer itself is wrong, even on HTTP 200
    │     ├─ Malformed          malformed (not JSON, bad UTF-8, bad number)
    │     ├─ SchemaMismatch     schema (JSON, but not a shape we know)
    │     └─ ApiError           api_error (.code: an error the exchange reported)
    └─ StorageError

Messages never contain a secret: they are built from status codes, field names and
the exchange's own error text, never from request headers or parameters.
"""

from __future__ import annotations

from typing import ClassVar


class AggregatorError(Exception):
    """Base of every deliberate error."""


class ConfigError(AggregatorError):
    """The configuration cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StorageError(AggregatorError):
    """The database refused or is unreachable."""


class SourceError(AggregatorError):
    """A poll of one account failed."""

    kind: ClassVar[str] = "source_error"
    retryable: ClassVar[bool] = False


class TransientError(SourceError):
    retryable: ClassVar[bool] = True


class Timeout(TransientError):
    kind = "timeout"


class Unreachable(TransientError):
    kind = "unreachable"


class RateLimited(TransientError):
    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
        super().__init__(message)
        self.code = code


# A poll that died of an exception we did not foresee is stored with this kind.
BUG_KIND = "bug"
