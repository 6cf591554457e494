"""Fair hand-out of pooled sandboxes between tenants (API keys) when they are scarce.

While the pool has sandboxes to spare, a request takes one at once, whoever sent it: that is the fast path,
one dictionary look-up more than first come, first served. When it runs short, requests wait in one queue
per tenant, and each sandbox the refills make goes to the waiting tenant that holds the fewest sandboxes now
(oldest request first within a tenant; the tenant served longest ago first among equals). So a tenant that
floods the server waits for its own earlier requests, and one that sends a request now and then is served
with the next sandbox, however long the flood's queue is.

Two rules keep a flood from taking what another tenant needs next:

- The pool's last ``RESERVE`` sandboxes are kept, while refills are on their way, for a tenant that holds no
  sandbox, or for anyone when no other tenant asked for one in the last ``RECENT`` seconds (one tenant alone
  loses nothing). A tenant already waiting never jumps its own queue to take them.
- A tenant's *share* is ``max_sandboxes`` divided among the tenants that hold or wait for sandboxes. One that
  would have to wait while it already holds and waits for its share gets ``CapacityError`` (429 with
  Retry-After) at once rather than a place in a queue without bound; a place in the queue lasts at most
  ``MAX_WAIT`` seconds.

A request that can run in a sandbox of the lean zygote too (``imports``) says so when it queues (``lean``): the
lean pool's sandboxes go to those waiters by the same rule (``next_waiter(lean=True)``), and a new request takes a
ready lean sandbox at once only while none of them waits (``lean_waiting``), so that pool is first come, first
served as well.

Like ``PoolState`` this is bookkeeping only: the engine hands the sandboxes over and does the I/O; only the
event loop's thread touches it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from .._errors import CapacityError

T = TypeVar("T")

RESERVE = 1
RECENT = 10.0
MAX_WAIT = 10.0
"""Seconds a request waits in its tenant's queue for a sandbox before it gets a 429."""


class Handout(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held: dict[str, int] = {}
        """Sandboxes each tenant holds now: runs in flight and open sessions."""
        self._queues: dict[str, deque[tuple[int, asyncio.Future[T], bool]]] = {}
        """Each tenant's waiting requests, oldest first: (ticket, future, whether a lean sandbox will do)."""
        self._asked: dict[str, float] = {}
        self._served: dict[str, int] = {}
        self._ticket = itertools.count()

    def __repr__(self) -> str:
        waiting = {tenant: len(queue) for tenant, queue in self._queues.items()}
        return f"<Handout held={self.held} waiting={waiting}>"

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    @property
    def lean_waiting(self) -> int:
        """How many waiting requests would take a lean sandbox."""
        return sum(lean for queue in self._queues.values() for _, _, lean in queue)

    # ---- what tenants hold ---------------------------------------------------------

    def hold(self, tenant: str) -> None:
        self.held[tenant] = self.held.get(tenant, 0) + 1

    def release(self, tenant: str) -> None:
        left = self.held.get(tenant, 0) - 1
        if left > 0:
            self.held[tenant] = left
        else:
            self.held.pop(tenant, None)

    # ---- who gets a sandbox --------------------------------------------------------

    def may_take(self, tenant: str, ready: int, starting: int) -> bool:
        """Whether ``tenant`` may take one of ``ready`` pooled sandboxes now, ahead of every queue."""
        now = time.monotonic()
        self._asked[tenant] = now
        if len(self._asked) > 256:  # tenants that asked long ago no longer count: forget them
            self._asked = {t: asked for t, asked in self._asked.items() if now - asked < RECENT}
        if not self._queues:
            if ready > RESERVE:
                return True  # the fast path: nothing is scarce
            return ready > 0 and (starting == 0 or self._may_have_reserve(tenant, now))
        if tenant in self._queues:
            return False  # behind its own earlier requests
        return ready > RESERVE or (ready > 0 and (starting == 0 or self._may_have_reserve(tenant, now)))

    def enqueue(self, tenant: str, *, lean: bool = False) -> asyncio.Future[T]:
        """A place in ``tenant``'s queue; the future gets a sandbox (a lean one too, with ``lean``).
        CapacityError past the tenant's share."""
        queue = self._queues.get(tenant)
        mine = self.held.get(tenant, 0) + (len(queue) if queue else 0)
        share = self.share(tenant)
        if mine >= share:
            raise CapacityError(f"sandboxes are scarce and this key holds or waits for {mine}, its share of "
                                f"{self.capacity} between {self._tenants_in_play(tenant)} keys; retry shortly",
                                retry_after=1.0)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(tenant, deque()).append((next(self._ticket), future, lean))
        return future

    def share(self, tenant: str) -> int:
        """How many sandboxes ``tenant`` may hold and wait for together while they are scarce."""
        return max(1, self.capacity // self._tenants_in_play(tenant))

    def next_waiter(self, ready: int, starting: int, *, lean: bool | None = None) -> asyncio.Future[T] | None:
        """The waiting request to hand one of ``ready`` sandboxes to (taken out of its queue), or None. ``lean``
        True (a lean sandbox): only a request that said a lean one will do; False: only one that did not (the
        others wait for the lean zygote's); None: any."""
        if ready == 0:
            return None
        now = time.monotonic()
        keep_reserve = ready <= RESERVE and starting > 0
        best: tuple[int, int, int] | None = None
        chosen: tuple[str, tuple[int, asyncio.Future[T], bool]] | None = None
        for tenant, queue in self._queues.items():
            if keep_reserve and not self._may_have_reserve(tenant, now):
                continue
            oldest = queue[0] if lean is None else next((entry for entry in queue if entry[2] is lean), None)
            if oldest is None:
                continue
            rank = (self.held.get(tenant, 0), self._served.get(tenant, -1), oldest[0])
            if best is None or rank < best:
                best, chosen = rank, (tenant, oldest)
        if chosen is None:
            return None
        tenant, entry = chosen
        queue = self._queues[tenant]
        queue.remove(entry)
        if not queue:
            del self._queues[tenant]
        self._served[tenant] = next(self._ticket)
        return entry[1]

    def withdraw(self, tenant: str, future: asyncio.Future[T]) -> None:
        """A request that stopped waiting (cancelled, timed out) leaves its queue."""
        queue = self._queues.get(tenant)
        if queue is None:
            return
        for entry in queue:
            if entry[1] is future:
                queue.remove(entry)
                break
        if not queue:
            del self._queues[tenant]

    def fail_all(self, error: Callable[[], BaseException]) -> None:
        """Every waiting request gets an ``error()`` (the zygote is restarting, the engine is closing)."""
        for queue in self._queues.values():
            for _, future, _lean in queue:
                if not future.done():
                    future.set_exception(error())
        self._queues.clear()

    # ---- internals ------------------------------------------------------------------

    def _may_have_reserve(self, tenant: str, now: float) -> bool:
        return self.held.get(tenant, 0) == 0 or not any(
            other != tenant and now - asked < RECENT for other, asked in self._asked.items())

    def _tenants_in_play(self, tenant: str) -> int:
        return len({tenant, *self.held, *self._queues})
