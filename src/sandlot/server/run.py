"""Serving: uvicorn with sandlot's safety checks and a bounded graceful shutdown.

On SIGTERM or SIGINT the server drains (``drain.py``): it keeps accepting
connections, answers 503 on /healthz and on new API calls, logs how many calls
are in flight, and lets them finish for up to ``shutdown_grace`` seconds. Then
it stops what is left (each such call still gets a proper answer), removes
every sandbox and exits 0. A second signal stops the calls in flight at once.

A server that cannot start (``--isolation strict`` where the host cannot give
it, say) says why in one line and exits with the error's code, not with
uvicorn's traceback of the failed lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from .._config import default_data_dir
from . import logs
from .app import create_app
from .config import ServerConfig, is_loopback
from .protocol import bounded_http
from .state import ServerState

log = logging.getLogger("sandlot.server")
STRAGGLER_WAIT = 5.0
"""Seconds the calls stopped after the grace get to send their answers before uvicorn shuts down."""


class _Server(uvicorn.Server):
    """uvicorn's server, draining sandlot's calls before it shuts down."""

    def __init__(self, config: uvicorn.Config, state: ServerState, grace: float) -> None:
        super().__init__(config)
        self._sandlot_state = state
        self._grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started:
            log.info("sandlot serving on http://%s:%d", self.config.host, self.config.port)

    def handle_exit(self, sig: int, frame: Any) -> None:
        # Runs as a signal handler, between two bytecodes of the loop's thread: only schedule work here.
        loop = self._loop
        if loop is None or not self.started:
            super().handle_exit(sig, frame)  # not serving yet: nothing to drain
            return
        if self._sandlot_state.draining:
            loop.call_soon_threadsafe(self._stop_now)  # a second signal: stop the calls in flight now
            return
        self._sandlot_state.draining = True
        loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        assert self._loop is not None
        self._draining = self._loop.create_task(self._drain())

    def _stop_now(self) -> None:
        stopped = self._sandlot_state.drain.stop_all()
        if stopped:
            log.warning("second signal: stopping %s in flight now", _calls(stopped))

    async def _drain(self) -> None:
        drain = self._sandlot_state.drain
        try:
            log.info("draining: %s in flight, waiting up to %gs for them to finish; new calls get 503",
                     _calls(drain.waited), self._grace)
            if not await drain.wait(self._grace):
                log.warning("the shutdown grace of %gs is over: stopping %s still in flight", self._grace,
                            _calls(drain.waited))
            drain.stop_all()  # what is left: the calls past the grace, and open event streams
            await drain.wait(STRAGGLER_WAIT, everything=True)
        finally:
            self.should_exit = True  # whatever happened above, the server goes down

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own version re-raises the signal once it has shut down, so a clean drain
        # on SIGTERM would end "killed by SIGTERM" (exit 143). A drained server exits 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _calls(count: int) -> str:
    return f"{count} call" if count == 1 else f"{count} calls"


class _QuietFailedStartup(logging.Filter):
    """Drops uvicorn's report of a failed lifespan (a traceback) when sandlot knows why and says so itself."""

    def __init__(self, state: ServerState) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        return self._state.startup_error is None


def serve(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT; a SandlotError if the server cannot start."""
    config.check_bind_is_safe()
    if config.engine.data_dir is None and config.ray is None:  # cluster mode: a shared directory, said explicitly
        # A server keeps its sessions across restarts by default (an engine used as a library does not).
        config = config.model_copy(update={"engine": config.engine.model_copy(update={"data_dir": default_data_dir()})})
    logs.configure(config.log_level)
    app = create_app(config)
    state: ServerState = app.state.sandlot
    if not is_loopback(config.host) and not state.auth.enabled:
        log.warning("serving %s WITHOUT API KEYS (%s): anyone who can reach it can run code",
                    config.host, "--insecure-no-auth-on-public-interface")
    # httptools (C) with h11 behind it for the methods llhttp does not know, and the contract's 400 for a
    # request that is not HTTP (protocol.py). The event loop is uvloop where installed.
    # uvicorn's own graceful shutdown only has to close connections: the drain has ended every call by then.
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_config=None, access_log=False,
                               http=bounded_http(config.request_read_timeout),
                               timeout_graceful_shutdown=round(STRAGGLER_WAIT), lifespan="on")
    quiet = _QuietFailedStartup(state)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(quiet)
    try:
        _Server(uv_config, state, config.shutdown_grace).run()
    except SystemExit:
        if state.startup_error is not None:
            raise state.startup_error from None
        raise
    finally:
        uvicorn_log.removeFilter(quiet)
    if state.startup_error is not None:
        raise state.startup_error

