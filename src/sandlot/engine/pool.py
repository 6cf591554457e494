"""The warm pool's bookkeeping: a pure state change that says what I/O to do.

``PoolState`` never forks or waits; it records which sandboxes are ready and
how many are starting, and answers "how many should I start now?". The engine
does the I/O outside it. Only the event loop's thread touches it, so it needs
no lock. ``repr`` shows the counts; tests assert on it.

The target adapts to the arrival rate: every request that finds the pool empty
(a miss) raises it by one, up to ``max_target``, so a burst is followed by a
pool big enough for the next one; after ``shrink_after`` seconds without a miss
it falls halfway back toward ``base`` (the configured ``pool_size``), and again
each ``shrink_after`` after that, and the sandboxes above it are retired.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar


class _Poolable(Protocol):
    @property
    def is_ready(self) -> bool: ...


T = TypeVar("T", bound=_Poolable)

REFILL_QUIET = 0.01
"""While a pool has slack, refills wait for this long without a request, so a
burst of requests is not slowed by forks and containment competing for the CPU."""


def max_target(pool_size: int, configured: int | None, max_sandboxes: int) -> int:
    """The most a pool of ``pool_size`` may grow to: the operator's figure (``configured``), or 4x pool_size within
    half of max_sandboxes (each idle pooled sandbox costs ~8 MiB PSS here, benchmarks/bench_core.py; the rest is
    for runs and sessions). 0 or pool_size: a fixed pool."""
    if configured is not None:
        return max(pool_size, min(configured, max_sandboxes))
    return max(pool_size, min(4 * pool_size, max_sandboxes // 2))


class PoolState(Generic[T]):
    def __init__(self, target: int, max_starting: int = 4, *, max_target: int | None = None,
                 shrink_after: float = 30.0) -> None:
        self.base = target
        self.target = target
        self.max_target = max(target, target if max_target is None else max_target)
        self.shrink_after = shrink_after
        self._last_change = 0.0
        """When the target last grew or shrank (the engine's monotonic clock): shrinking waits from there."""
        self.misses = 0
        self.max_starting = max_starting
        self.ready: deque[T] = deque()
        self._dead: list[T] = []
        self.starting = 0
        self.taken = 0
        self.started_total = 0
        self.failed_total = 0
        self.failing = 0
        """Starts that failed in a row (0 once one succeeds): health's "refills are failing"."""

    def __repr__(self) -> str:
        return (f"<PoolState ready={len(self.ready)} starting={self.starting} target={self.target} "
                f"taken={self.taken} failed={self.failed_total}>")

    def take(self) -> T | None:
        """A ready sandbox, or None when the pool is empty (the caller starts one on demand). Dead items
        met on the way (killed while they waited) go to ``take_dead()``: the caller destroys them."""
        while self.ready:
            item = self.ready.popleft()
            if item.is_ready:
                self.taken += 1
                return item
            self._dead.append(item)
        return None

    def missed(self, now: float) -> None:
        """A request found the pool empty: the pool grows by one for the next burst (up to ``max_target``)."""
        self.misses += 1
        if self.target < self.max_target:
            self.target += 1
        self._last_change = now

    def shrink_if_idle(self, now: float) -> list[T]:
        """Past ``shrink_after`` without a miss (or a shrink), the target falls halfway back to ``base``; the
        ready sandboxes above it are removed and returned (the caller destroys them)."""
        if self.target <= self.base or now - self._last_change < self.shrink_after:
            return []
        self.target -= max(1, (self.target - self.base) // 2)
        self._last_change = now
        surplus: list[T] = []
        while len(self.ready) > self.target:
            surplus.append(self.ready.pop())  # the newest: the oldest have waited longest and go first anyway
        return surplus

    def take_dead(self) -> list[T]:
        """The dead items ``take()`` skipped since the last call, removed."""
        items, self._dead = self._dead, []
        return items

    def starts_needed(self, waiting: int = 0) -> int:
        """How many sandboxes to start now (for the pool, and for ``waiting`` requests that found it empty);
        they count as starting from here on."""
        want = self.target + waiting - len(self.ready) - self.starting
        n = max(0, min(want, self.max_starting - self.starting))
        self.starting += n
        return n

    def start_finished(self, item: T | None) -> None:
        """A start has ended, with a ready sandbox or (None) a failure."""
        self.starting -= 1
        if item is None:
            self.failed_total += 1
            self.failing += 1
        else:
            self.started_total += 1
            self.failing = 0
            self.ready.append(item)

    def start_abandoned(self) -> None:
        """A start given up for a reason that is not the pool's (the zygote is restarting): no failure."""
        self.starting -= 1

    def drain(self) -> list[T]:
        """Every ready item, removed (their zygote is gone; the caller destroys them)."""
        items = list(self.ready)
        self.ready.clear()
        return items

    def give_back(self, item: T) -> None:
        """A taken sandbox that was not used after all returns to the front of the pool."""
        self.taken -= 1
        self.ready.appendleft(item)
