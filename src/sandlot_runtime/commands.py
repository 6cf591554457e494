"""Shell commands: ``/bin/sh -c`` beside the interpreter, one thread per command.

Messages from the host, routed here by whichever thread reads the channel (so stdin and kills
reach a background command while a cell runs): ``cmd`` {id, cmd, cwd, env, stdin?, keep_stdin?},
``cmd_stdin`` {id, data, eof?}, ``cmd_kill`` {id}. Messages to the host: ``cmd_out`` {id, name,
text}, ``cmd_exit`` {id, exit_code, signal, error}.

A command is not the interpreter's child in any other sense: its output goes to pipes of its own
(not the sandbox's fds 1 and 2, which belong to the running cell), and it is a process group of
its own where the sandbox may make one, so a kill takes whatever it started. In degraded mode
seccomp refuses ``setpgid``; the command then shares the sandbox's group, and a kill takes the
command's process tree as ``/proc`` shows it (a process that left the tree survives until the
sandbox ends, and the host kills that whole group). When ``sh`` exits, what the command left
running in its group is killed and reaped: a command is its process group (``background`` is
for what should keep running).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
READ_SIZE = 1 << 16
EXITED_POLL = 0.05
START_RETRY = 2.0
"""Seconds a command waits for a free process slot (a thread for it, a fork for its shell) while the pids limit is
reached: a fork bomb that was just killed still holds it until its processes are reaped. Then the command starts,
or is reported as not started; the sandbox never dies of it."""
"""Seconds between checks, while pipes stay open, of whether ``sh`` exited (a child it left behind
keeps the pipes open; its later output is not the command's)."""


class Sender(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class Commands:
    """The running commands of one sandbox. ``handle`` never blocks: it runs on the channel's reader."""

    def __init__(self, channel: Sender, pump: Any) -> None:
        self._channel = channel
        self._pump = pump  # called (on a thread of its own) while commands run, to keep the channel read
        self._lock = threading.Lock()
        self._running: dict[int, _Command] = {}
        self._pumping = False
        self._own_groups = True  # until seccomp says otherwise (degraded mode)
        self._workspace_fd = -1
        self.workspace_is_here()

    def workspace_is_here(self) -> None:
        """The current directory is the workspace (at start, and after a session's was attached): hold it
        open. Commands' ``cwd`` is relative to it, reached through the open directory because in degraded
        mode the sandbox's uid may not walk the workspace's host path from ``/``."""
        old, self._workspace_fd = self._workspace_fd, os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if old >= 0:
            os.close(old)

    @property
    def running(self) -> bool:
        return bool(self._running)

    def handle(self, message: dict[str, Any]) -> None:
        kind, command_id = message.get("t"), message.get("id")
        if not isinstance(command_id, int):
            return
        if kind == "cmd":
            command = _Command(self, command_id, message)
            with self._lock:
                self._running[command_id] = command
                start_pump = not self._pumping
                self._pumping = True
            try:
                _when_a_slot_is_free(lambda: _start_thread(command.run, f"command-{command_id}"))
            except RuntimeError:
                command.not_started("no process is free for it (the sandbox's pids limit)")
            if start_pump:
                try:
                    _when_a_slot_is_free(lambda: _start_thread(self._keep_reading, "command-pump"))
                except RuntimeError:
                    with self._lock:
                        self._pumping = False  # the next command tries again; the main loop reads meanwhile
            return
        running = self._running.get(command_id)
        if running is None:
            return  # it ended already: a late stdin or kill has nothing to act on
        if kind == "cmd_stdin":
            running.feed(str(message.get("data", "")).encode("utf-8", "surrogateescape"), bool(message.get("eof")))
        elif kind == "cmd_kill":
            running.kill()

    def _keep_reading(self) -> None:
        while True:
            if not self._pump():
                return  # the host is gone; the main loop ends the sandbox
            with self._lock:
                if not self._running:
                    self._pumping = False
                    return

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], bool]:
        """Start ``argv``; returns it and whether it leads a process group of its own."""
        # /proc/self/fd/N in the child is the workspace it inherited (pass_fds keeps N open through its chdir).
        where = f"/proc/self/fd/{self._workspace_fd}" + ("" if cwd in ("", ".") else "/" + cwd.lstrip("/"))
        pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
                                 "cwd": where, "env": env, "close_fds": True, "pass_fds": (self._workspace_fd,)}
        if self._own_groups:
            try:
                return _when_a_slot_is_free(lambda: subprocess.Popen(argv, process_group=0, **pipes)), True
            except PermissionError:
                # The child's errno does not say which step failed. If it starts without a group of
                # its own, it was setpgid, which seccomp refuses in degraded mode: never ask again.
                proc = _when_a_slot_is_free(lambda: subprocess.Popen(argv, **pipes))
                self._own_groups = False
                return proc, False
        return _when_a_slot_is_free(lambda: subprocess.Popen(argv, **pipes)), False

    def finished(self, command: _Command, message: dict[str, Any]) -> None:
        with self._lock:
            self._running.pop(command.id, None)
        self._channel.send(message)

    def send(self, message: dict[str, Any]) -> None:
        self._channel.send(message)


