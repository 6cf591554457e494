"""``sandlot mcp``: the tools over stdin/stdout, with an engine of its own.

One client per process: a desktop client starts it, and when the client goes
(stdin closes) every session, sandbox and mount goes with the engine. stdout
carries only MCP messages; logs go to stderr (the SDK also points fd 1 at
stderr while serving, so stray output cannot corrupt the stream).

SIGTERM and SIGINT close the engine before exiting. Once serving, the SDK reads
stdin in a worker thread that no cancellation can interrupt, so after a signal
the process closes the engine itself and then exits at once rather than waiting
for a line that may never come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from mcp.server.stdio import stdio_server

from .._config import EngineConfig
from ..engine import Engine
from ._tools import SandlotTools, local_caller

log = logging.getLogger("sandlot.mcp")


async def serve_stdio(config: EngineConfig) -> None:
    engine = Engine(config)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    closing: asyncio.Future[None] | None = None
    serving = False
    stopper: asyncio.Task[None] | None = None

    def close_engine() -> asyncio.Future[None]:
        nonlocal closing
        if closing is None:
            closing = asyncio.ensure_future(engine.close())
        return closing

    async def exit_when_closed() -> None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(close_engine())
        log.info("stopped by a signal")
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(0)

    def on_signal() -> None:
        nonlocal stopper
        if not serving:
            if main is not None:
                main.cancel()  # still starting: the engine cleans up a start that is cancelled
        elif stopper is None:
            stopper = asyncio.ensure_future(exit_when_closed())

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        await engine.start()
        tools = SandlotTools(engine, local_caller)
        server = tools.server()
        log.info("serving MCP on stdio (isolation=%s)", engine.isolation)
        serving = True
        try:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
        finally:
            await asyncio.shield(close_engine())
        log.info("the client disconnected; stopped")
    finally:
        if not serving:
            await engine.close()
        for sig in signals:
            loop.remove_signal_handler(sig)


def run_stdio(config: EngineConfig, log_level: str = "info") -> None:
    """Serve until the client disconnects, or a signal (the CLI's entry)."""
    configure_logging(log_level)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(serve_stdio(config))


def configure_logging(level: str) -> None:
    """Plain lines on stderr (desktop clients keep a server's stderr as its log file); every
    logger, the SDK's included, so nothing can ever reach stdout."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("sandlot").setLevel(level.upper())
