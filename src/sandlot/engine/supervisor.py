"""Zygote supervision: keep one running, replace it when it dies or stalls.

The engine cannot serve a run without a zygote. ``ZygoteSupervisor`` watches
the one it has: its control socket closing means it died; a ping unanswered,
with nothing else heard from it meanwhile (any message is a sign of life), for
``STOPPED_LIMIT`` seconds while the process is stopped (``T`` in /proc), or for
``STALL_LIMIT`` seconds while it is runnable but starved, means it stalled, and
it is killed. Either
way the engine is told (``on_lost``: it kills every sandbox of that zygote,
so none outlives it, and fails only the requests in flight), and a new zygote
is started. A zygote that keeps dying soon after it starts is restarted after
a growing delay (``backoff``), logged loudly, and reported by ``state``.

States::

    up ──stopped, or 5 s without an answer──▶ unresponsive ──answers──▶ up
    up/unresponsive ──died/stalled──▶ restarting ──ready──▶ up
                             │  └──start failed──▶ backing_off ──delay──▶ restarting
    any ──stop()──▶ stopped
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._errors import RestartingError, SetupError
from .zygote import Zygote

log = logging.getLogger("sandlot")

PING_INTERVAL = 1.0
UNRESPONSIVE_AFTER = 0.5
"""A ping unanswered this long gets a closer look: is the zygote stopped (``T`` in /proc)?"""
SLOW_LIMIT = 5.0
"""A runnable zygote that leaves a ping unanswered this long is reported ``unresponsive`` (spawns wait);
a stopped one at once. Under load the zygote, at low priority, can take a while to answer (the soak
saw 0.5 s reported as unresponsive fail hundreds of requests that would have been served)."""
STOPPED_LIMIT = 2.0
"""Seconds a zygote that is stopped (SIGSTOP, a debugger) may stay unresponsive before it is replaced."""
STALL_LIMIT = 30.0
"""Seconds a runnable (not stopped) zygote may leave pings unanswered: on a busy host at its low
priority it can be starved for a while, and killing it needlessly would cost every session its state."""
STABLE_AFTER = 10.0
"""A zygote that lived this long was healthy: the next restart is immediate again."""
MAX_BACKOFF = 30.0


async def _answered(pong: asyncio.Future[None], zygote: Zygote, timeout: float, asked_at: float) -> bool:
    """Whether the zygote showed it is alive within ``timeout``: it answered the ping, or sent anything at all
    since ``asked_at`` (a ping waits behind the spawn requests sent before it, and a zygote busy forking
    them is working, not stalled). False as soon as the zygote exits."""
    watched: set[asyncio.Future[Any]] = {pong, zygote.exited}
    done, _ = await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    return pong in done or (zygote.exited not in done and zygote.last_heard >= asked_at)


def backoff(failures: int) -> float:
    """Seconds to wait before restart attempt number ``failures`` in a row (the first is immediate)."""
    return 0.0 if failures <= 1 else min(MAX_BACKOFF, 0.25 * 2 ** (failures - 2))


@dataclass(frozen=True)
class SupervisorState:
    """What health reports about the zygote."""

    state: str
    pid: int | None
    restarts: int
    consecutive_failures: int
    retry_in: float | None
    last_error: str | None


class ZygoteSupervisor:
    """Owns the current zygote; ``current()`` is the one to spawn from, or an error while restarting."""

    def __init__(self, make_zygote: Callable[[], Zygote], on_lost: Callable[[Zygote, str], Awaitable[None]]) -> None:
        self._make = make_zygote
        self._on_lost = on_lost
        self.zygote = make_zygote()
        self.state = "starting"
        self.restarts = 0
        self.failures = 0
        self.last_error: str | None = None
        self._retry_at: float | None = None
        self._up = asyncio.Event()
        self._started_at = 0.0
        self.on_up: list[Callable[[], None]] = []
        """Called whenever a zygote (first or replacement) is up and answering."""

    def __repr__(self) -> str:
        return f"<ZygoteSupervisor {self.state} pid={self.zygote.pid} restarts={self.restarts}>"

    async def start(self) -> None:
        """Start the first zygote; its failure is the engine's (a SetupError at start-up)."""
        await self.zygote.start()
        self._became_up()

    def current(self) -> Zygote:
        """The zygote to spawn from now; RestartingError while a new one is being started."""
        if self.state != "up":
            raise RestartingError(f"the zygote is {self.state.replace('_', ' ')}; retry shortly",
                                  retry_after=self.retry_after())
        return self.zygote

    async def wait_up(self, timeout: float) -> Zygote:
        """The zygote, waiting up to ``timeout`` seconds for a restart to finish."""
        if self.state != "up" and self.state != "stopped":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), timeout)
        return self.current()

    def retry_after(self) -> float:
        if self._retry_at is not None:
            return max(1.0, self._retry_at - time.monotonic())
        return 1.0

    def snapshot(self) -> SupervisorState:
        retry_in = max(0.0, self._retry_at - time.monotonic()) if self._retry_at is not None else None
        return SupervisorState(self.state, self.zygote.pid, self.restarts, self.failures, retry_in, self.last_error)

    async def watch(self) -> None:
        """Run for the engine's life: wait for the zygote to die or stall, then replace it."""
        while self.state != "stopped":
            reason = await self._until_lost(self.zygote)
            if self.state == "stopped":
                return
            await self._replace(reason)

    async def stop(self) -> None:
        self.state = "stopped"
        self._up.clear()
        await self.zygote.stop()

    # ---- internals -----------------------------------------------------------------

    def _became_up(self) -> None:
        self.state = "up"
        self._retry_at = None
        self._started_at = time.monotonic()
        self._up.set()
        for callback in self.on_up:
            callback()

    async def _until_lost(self, zygote: Zygote) -> str:
        """Returns why ``zygote`` is lost: it exited, or it stalled (then it has been killed)."""
        while True:
            done, _ = await asyncio.wait({zygote.exited}, timeout=PING_INTERVAL)
            if done:
                return zygote.exited.result()
            asked_at = time.monotonic()
            pong = zygote.ping()
            if pong is None or not await _answered(pong, zygote, UNRESPONSIVE_AFTER, asked_at):
                if zygote.exited.done():
                    return zygote.exited.result()
                stalled = await self._until_answered(zygote, pong)
                if stalled is not None:
                    return stalled
                if self.state == "unresponsive":
                    log.warning("sandlot: the zygote (pid %s) answers again", zygote.pid)
                    self.state = "up"
                    self._up.set()

    async def _until_answered(self, zygote: Zygote, pong: asyncio.Future[None] | None) -> str | None:
        """Wait for an unresponsive zygote: None once it answers, else why it was given up (and killed)."""
        since = time.monotonic() - UNRESPONSIVE_AFTER
        while pong is None or not await _answered(pong, zygote, 0.25, since):
            if zygote.exited.done():
                return zygote.exited.result()
            waited = time.monotonic() - since
            stopped = zygote.state() in ("T", "t")
            if (stopped or waited >= SLOW_LIMIT) and self.state != "unresponsive":
                # Honest health: a stopped zygote answers no spawn either. One that is only slow (starved
                # at its low priority on a busy host) still serves, so it is not reported for a while.
                self.state = "unresponsive"
                self._up.clear()
            if (stopped and waited >= STOPPED_LIMIT) or waited >= STALL_LIMIT:
                why = "stopped" if stopped else f"unanswered for {waited:.0f}s"
                log.error("sandlot: the zygote (pid %s) stalled (%s); killing it", zygote.pid, why)
                zygote.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(zygote.exited), 5.0)
                return f"the zygote stalled ({why})"
            if pong is None:
                pong = zygote.ping()
        return None

    async def _replace(self, reason: str) -> None:
        old = self.zygote
        self._up.clear()
        self.state = "restarting"
        self.last_error = reason
        lived = time.monotonic() - self._started_at
        self.failures = 1 if lived >= STABLE_AFTER else self.failures + 1
        log.error("sandlot: the zygote (pid %s) is gone after %.1fs: %s. Every sandbox it forked is killed; "
                  "runs in flight get 503 and sessions come back restarted.", old.pid, lived, reason)
        try:
            await self._on_lost(old, reason)
        finally:
            with contextlib.suppress(Exception):
                await old.stop(timeout=1.0)  # reaps the process (even when the engine is closing meanwhile)
        while self.state != "stopped":
            delay = backoff(self.failures)
            if delay:
                self.state = "backing_off"
                self._retry_at = time.monotonic() + delay
                log.error("sandlot: zygote restart %d in a row; waiting %.1fs before the next attempt",
                          self.failures, delay)
                await asyncio.sleep(delay)
                if self.state == "stopped":
                    return
            self.state = "restarting"
            self.zygote = self._make()
            try:
                await self.zygote.start()
            except (SetupError, OSError) as exc:
                self.last_error = f"the new zygote did not start: {exc}"
                self.failures += 1
                log.error("sandlot: %s", self.last_error)
                continue
            self.restarts += 1
            log.warning("sandlot: a new zygote (pid %s) is up (restart %d)", self.zygote.pid, self.restarts)
            self._became_up()
            return
