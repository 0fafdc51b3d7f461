"""What a tool raises to report a failure the way a gateway envelope describes it."""

from __future__ import annotations

#: The error code recorded when an attempt exceeds its per-attempt timeout.
TIMEOUT = "TIMEOUT"
#: Error codes a RetryPolicy retries unless told otherwise (the gateway codes seen in the wild
#: for transient failures; auth, validation and not-found errors are final).
DEFAULT_RETRYABLE_CODES = frozenset({TIMEOUT, "UNAVAILABLE", "RATE_LIMITED"})


class ToolError(Exception):
    """A tool's failure: a low-cardinality ``code`` (the span's ``error.type``, the event's
    ``error_code``), a ``message`` for humans, and optionally whether a retry can help and the
    HTTP status the tool's upstream answered (401/403 make it an auth failure in toolctl).

    ``retryable=None`` lets the RetryPolicy decide from the code.
    """

    def __init__(self, code: str, message: str = "", *, retryable: bool | None = None,
                 http_status: int | None = None):
        if not isinstance(code, str) or not code:
            raise ValueError("ToolError code must be a non-empty string, e.g. 'UNAVAILABLE'")
        if http_status is not None and (type(http_status) is not int or not -(2**31) <= http_status < 2**31):
            raise ValueError(f"http_status must be a 32-bit integer, got {http_status!r}")
        if retryable is not None and type(retryable) is not bool:
            raise ValueError(f"retryable must be True, False or None, got {retryable!r}")
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.retryable = retryable
        self.http_status = http_status


class ToolTimeoutError(ToolError):
    """An attempt ran past its per-attempt timeout (code ``TIMEOUT``, retryable by default)."""

    def __init__(self, timeout_ms: float):
        super().__init__(TIMEOUT, f"attempt exceeded its {timeout_ms:g} ms timeout")
        self.timeout_ms = timeout_ms


def error_fields(exc: BaseException) -> tuple[str, str, bool | None, int | None]:
    """(code, message, retryable, http_status) of any exception a tool raised.

    A ToolError carries its own; the built-in ``TimeoutError`` maps to ``TIMEOUT``; any other
    exception is recorded under its class name (low cardinality, as OTel's ``error.type`` asks).
    """
    if isinstance(exc, ToolError):
        return exc.code, exc.message, exc.retryable, exc.http_status
    if isinstance(exc, TimeoutError):
        return TIMEOUT, _text_of(exc) or "timed out", None, None
    return type(exc).__name__, _text_of(exc) or type(exc).__name__, None, None


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, or "" when its ``__str__`` raises: recording the failure must not fail
    (the attempt would go unrecorded, and the call be reported ok)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - any __str__ may raise anything
        return ""
