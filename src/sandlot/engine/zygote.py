"""Host side of the zygote: start it, ask it for sandboxes, hear when they end.

The zygote is a separate Python process with a clean environment (no secret
of the server's may reach it: every sandbox can read the memory it inherits).
It must be started from the thread that runs the event loop for as long as the
engine lives: its PR_SET_PDEATHSIG is tied to that thread, not the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import sandlot_runtime
from sandlot_runtime.spec import SandboxSpec, ZygoteSetup

from .._errors import RestartingError, SetupError, SpawnError
from .resources import spawn_failure

_RUNTIME_PARENT = str(pathlib.Path(sandlot_runtime.__file__ or ".").resolve().parent.parent)
_BOOTSTRAP = f"import sys; sys.path.insert(0, {_RUNTIME_PARENT!r}); from sandlot_runtime.zygote import main; main()"
MAX_CONTROL_MESSAGE = 1 << 20


@dataclass(frozen=True)
class Exit:
    """How a sandbox's pid 1 ended, as the zygote (its parent) saw it."""

    status: int
    cpu_ms: float

    @property
    def signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None


def zygote_environment(cache_dir: str) -> dict[str, str]:
    """The zygote's whole environment: nothing of the server's, nothing secret."""
    mpl = os.path.join(cache_dir, "matplotlib")
    os.makedirs(mpl, exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": mpl,
    }


class Zygote:
    """A running zygote process and its control socket."""

    def __init__(self, setup: ZygoteSetup, env: dict[str, str], python: str = sys.executable) -> None:
        self._setup = setup
        self._env = env
        self._python = python
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._spawns: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._exits: dict[int, asyncio.Future[Exit]] = {}
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._next_req = 0
        self.info: dict[str, Any] = {}
        self.last_heard = 0.0
        """When (``time.monotonic()``) the zygote last sent anything: the supervisor's sign of life."""
        self.exited: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        """Resolved (with the reason) once the zygote is gone: its control socket closed."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self, timeout: float = 120.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [self._python, "-I", "-c", _BOOTSTRAP, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], env=self._env, cwd="/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
            )
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        ours.send(self._setup.to_json())
        try:
            self.info = await asyncio.wait_for(self._ready, timeout)
        except (TimeoutError, SpawnError, RestartingError) as exc:
            await self.stop()
            raise SetupError(f"the zygote did not start: {exc}") from exc
        if self.info.get("threads", 1) != 1:
            await self.stop()
            raise SetupError(f"the zygote has {self.info['threads']} threads after preloading; it must have one "
                             "(a preloaded library started threads; forking would be unsafe)")
        return self.info

    async def spawn(self, spec: SandboxSpec, channel_fd: int, stdout_fd: int, stderr_fd: int) -> tuple[int, int]:
        """Fork a sandbox; returns (pid, pidfd). The caller owns the pidfd."""
        if self._sock is None:
            raise SpawnError("the zygote is not running")
        self._next_req += 1
        req = self._next_req
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._spawns[req] = future
        message = json.dumps({"t": "spawn", "req": req, "spec": json.loads(spec.to_json())}).encode()
        try:
            socket.send_fds(self._sock, [message], [channel_fd, stdout_fd, stderr_fd])
        except OSError as exc:
            self._spawns.pop(req, None)
            raise SpawnError(f"could not reach the zygote: {exc}") from exc
        return await future

    def ping(self) -> asyncio.Future[None] | None:
        """Ask the zygote to answer; the future resolves with its ``pong`` (None: it cannot be asked)."""
        if self._sock is None or self.exited.done():
            return None
        self._next_req += 1
        req = self._next_req
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._sock.send(json.dumps({"t": "ping", "req": req}).encode())
        except OSError:
            return None
        self._pings[req] = future
        future.add_done_callback(lambda _: self._pings.pop(req, None))
        return future

    def state(self) -> str:
        """The process's scheduler state letter from /proc (R, S, T for stopped, ...), or '' when gone."""
        pid = self.pid
        if pid is None:
            return ""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return ""

    def kill(self) -> None:
        """SIGKILL the zygote (stalled): its control socket closes, and ``exited`` resolves."""
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.send_signal(signal.SIGKILL)

    def exit_of(self, pid: int) -> asyncio.Future[Exit]:
        """A future for the exit of sandbox ``pid`` (resolved when the zygote reaps it)."""
        future = self._exits.get(pid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._exits[pid] = future
        return future

    def forget(self, pid: int) -> None:
        self._exits.pop(pid, None)

    async def stop(self, timeout: float = 5.0) -> None:
        """Close the control socket; the zygote exits and takes every sandbox with it."""
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        process, self._process = self._process, None
        if process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
            except TimeoutError:
                process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        self._fail_all(SpawnError("the zygote stopped"))

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                raw, fds, _flags, _addr = socket.recv_fds(self._sock, MAX_CONTROL_MESSAGE, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                raw, fds = b"", []
            if not raw:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
                self._sock.close()  # now, not at stop(): a restart may be cancelled before it stops us
                self._sock = None
                self._fail_all(RestartingError("the zygote exited; a new one is starting"))
                return
            self._dispatch(json.loads(raw), fds)

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        self.last_heard = time.monotonic()
        kind = message.get("t")
        if kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message)
        elif kind == "spawned":
            future = self._spawns.pop(message["req"], None)
            if future is not None and not future.done() and fds:
                future.set_result((message["pid"], fds[0]))
                return
        elif kind == "spawn_failed":
            future = self._spawns.pop(message["req"], None)
            if future is not None and not future.done():
                future.set_exception(spawn_failure(str(message.get("message", "spawn failed")), message.get("errno")))
        elif kind == "pong":
            pong = self._pings.get(message.get("req", -1))
            if pong is not None and not pong.done():
                pong.set_result(None)
        elif kind == "exited":
            self.exit_of(message["pid"]).set_result(Exit(message["status"], message["cpu_ms"]))
        for fd in fds:
            os.close(fd)

    def _fail_all(self, error: Exception) -> None:
        if not self.exited.done():
            self.exited.set_result(str(error))
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        for future in self._spawns.values():
            if not future.done():
                future.set_exception(error)
        self._spawns.clear()
        for pid, exit_future in list(self._exits.items()):
            if not exit_future.done():
                # Every sandbox dies with the zygote (PR_SET_PDEATHSIG): report a
                # death by SIGKILL (as a wait status, the signal number itself).
                exit_future.set_result(Exit(signal.SIGKILL, 0.0))
                self._exits.pop(pid, None)