class _Command:
    def __init__(self, owner: Commands, command_id: int, request: dict[str, Any]) -> None:
        self.id = command_id
        self._owner = owner
        self._request = request
        self._proc: subprocess.Popen[bytes] | None = None
        self._own_group = False
        self._stdin = bytearray(str(request.get("stdin") or "").encode("utf-8", "surrogateescape"))
        self._stdin_eof = not request.get("keep_stdin")
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._killed = False

    def not_started(self, why: str) -> None:
        self._end(None, None, f"the command could not be started: {why}")

    def feed(self, data: bytes, eof: bool) -> None:
        with self._lock:
            self._stdin += data
            self._stdin_eof = self._stdin_eof or eof
        self._wake()

    def kill(self) -> None:
        self._killed = True
        proc = self._proc
        if proc is None:
            return  # not started yet: run() sees _killed
        if proc.returncode is not None:
            return  # reaped, its group ended before: its pid may be another process's now
        if self._own_group:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        else:
            for pid in [proc.pid, *_descendants(proc.pid)]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self._wake()

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def run(self) -> None:
        env = {**os.environ, **{str(k): str(v) for k, v in dict(self._request.get("env") or {}).items()}}
        env.setdefault("PATH", DEFAULT_PATH)
        try:
            self._proc, self._own_group = self._owner.spawn(["/bin/sh", "-c", str(self._request.get("cmd", ""))],
                                                            str(self._request.get("cwd") or "."), env)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self._end(None, None, f"the command could not be started: {exc}")
            return
        if self._killed:
            self.kill()
        try:
            self._pump_io(self._proc)
        finally:
            if self._own_group:
                # The group's rest is ended while sh's zombie still holds its pid (waited for, not reaped:
                # WNOWAIT). Reaped first, that number was free: the next command's sh could take it (a fork
                # bomb wraps pid numbers round in seconds), lead a group of that number, and be killed here.
                with contextlib.suppress(ChildProcessError):
                    os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOWAIT)
                _end_group(self._proc.pid)
            code = self._proc.wait()
        self._end(code if code >= 0 else None, -code if code < 0 else None, None)

    def _pump_io(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
        stdin_fd: int | None = proc.stdin.fileno()
        decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}
        selector = selectors.DefaultSelector()
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            os.set_blocking(stream.fileno(), False)
            selector.register(stream.fileno(), selectors.EVENT_READ, name)
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        os.set_blocking(proc.stdin.fileno(), False)
        open_outputs = 2
        stdin_watched = False
        try:
            while open_outputs:
                with self._lock:
                    pending, eof = bool(self._stdin), self._stdin_eof
                if stdin_fd is not None:
                    if not pending and eof:
                        if stdin_watched:
                            selector.unregister(stdin_fd)
                        proc.stdin.close()
                        stdin_fd, stdin_watched = None, False
                    elif pending and not stdin_watched:
                        selector.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
                        stdin_watched = True
                    elif not pending and stdin_watched:
                        selector.unregister(stdin_fd)
                        stdin_watched = False
                events = selector.select(EXITED_POLL)
                if not events and proc.poll() is not None:
                    break  # sh is gone; whatever holds the pipes open is not the command any more
                for key, _mask in events:
                    if key.data == "wake":
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 4096)
                    elif key.data == "stdin" and stdin_fd is not None:
                        stdin_fd = self._write_stdin(proc, stdin_fd, selector)
                        stdin_watched = stdin_fd is not None and stdin_watched
                    else:
                        if not self._read(key.fd, key.data, decoders[key.data]):
                            selector.unregister(key.fd)
                            open_outputs -= 1
        finally:
            for name in ("stdout", "stderr"):
                tail = decoders[name].decode(b"", final=True)
                if tail:
                    self._owner.send({"t": "cmd_out", "id": self.id, "name": name, "text": tail})
            selector.close()
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                with contextlib.suppress(OSError):
                    stream.close()

    def _write_stdin(self, proc: subprocess.Popen[bytes], fd: int, selector: selectors.BaseSelector) -> int | None:
        with self._lock:
            try:
                written = os.write(fd, bytes(self._stdin[:READ_SIZE]))
            except BlockingIOError:
                return fd
            except OSError:  # the command closed its stdin (EPIPE): nothing more will be read
                self._stdin.clear()
                self._stdin_eof = True
                selector.unregister(fd)
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.close()
                return None
            del self._stdin[:written]
        return fd

    def _read(self, fd: int, name: str, decoder: codecs.IncrementalDecoder) -> bool:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        text = decoder.decode(data)
        if text:
            self._owner.send({"t": "cmd_out", "id": self.id, "name": name, "text": text})
        return True

    def _end(self, exit_code: int | None, signum: int | None, error: str | None) -> None:
        fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1  # a late kill writes nowhere
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._owner.finished(self, {"t": "cmd_exit", "id": self.id, "exit_code": exit_code, "signal": signum,
                                    "error": error})


