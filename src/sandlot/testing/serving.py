"""A real ``sandlot serve`` in a child process on a loopback port, for tests and benchmarks.

Every test and benchmark that talks to a real server starts it the same way: pick a free loopback
port, start ``python -m sandlot.cli serve --port P …``, wait until it answers ``/readyz`` (and, when a
caller measures warm runs, until its pool is full), and stop it with SIGTERM (SIGKILL after a grace
period). ``ServerProcess`` is that, once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on now (the kernel's choice), on ``host``."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(*args: str) -> list[str]:
    """``sandlot serve`` with ``args``, by this interpreter (so a virtualenv's sandlot is the one run)."""
    return [sys.executable, "-m", "sandlot.cli", "serve", *args]


class ServerProcess:
    """``sandlot serve --host HOST --port PORT *args`` in a child process.

    ``env`` is added over this process's environment (with ``inherit_env=False`` it is the whole of it);
    ``log`` takes its stdout and stderr (without it, stdout is discarded and stderr is the caller's), and
    its tail is shown if it fails to start; ``pool_ready`` also waits for that many warm sandboxes;
    ``prefix`` runs the command under another (``runuser -u nobody --``, say). The same port is kept
    across ``restart``.
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None, inherit_env: bool = True,
                 host: str = LOOPBACK, port: int | None = None, log: Path | None = None, pool_ready: int = 0,
                 prefix: Sequence[str] = (), timeout: float = 120.0) -> None:
        self.args = list(args)
        self.env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log = log
        self.pool_ready = pool_ready
        self.prefix = list(prefix)
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not started"
        return self.process.pid

    def start(self) -> float:
        """Start it and wait until it is ready; the seconds that took. Raises ``RuntimeError`` if it is not."""
        began = time.perf_counter()
        command = [*self.prefix, *serve_command("--host", self.host, "--port", str(self.port), *self.args)]
        out: IO[bytes] | int = subprocess.DEVNULL
        err: IO[bytes] | int | None = None  # the caller's stderr (pytest captures it; a benchmark shows it)
        if self.log is not None:
            out = err = self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=err)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return time.perf_counter() - began

    def wait_ready(self) -> None:
        """Until ``/readyz`` is 200 (and the pool holds ``pool_ready`` sandboxes)."""
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"sandlot serve exited with {self.process.returncode}{self._log_tail()}")
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandlot serve was not ready within {self.timeout:g}s{self._log_tail()}")
            time.sleep(0.02)  # fine enough for a benchmark timing a restart

    def is_ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(self.url + "/readyz", timeout=5).status_code != 200:
                return False
            if self.pool_ready:
                return int(httpx.get(self.url + "/healthz", timeout=5).json().get("pool_ready", 0)) >= self.pool_ready
            return True
        return False

    def send_signal(self, signum: int) -> None:
        assert self.process is not None, "the server is not started"
        self.process.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        assert self.process is not None, "the server is not started"
        return self.process.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, *, grace: float = 60.0) -> int | None:
        """Send ``sig`` (SIGTERM: a clean stop), SIGKILL after ``grace`` seconds; its exit status (None if it
        was not running)."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            try:
                code = self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def kill(self) -> None:
        """SIGKILL, as a crash would (no drain, no save)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, sig: int = signal.SIGTERM) -> float:
        """Stop it with ``sig`` and start it again on the same port; the seconds until it was ready again."""
        self.stop(sig)
        return self.start()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its log ("" without one)."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-chars:]

    def _log_tail(self) -> str:
        tail = self.log_tail()
        return f":\n{tail}" if tail else ""

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

