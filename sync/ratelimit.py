"""Token bucket per connection (KASAGI_RATE_LIMIT / KASAGI_RATE_BURST)."""

from __future__ import annotations

from time import monotonic


class TokenBucket:
    __slots__ = ("burst", "dropped", "dropped_since", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = monotonic()
        self.dropped = 0
        self.dropped_since = self.stamp

    def take(self) -> bool:
        """Spend one token; False when the message must be dropped."""
        now = monotonic()
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.stamp = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        if now - self.dropped_since > 10.0:
            self.dropped, self.dropped_since = 0, now
        self.dropped += 1
        return False

    def abusive(self) -> bool:
        """Kept sending long after RATE_LIMITED: more drops than a burst in 10 s."""
        return self.dropped > 2 * self.burst
