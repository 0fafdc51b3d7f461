"""Retry policy: how many attempts, how long each may run, how long to wait between them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from toolctl.instrument.errors import DEFAULT_RETRYABLE_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one tool call.

    * ``max_attempts``: attempts in total (1 = never retry).
    * ``timeout_ms``: per-attempt timeout (None = none). A late attempt is recorded as an
      error with code ``TIMEOUT``.
    * ``backoff_ms`` × ``multiplier`` ** (n − 1), capped at ``max_backoff_ms``, is the wait
      after attempt n; ``jitter`` (0–1) randomises it down by up to that fraction.
    * ``retryable_codes``: error codes worth another attempt when the tool did not say
      (``ToolError(retryable=...)`` wins over the list).
    """

    max_attempts: int = 3
    timeout_ms: float | None = None
    backoff_ms: float = 100.0
    multiplier: float = 2.0
    max_backoff_ms: float = 10_000.0
    jitter: float = 0.0
    retryable_codes: frozenset[str] = field(default=DEFAULT_RETRYABLE_CODES)

    def __post_init__(self) -> None:
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer ≥ 1, got {self.max_attempts!r}")
        if self.timeout_ms is not None and not self.timeout_ms > 0:
            raise ValueError(f"timeout_ms must be > 0 or None, got {self.timeout_ms!r}")
        # `not x >= 0` rather than `x < 0`: NaN compares false both ways, and a NaN wait
        # would make time.sleep raise out of run() after the first failed attempt.
        if not (self.backoff_ms >= 0 and self.max_backoff_ms >= 0 and self.multiplier >= 1):
            raise ValueError("backoff_ms and max_backoff_ms must be ≥ 0 and multiplier ≥ 1, "
                             f"got {self.backoff_ms!r}, {self.max_backoff_ms!r}, {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter!r}")
        object.__setattr__(self, "retryable_codes", frozenset(self.retryable_codes))

    def is_retryable(self, code: str | None, retryable: bool | None = None) -> bool:
        """Whether an error with this code (and the tool's own opinion) is worth retrying."""
        if retryable is not None:
            return retryable
        return code in self.retryable_codes

    def delay_ms(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt ``attempt`` (1-based) before the next one."""
        base = min(self.backoff_ms * self.multiplier ** (attempt - 1), self.max_backoff_ms)
        if self.jitter:
            base *= 1 - self.jitter * (rng or random).random()
        return base


#: One attempt, no timeout: what a call gets when no policy is given.
NO_RETRY = RetryPolicy(max_attempts=1, backoff_ms=0.0)
