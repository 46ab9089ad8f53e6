"""Reconnect delays: exponential, capped, with jitter so clients do not reconnect in lockstep.

A frozen value object with no clock and no sleeping; the random source can be
injected, so the delays are testable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]

# 2**64 times any sane initial delay is far past any cap; stops float overflow.
_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial * factor**(attempt-1)``, capped at ``max_delay``, minus up to ``jitter`` of it.

    With the defaults the waits are about 0.25-0.5 s, 0.5-1 s, 1-2 s ... up to
    15-30 s. ``jitter`` is a fraction in [0, 1]: 0 gives exact delays.
    """

    initial: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max_delay < 0 or self.factor < 1:
            raise ValueError("initial and max_delay must be >= 0 and factor >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (1 for the first)."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        base = min(self.max_delay, self.initial * self.factor**exponent)
        return base * (1.0 - self.jitter * rand())
