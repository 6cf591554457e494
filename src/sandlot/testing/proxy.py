"""A TCP proxy on loopback that adds network latency: a stand-in for the network.

Each chunk of bytes is forwarded ``delay`` seconds after the proxy read it, in
each direction, in order, without holding up the chunks behind it (a fixed
one-way latency, like a long link, not a slow one). So a request and its
response through the proxy cost ``2 * delay`` more than without it: one round
trip (RTT). The kernel's netem would do the same, but it needs a module and
privileges that containers often lack.

    with DelayProxy("http://127.0.0.1:8765/v1", delay=0.025) as proxy:
        httpx.get(proxy.url + "/models")  # http://127.0.0.1:<proxy port>/v1/models, 50 ms later

Only data is delayed: opening a connection through the proxy costs no round
trip (real TCP and TLS handshakes cost one or more), so this is the
best case for clients that open new connections, and exact for clients that
keep them open, as HTTP clients do. The proxy runs its own event loop in a
thread (``with``), or in the caller's loop (``await start()``/``aclose()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import urllib.parse

_CHUNK = 64 * 1024
_QUEUE = 256  # chunks in flight per direction before the proxy stops reading (TCP flow control)


class DelayProxy:
    """Forward a loopback port to ``target`` (a URL or ``host:port``), each chunk ``delay`` s late each way."""

    def __init__(self, target: str, *, delay: float = 0.025, host: str = "127.0.0.1") -> None:
        parsed = urllib.parse.urlsplit(target if "//" in target else f"tcp://{target}")
        if parsed.hostname is None or parsed.port is None:
            raise ValueError(f"the proxy's target needs a host and a port: {target!r}")
        self.target = target
        self.target_host, self.target_port = parsed.hostname, parsed.port
        self.delay = delay
        self.host = host
        self.port = 0
        self.connections = 0
        self.bytes_up = 0
        """Bytes forwarded to the target."""
        self.bytes_down = 0
        """Bytes forwarded back to the clients."""
        self._parsed = parsed
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``target`` with the proxy's address in place of the target's (scheme and path kept)."""
        if not self.port:
            raise RuntimeError("the proxy is not started")
        return urllib.parse.urlunsplit(self._parsed._replace(netloc=f"{self.host}:{self.port}"))

    # ---- in the caller's event loop ----------------------------------------------------

    async def start(self) -> DelayProxy:
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock)
        return self

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> DelayProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- in a thread of its own --------------------------------------------------------

    def __enter__(self) -> DelayProxy:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"delay-proxy-{self.target_port}", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            loop.close()
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        self._loop = self._thread = None

    # ---- forwarding ----------------------------------------------------------------------

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
            for writer in (client_writer, upstream_writer):
                with contextlib.suppress(OSError):
                    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipes = [asyncio.ensure_future(self._pipe(client_reader, upstream_writer, "up")),
                     asyncio.ensure_future(self._pipe(upstream_reader, client_writer, "down"))]
            try:
                await asyncio.gather(*pipes)
            finally:  # one side failed (or we are closing): stop the other too
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:  # the target refused, or a side reset the connection
            pass
        except asyncio.CancelledError:
            # We are closing. End normally: on Python 3.11, asyncio's streams log a traceback for a
            # connection handler that ends cancelled (task.exception() raises in its done callback).
            pass
        finally:
            for side in (client_writer, upstream_writer):
                if side is not None:
                    side.close()
                    with contextlib.suppress(Exception):
                        await side.wait_closed()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        """Copy one direction; each chunk (and the end of the stream) leaves ``delay`` after it arrived."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE)

        async def read() -> None:
            try:
                while chunk := await reader.read(_CHUNK):
                    await queue.put((loop.time() + self.delay, chunk))
            finally:
                await queue.put((loop.time() + self.delay, b""))  # end of stream (or a reset)

        async def write() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    if writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                writer.write(chunk)
                if direction == "up":
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
                await writer.drain()

        reading = asyncio.ensure_future(read())
        try:
            await write()
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
