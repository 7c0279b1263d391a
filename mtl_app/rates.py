"""How often one client address may call the server: a token bucket per address, checked by
server.RequestLimits before Gradio sees the request. A script that sends requests back to back (a
malformed prediction sixty times a second, a flood of cheap events that would fill Gradio's shared
queue) is answered 429 at the door, at almost no cost, while the visitors beside it go on."""

import dataclasses
import math
import threading
import time


@dataclasses.dataclass(frozen=True)
class Rate:
    """`per_second` sustained, `burst` at once (a bucket of `burst` tokens, refilled at `per_second`)."""

    per_second: float
    burst: int

    def __post_init__(self):
        if not (self.per_second > 0 and self.burst >= 1):
            raise ValueError(f"a rate needs per_second > 0 and burst >= 1, got {self}")


class Buckets:
    """One token bucket per key (a client address). take(key) spends a token and says whether there
    was one; when not, retry_after(key) is how many seconds until there is. At most `max_keys` keys
    are remembered: past that, the keys whose buckets are full again (idle clients) are forgotten,
    then the oldest."""

    def __init__(self, rate: Rate, max_keys: int = 100_000, clock=time.monotonic):
        self.rate, self.max_keys, self.clock = rate, max_keys, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (self.rate.burst, now))
        return min(self.rate.burst, tokens + (now - then) * self.rate.per_second)

    def take(self, key: str) -> bool:
        with self._lock:
            now = self.clock()
            tokens = self._tokens(key, now)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - allowed, now)
            if len(self._buckets) > self.max_keys:
                self._forget(now)
            return allowed

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` has a token again (at least 1)."""
        with self._lock:
            missing = 1.0 - self._tokens(key, self.clock())
        return max(1, math.ceil(missing / self.rate.per_second))

    def _forget(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.rate.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) > self.max_keys:  # every client still busy: keep the newest half
            keep = sorted(self._buckets.items(), key=lambda kv: kv[1][1])[len(self._buckets) // 2 :]
            self._buckets = dict(keep)
