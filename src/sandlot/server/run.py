"""Serving: uvicorn with sandlot's safety checks and a bounded graceful shutdown.

On SIGTERM or SIGINT the server stops accepting, answers 503 on /healthz and on
new API calls, lets running cells finish for up to ``shutdown_grace`` seconds,
then kills what is left, removes every sandbox and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from . import logs
from .app import create_app
from .config import ServerConfig, is_loopback
from .state import ServerState

log = logging.getLogger("sandlot.server")


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app the moment draining starts."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._sandlot_state = state

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._sandlot_state.draining = True
        super().handle_exit(sig, frame)

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


def serve(config: ServerConfig) -> None:
    config.check_bind_is_safe()
    logs.configure(config.log_level)
    app = create_app(config)
    state: ServerState = app.state.sandlot
    if not is_loopback(config.host) and not state.auth.enabled:
        log.warning("serving %s WITHOUT API KEYS (%s): anyone who can reach it can run code",
                    config.host, "--insecure-no-auth-on-public-interface")
    # h11, not httptools: httptools answers requests it cannot parse (an unknown method, say) with a
    # plain-text 400 of its own, breaking the contract's error body. The event loop is uvloop where installed.
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_config=None, access_log=False, http="h11",
                               timeout_graceful_shutdown=max(1, round(config.shutdown_grace)), lifespan="on")
    log.info("sandlot serving on http://%s:%d", config.host, config.port)
    _Server(uv_config, state).run()
