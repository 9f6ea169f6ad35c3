"""Per-user submission rate limit: one token bucket per uid (pure; time is a parameter).

Configured by ``[controller] submit_rate`` (jobs per second a user may keep
submitting; 0 = no limit, the default, as SLURM's rate limiting is off by
default) and ``submit_burst`` (how many may come at once; default ten seconds'
worth, at least 1). Operators (root and the controller's own user) are exempt,
as SLURM exempts root and SlurmUser. A refused submission changes nothing and
is answered ``RESOURCE_EXHAUSTED`` with how long to wait.
"""

from __future__ import annotations

__all__ = ["SubmitLimiter"]


class SubmitLimiter:
    """Token buckets keyed by uid."""

    def __init__(self, rate: float, burst: int = 0, max_users: int = 100_000) -> None:
        self.rate = max(0.0, rate)
        self.burst = float(burst if burst > 0 else max(1, round(self.rate * 10)))
        self.max_users = max_users
        self._buckets: dict[int, tuple[float, float]] = {}  # uid -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, uid: int, now: float, n: int = 1) -> float:
        """Take ``n`` tokens for ``uid``; returns 0 if allowed, else seconds to wait."""
        if not self.enabled:
            return 0.0
        tokens, at = self._buckets.get(uid, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens < n:
            self._buckets[uid] = (tokens, now)
            return (n - tokens) / self.rate
        if len(self._buckets) >= self.max_users and uid not in self._buckets:
            self._forget_full(now)
        self._buckets[uid] = (tokens - n, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no information)."""
        for uid, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[uid]
