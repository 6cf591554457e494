"""Protocol: the sandbox's end of the channel.

Counting, flushing and replying live here; running code lives in ``execute``.
The main thread reads the channel between cells and runs cells one at a time;
there is no reader thread, so a request wakes exactly one thread (on this VM
type every cross-thread wake-up after idling costs hundreds of microseconds).
The host interrupts a cell with SIGINT, sent through its pidfd, not a frame.

Messages from the host: ``exec`` {id, code, count, cpu_seconds, env?, tools?, save?},
``result`` {id, ok, value | error} (the answer to a tool call), ``save`` {id, dir, max_bytes}
(write the session's state to its workspace), ``attach`` {id, workdir, home?, restore}
(a session's workspace was mounted: move into it, and load its saved state).
Messages to the host: ``call`` {id, tool, args} (a tool call), ``ready``, ``stream`` {id, name, text},
``output`` {id, output}, ``done`` {id, status, error, cpu_ms, peak_rss, saved?}, ``saved`` {id, count, names,
lost, bytes, skipped}, ``attached`` {id, restored, lost, count}.
An ``exec`` with ``save`` saves the state after its ``done`` has left: off the request path. What it saved
travels in the next ``done`` (its ``saved``), or answers a ``sync`` {id}, which the host sends before it
pauses: requests are read in order, so the answer comes once the save is done.
Shell commands (``cmd``, ``cmd_stdin``, ``cmd_kill``; see ``commands``) are handled by whichever
thread reads the channel, not by the main loop, and while any runs a thread of their own keeps
reading: only then does a request wake a second thread.

Python-level ``sys.stdout``/``sys.stderr`` travel on the channel, so they keep
their exact order with rich outputs. File descriptors 1 and 2 are pipes the
host reads directly: output from subprocesses and C code still arrives, in
arrival order.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import linecache
import math
import os
import resource
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import commands, framing, limits, new_imports, snapshot, tools
from .execute import CellRunner, TimeLimitExceeded


class Channel:
    """The socket to the host, for calls both ways.

    Sending: serialized, because user threads may print or call tools. While
    corked, frames are collected and leave in one write on ``uncork``: the
    outputs that end a cell and its ``done`` reach the host together, so the
    host wakes once per cell, not once per frame.

    Receiving: one thread reads at a time, and whoever reads routes every
    message to its owner: ``result`` replies to the tool call waiting for them,
    anything else to the main loop's inbox. Between cells the main thread is
    the reader; during a cell, a thread waiting for a tool's result reads.
    """

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self._send_lock = threading.Lock()
        self._decoder = framing.FrameDecoder()
        self._corked: list[bytes] | None = None
        self._cond = threading.Condition()
        self._reading = False
        self._closed = False
        self._inbox: list[dict[str, Any]] = []
        self._results: dict[int, dict[str, Any]] = {}
        self._waiting: set[int] = set()
        self._next_call = 0
        self.on_command: Callable[[dict[str, Any]], None] | None = None
        """Where ``cmd*`` messages go, at once, from whichever thread reads (``commands``)."""

    def send(self, message: dict[str, Any]) -> None:
        data = framing.encode(message)
        with self._send_lock:
            if self._corked is not None:
                self._corked.append(data)
            else:
                self.sock.sendall(data)

    def cork(self) -> None:
        with self._send_lock:
            if self._corked is None:
                self._corked = []

    def uncork(self) -> None:
        with self._send_lock:
            pending, self._corked = self._corked, None
            if pending:
                self.sock.sendall(b"".join(pending))

    def receive(self) -> dict[str, Any] | None:
        """The next request from the host for the main loop (None when the host is gone)."""
        self._pump_until(lambda: bool(self._inbox))
        with self._cond:
            return self._inbox.pop(0) if self._inbox else None

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request to the host and wait for its ``result`` (any thread may call)."""
        with self._cond:
            self._next_call += 1
            call_id = self._next_call
            self._waiting.add(call_id)
        try:
            self.send({**message, "id": call_id})
            self._pump_until(lambda: call_id in self._results)
            with self._cond:
                reply = self._results.pop(call_id, None)
        finally:
            with self._cond:
                self._waiting.discard(call_id)
        if reply is None:
            raise ConnectionError("the host went away")
        return reply

    def pump_while(self, busy: Callable[[], bool]) -> bool:
        """Keep the channel read while ``busy()`` (shell commands run): messages for them must arrive even
        while a cell runs. Returns once not busy (after the next message): True, or False when the channel closed."""
        self._pump_until(lambda: not busy())
        return not self._closed

    def _pump_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` or the channel closed, reading frames ourselves if nobody else is."""
        with self._cond:
            while not (ready() or self._closed):
                if not self._reading:
                    self._reading = True
                    break
                self._cond.wait()
            else:
                return
        try:
            while True:
                data = self.sock.recv(1 << 16)
                with self._cond:
                    if not data:
                        self._closed = True
                    else:
                        for message in self._decoder.feed(data):
                            self._route(message)
                    self._cond.notify_all()
                    if self._closed or ready():
                        return
        finally:
            with self._cond:
                self._reading = False
                self._cond.notify_all()

    def _route(self, message: dict[str, Any]) -> None:
        if message.get("t") == "result":
            call_id = message.get("id")
            if call_id in self._waiting:  # a late reply to an interrupted call is dropped
                self._results[call_id] = message
        elif str(message.get("t", "")).startswith("cmd") and self.on_command is not None:
            self.on_command(message)
        else:
            self._inbox.append(message)


class ChannelStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr``: text goes to the host as ``stream`` frames.

    A line is sent as soon as it is complete (so output before a crash is not
    lost), partial lines when anything else is sent, and writing to one stream
    first flushes the other, so stdout and stderr interleave as written.
    """

    def __init__(self, kernel: Kernel, name: str, fd: int) -> None:
        super().__init__()
        self._kernel = kernel
        self._name = name
        self._fd = fd
        self._pending: list[str] = []
        self._size = 0
        self.other: ChannelStream | None = None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    @property
    def name(self) -> str:
        return f"<{self._name}>"

    @property
    def buffer(self) -> _BytesToText:
        """``sys.stdout.buffer``: bytes written here are decoded (UTF-8, replacing errors) onto the stream."""
        return _BytesToText(self)

    def fileno(self) -> int:
        return self._fd  # for subprocess and faulthandler: the pipe the host reads

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.other is not None and self.other._pending:
            self.other.flush()
        self._pending.append(text)
        self._size += len(text)
        if "\n" in text or self._size > 8192:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._pending:
            text, self._pending, self._size = "".join(self._pending), [], 0
            self._kernel.send_stream(self._name, text)


class _BytesToText(io.RawIOBase):
    def __init__(self, stream: ChannelStream) -> None:
        super().__init__()
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self._stream.write(view.decode("utf-8", "replace"))
        return len(view)

    def flush(self) -> None:
        self._stream.flush()


class Kernel:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.running_id: int | None = None
        self.stdout = ChannelStream(self, "stdout", 1)
        self.stderr = ChannelStream(self, "stderr", 2)
        self.stdout.other, self.stderr.other = self.stderr, self.stdout
        self.commands = commands.Commands(channel, pump=lambda: channel.pump_while(lambda: self.commands.running))
        channel.on_command = self.commands.handle
        self.runner = CellRunner(emit=self._emit, flush_streams=_flush_streams, code_finished=channel.cork)
        self._cpu_limit: float | None = None  # the running cell's limits, for the words of a timeout
        self._cpu_soft_limit: int | None = None
        self._wall_limit: float | None = None
        self._imports = new_imports.ImportRecorder()  # replaced at ready by the one on sys.meta_path
        self._last_save: dict[str, Any] | None = None
        self._unreported_save: dict[str, Any] | None = None

    def serve(self) -> None:
        sys.stdout, sys.stderr = self.stdout, self.stderr
        sys.argv = [""]  # as for code given to `python` without a script; not the zygote's command line
        tools.install(self.channel, [])  # `import sandlot.tools` works (empty) until the host sends tools
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGXCPU, self._on_sigxcpu)
        self._warm_up()
        self._imports = new_imports.start_recording()  # what a session's cells import is what is new
        self.channel.send({"t": "ready"})
        while True:
            try:
                message = self.channel.receive()
            except (OSError, framing.FrameError):
                message = None
            if message is None:
                os._exit(0)  # the host is gone or broke the protocol: nobody is left to serve
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "exec":
            self._execute(message)
            save = message.get("save")
            if isinstance(save, dict):
                # Told to the host with the next ``done`` (or a ``sync``): no message, no wake-up of its own.
                self._unreported_save = self._save({**save, "count": message.get("count")})
        elif kind == "save":
            self.channel.send({"t": "saved", "id": message.get("id"), **self._save(message)})
        elif kind == "sync":
            self._unreported_save = None
            self.channel.send({"t": "saved", "id": message.get("id"), **(self._last_save or _NOTHING_SAVED)})
        elif kind == "attach":
            self._attach(message)

    def _save(self, request: dict[str, Any]) -> dict[str, Any]:
        summary = snapshot.save(self.runner.namespace, str(request.get("dir", ".")), count=int(request.get("count") or 0),
                                max_bytes=int(request.get("max_bytes") or 0), imported_modules=self._imports.imported())
        self._last_save = {"count": summary["count"], "names": summary["names"][:_MAX_LISTED],
                           "lost": summary["lost"][:_MAX_LISTED], "bytes": summary["bytes"], "skipped": summary["skipped"]}
        return self._last_save

    def _attach(self, request: dict[str, Any]) -> None:
        workdir = str(request.get("workdir", "."))
        lost: list[dict[str, str]] = []
        restored: list[str] = []
        count = None
        try:
            os.chdir(workdir)
            self.commands.workspace_is_here()
            if isinstance(request.get("home"), str):
                os.environ["HOME"] = request["home"]
        except OSError as exc:
            lost.append({"name": "*", "reason": f"the workspace could not be entered: {exc.strerror}"})
        else:
            if request.get("restore"):
                found = snapshot.restore(self.runner.namespace, workdir)
                restored, lost, count = found["restored"], found["lost"], found["count"]
        self.channel.send({"t": "attached", "id": request.get("id"), "restored": restored[:_MAX_LISTED],
                           "lost": lost[:_MAX_LISTED], "count": count})

    def _execute(self, request: dict[str, Any]) -> None:
        specs = request.get("tools")
        if isinstance(specs, list):
            tools.install(self.channel, specs)
        rlimits = request.get("rlimits")
        if isinstance(rlimits, dict):
            limits.apply(rlimits)  # lower only (we have no privilege left to raise), before any user code
        env = request.get("env")
        if isinstance(env, dict):
            for name, value in env.items():
                try:
                    os.environ[str(name)] = str(value)
                except ValueError:  # a name with "=" or NUL: the host refuses these; never die of one
                    pass
        cpu_seconds = request.get("cpu_seconds")
        self._cpu_limit = self._cpu_soft_limit = None
        if isinstance(cpu_seconds, (int, float)) and cpu_seconds > 0:
            self._cpu_limit, self._cpu_soft_limit = cpu_seconds, _set_cpu_budget(cpu_seconds)
        timeout = request.get("timeout")
        self._wall_limit = timeout if isinstance(timeout, (int, float)) and timeout > 0 else None
        before = _cpu_seconds()
        self.running_id = request.get("id")
        try:
            status, error = self.runner.run(str(request.get("code", "")), int(request.get("count", 1)))
        except TimeLimitExceeded:  # landed between the cell's end and here
            status, error = "timeout", None
        finally:
            self.running_id = None
        _flush_streams()
        self.channel.cork()
        done = {
            "t": "done",
            "id": request.get("id"),
            "status": status,
            "error": error,
            "cpu_ms": (_cpu_seconds() - before) * 1000.0,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        if self._unreported_save is not None:
            done["saved"], self._unreported_save = self._unreported_save, None  # the previous cell's save
        self.channel.send(done)
        self.channel.uncork()

    def _warm_up(self) -> None:
        """Walk the per-cell code path once before saying ready.

        Pages the sandbox shares copy-on-write with the zygote are copied the
        first time they are written (reference counts do that). Doing it here,
        off the request path, takes that cost out of the first real run.
        """
        self.runner.run("None", 0)
        linecache.cache.pop("<cell-0>", None)  # a traceback of the user's shows their cells' lines only
        self.channel.uncork()
        framing.encode({"t": "done", "id": 0, "status": "ok", "error": None, "cpu_ms": _cpu_seconds(),
                        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})

    def _emit(self, output: dict[str, Any]) -> None:
        self.channel.send({"t": "output", "id": self.running_id, "output": output})

    def send_stream(self, name: str, text: str) -> None:
        self.channel.send({"t": "stream", "id": self.running_id, "name": name, "text": text})

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        if self.running_id is not None:
            raise KeyboardInterrupt

    def _on_sigxcpu(self, _signum: int, _frame: Any) -> None:
        if self.running_id is not None:
            raise TimeLimitExceeded(self._time_limit_message())

    def _time_limit_message(self) -> str:
        """Which limit a SIGXCPU means: the kernel sends it at the CPU limit, the host at the
        wall-clock limit of a session's cell (to stop the cell and keep the interpreter). The
        words are the ones the host uses when it has to kill a one-shot run for the same reason."""
        if self._cpu_soft_limit is not None and _cpu_limit_reached(self._cpu_soft_limit):
            return f"the run exceeded its CPU time limit of {self._cpu_limit:g}s and was stopped"
        if self._wall_limit is not None:
            return f"the run exceeded its time limit of {self._wall_limit:g}s and was stopped"
        return "the run exceeded its time limit and was stopped"


_NOTHING_SAVED = {"count": 0, "names": [], "lost": [], "bytes": 0, "skipped": "nothing was saved"}
_MAX_LISTED = 1000
"""Names listed in ``saved``/``attached`` at most (a frame has a size cap)."""


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass  # user code may have replaced or closed them


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cpu_limit_reached(soft_limit: int) -> bool:
    """Whether this process reached the CPU soft limit we set. The kernel raises the soft limit by a
    second each time it sends SIGXCPU, which tells for sure; getrusage() alone can read a little
    below the kernel's own count (measured: 2.54 s when the kernel had sent SIGXCPU at 3 s)."""
    soft_now, _hard = resource.getrlimit(resource.RLIMIT_CPU)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return soft_now > soft_limit or own.ru_utime + own.ru_stime >= soft_limit


def _set_cpu_budget(seconds: float) -> int:
    """Let this cell use ``seconds`` more CPU before SIGXCPU (the new soft limit, returned); the hard
    limit stays as the host set it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(_cpu_seconds() + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    return soft


def run(channel_fd: int) -> None:
    """Serve the host on ``channel_fd`` until it goes away; never returns."""
    Kernel(Channel(channel_fd)).serve()


REHEARSAL_CELLS = ("x = 1\nx", "print(x)")
"""What ``rehearse`` runs: a cell that ends in a value, and one that prints (the two output paths)."""


def rehearse(rounds: int) -> None:
    """Serve a few cells in this process (the zygote, before it forks), on a socket pair, then let it all go.

    CPython 3.11 writes to a function's code object while it warms up (a call counter, then the
    specialised instructions it rewrites in place), and those objects sit scattered over the zygote's
    heap: every sandbox that ran the cell path for the first time copied each page holding one
    (~370 kB per sandbox, measured as Private_Dirty of live idle sessions). Run here once, the
    rewritten code is what every sandbox inherits, shared. Nothing the rehearsal made outlives it:
    no thread, no file descriptor, no global but what a sandbox's own ``Kernel`` sets again.
    """
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    saved = sys.stdout, sys.stderr
    pyplot = sys.modules.get("matplotlib.pyplot")
    show = getattr(pyplot, "show", None)  # a cell replaces it with its runner's
    kernel = Kernel(Channel(ours.detach()))
    sys.stdout, sys.stderr = kernel.stdout, kernel.stderr
    try:
        for number in range(1, rounds + 1):
            for cell in REHEARSAL_CELLS:
                theirs.sendall(framing.encode({"t": "exec", "id": number, "code": cell, "count": number}))
                message = kernel.channel.receive()
                assert message is not None
                kernel._handle(message)
                with contextlib.suppress(BlockingIOError):
                    while theirs.recv(1 << 16):
                        pass  # the replies: nobody reads them
    finally:
        sys.stdout, sys.stderr = saved
        if show is not None:
            setattr(pyplot, "show", show)  # noqa: B010 (a module attribute)
        with contextlib.suppress(AttributeError):
            del builtins.display  # type: ignore[attr-defined]  # the rehearsal's runner put it there
        kernel.channel.sock.close()
        theirs.close()
        for number in range(1, rounds + 1):
            linecache.cache.pop(f"<cell-{number}>", None)