def _start_thread(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


def _when_a_slot_is_free(start: Callable[[], T]) -> T:
    """``start()``, tried again for up to ``START_RETRY`` seconds while the pids limit refuses a new thread
    (RuntimeError) or process (EAGAIN)."""
    deadline = time.monotonic() + START_RETRY
    while True:
        try:
            return start()
        except (RuntimeError, BlockingIOError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _end_group(pgid: int) -> None:
    """The command is over: what it left running in its process group goes with it, and is reaped here.

    In a pid namespace the orphans are pid 1's children (this interpreter's), and nothing else would
    reap them: zombies would pile up against the pids limit. Only the group's own members are
    waited for, so a cell's subprocesses keep their exit statuses."""
    # Not the leader (pgid itself): its parent's Popen reaps it.
    members = [pid for pid, (_parent, group) in _processes().items()
               if group == pgid and pid not in (os.getpid(), pgid)]
    if not members:
        return
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    waiting = set(members)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                if not os.path.exists(f"/proc/{pid}"):
                    waiting.discard(pid)  # gone (reaped by its own parent, in the group too)
                continue
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)


def _processes() -> dict[int, tuple[int, int]]:
    """Every visible process: pid -> (parent pid, process group), from ``/proc``."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                found[int(entry)] = (int(fields[1]), int(fields[2]))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _descendants(root: int) -> list[int]:
    """The processes below ``root``, from ``/proc`` (parents first)."""
    parents = {pid: parent for pid, (parent, _group) in _processes().items()}
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found
