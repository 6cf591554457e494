"""Host side of one sandbox: its channel, its output pipes, its life and death.

A ``Sandbox`` is one contained interpreter. It runs cells (``run``), can be
interrupted and killed, and tells why it died. Everything it reads from the
sandbox is hostile: frames are size-capped and schema-checked, output beyond
the limits is dropped (``truncated``), and a protocol violation kills it.

Output order: Python's stdout and stderr and rich outputs all arrive as frames
on the channel, in the order they happened. File descriptors 1 and 2 are pipes
(so subprocesses and C code are captured too); the host drains them before it
handles each frame, so their text lands close to where it was written.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from sandlot_runtime import framing

from .._config import Limits
from .._errors import ProtocolError, SpawnError
from .._models import (
    AttachedMessage,
    CallMessage,
    CommandExitMessage,
    CommandOutputMessage,
    DoneMessage,
    ErrorOutput,
    ExecutionError,
    FatalMessage,
    OutputMessage,
    ReadyMessage,
    SavedMessage,
    SaveSummary,
    Status,
    StreamMessage,
    parse_sandbox_message,
)
from ..egress import SandboxProxy
from ..tools.broker import ToolBroker
from .cgroups import SandboxCgroup
from .collector import Collector, EventCallback, RunOutcome
from .commands import SandboxCommands
from .workspace import Workspace
from .zygote import Exit, Zygote

_STREAMS = ("stdout", "stderr")
RLIMIT_FIELDS = {"file_size": "fsize", "open_files": "nofile", "address_space": "as"}
"""Limits fields enforced as rlimits inside the sandbox (``limits`` names in the runtime)."""
MAX_TOOL_RESULT = 8 << 20


def can_retarget(started_with: Limits, wanted: Limits, *, has_cgroup: bool) -> bool:
    """Whether a fresh sandbox started with ``started_with`` can be held to ``wanted`` instead."""
    lower = all(getattr(wanted, name) <= getattr(started_with, name) for name in RLIMIT_FIELDS)
    if not has_cgroup:
        # Rlimits are all there is (degraded mode): memory is folded into the address-space limit
        # and pids is RLIMIT_NPROC, so those stay as the sandbox was started.
        return lower and all(getattr(wanted, name) == getattr(started_with, name)
                             for name in ("memory", "pids", "address_space"))
    return lower


class Sandbox:
    """A contained interpreter, forked by the zygote, owned by the engine."""

    def __init__(self, *, pid: int, pidfd: int, uid: int, channel: socket.socket, stdout_fd: int, stderr_fd: int,
                 cgroup: SandboxCgroup | None, workspace: Workspace, zygote: Zygote, process_group: bool,
                 max_frame: int, limits: Limits) -> None:
        self.pid = pid
        self.limits = limits
        """The limits the sandbox is held to now (cgroup, rlimits); a run may ask for others."""
        self.uid = uid
        self.cgroup = cgroup
        self.workspace = workspace
        self.created_at = time.monotonic()
        self._pidfd = pidfd
        self._channel = channel
        self._pipes = {"stdout": stdout_fd, "stderr": stderr_fd}
        self._utf8 = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in _STREAMS}
        self.zygote = zygote
        self.lost: str | None = None
        """Why this sandbox was lost with its zygote (then its run fails with RestartingError), or None."""
        self._process_group = process_group
        self._decoder = framing.FrameDecoder(max_frame)
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._done: asyncio.Future[DoneMessage | None] | None = None
        self._collector: Collector | None = None
        self._run_id = 0
        self._killed_for: str | None = None
        self._problem: str | None = None
        self._send_lock = asyncio.Lock()  # frames to the sandbox must not interleave
        self._broker: ToolBroker | None = None
        self._cell_context: contextvars.Context | None = None
        """The running cell's context: its tool calls run in it (its trace span is their parent)."""
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self.installed_tools: tuple[str, ...] | None = None
        self._pending_rlimits: dict[str, list[int]] = {}
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self.save_pending = False
        """An ``exec`` asked for a save whose summary has not come back yet (see ``sync``)."""
        self.egress: SandboxProxy | None = None
        """The egress proxy serving this sandbox (a sandbox with network); closed when it is destroyed."""
        self.on_saved: Callable[[SaveSummary], None] | None = None
        """Called with each save summary that arrives (in a ``done`` or in answer to ``sync``)."""
        """Requests that are answered by a message of their own (``saved``, ``attached``), by id."""
        self.alive = True
        self.used = False
        self.commands = SandboxCommands(self._send, self.kill,
                                        lambda: self.cgroup.oom_kills() if self.cgroup is not None else 0)
        """The shell commands running here (``engine.commands``)."""
        self.tenant: str | None = None
        """Whose sandbox this is (its cpu cgroup is in that tenant's group); None while pooled."""
        self.placing: asyncio.Future[None] | None = None
        """The move of a taken pooled sandbox to its tenant's cpu group, while a worker thread does it."""
        channel.setblocking(False)
        self._loop.add_reader(channel.fileno(), self._on_channel)
        for name, fd in self._pipes.items():
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._on_pipe, name)

    def __repr__(self) -> str:
        state = "alive" if self.alive else "dead"
        return f"<Sandbox pid={self.pid} uid={self.uid} {state}{' used' if self.used else ''}>"

    def can_retarget(self, limits: Limits) -> bool:
        """Whether this fresh sandbox can be held to ``limits``: rlimits can only go down from inside."""
        return can_retarget(self.limits, limits, has_cgroup=self.cgroup is not None)

    def retarget(self, limits: Limits) -> None:
        """Hold this fresh sandbox to other limits before its first run (see ``can_retarget``).

        The host changes its cgroup (memory, pids, cpus); lower rlimits travel with the next ``exec``
        and the runtime applies them, soft and hard, before any user code runs, so that code
        cannot raise them again. ``tmp_size`` stays as the sandbox was built.
        """
        if limits == self.limits:
            return
        if self.cgroup is not None and (limits.memory, limits.pids, limits.cpus) != \
                (self.limits.memory, self.limits.pids, self.limits.cpus):
            self.cgroup.set_limits(memory_bytes=limits.memory, pids=limits.pids, cpus=limits.cpus)
        for name, rlimit in RLIMIT_FIELDS.items():
            value = getattr(limits, name)
            if value != getattr(self.limits, name):
                self._pending_rlimits[rlimit] = [value, value]
        self.limits = limits

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            self.kill()
            raise SpawnError(f"the sandbox was not ready within {timeout:.0f}s") from None

    @property
    def pidfd(self) -> int:
        """The pidfd of pid 1 (the egress proxy enters its network namespace through it)."""
        return self._pidfd

    @property
    def is_ready(self) -> bool:
        return self._ready.done() and self._ready.exception() is None and self.alive

    async def run(self, code: str, *, count: int, limits: Limits, env: dict[str, str] | None = None,
                  on_event: EventCallback | None = None, interrupt_grace: float | None = None,
                  tools: ToolBroker | None = None, save: dict[str, Any] | None = None) -> RunOutcome:
        """Run one cell. With ``interrupt_grace``, a timeout first interrupts (session); else it kills.

        With ``save`` ({dir, max_bytes}), the runtime saves the session's state once the cell's result
        has left; ``saved()`` then waits for that (off the request path)."""
        if not self.alive:
            raise SpawnError("the sandbox is not running")
        self.used = True
        self._run_id += 1
        self._collector = Collector(limits, on_event)
        self._done = self._loop.create_future()
        if self.cgroup is not None:
            self.cgroup.reset_peak_memory()
        message: dict[str, Any] = {"t": "exec", "id": self._run_id, "code": code, "count": count,
                                   "cpu_seconds": limits.cpu_seconds, "timeout": limits.timeout}
        if env:
            message["env"] = env
        if save is not None:
            message["save"] = save
            self.save_pending = True
        if self._pending_rlimits:
            message["rlimits"], self._pending_rlimits = self._pending_rlimits, {}
        self._broker = tools
        self._cell_context = contextvars.copy_context()
        if tools is not None and self.installed_tools != tuple(tools.registry.names):
            message["tools"] = tools.specs()
            self.installed_tools = tuple(tools.registry.names)
        started = time.perf_counter()
        timed_out = False
        try:
            await self._send(message)
            done = await asyncio.wait_for(asyncio.shield(self._done), limits.timeout)
        except TimeoutError:
            timed_out = True
            done = await self._stop_after_timeout(interrupt_grace)
        except OSError:
            done = None  # the sandbox is already gone; the channel says why below
        except asyncio.CancelledError:
            self.kill("cancelled")  # a cancelled run leaves nothing running
            raise
        finally:
            self._broker = None
            self._cell_context = None
            for task in list(self._tool_tasks):
                task.cancel()  # a call still running when the cell ended is of no use to anyone
        duration_ms = (time.perf_counter() - started) * 1000.0
        self._drain_pipes()
        collector, self._collector, self._done = self._collector, None, None
        outcome = await self._outcome(collector, done, timed_out, duration_ms, limits)
        outcome.tool_calls = list(tools.calls) if tools is not None else []
        return outcome

    async def sync(self, timeout: float) -> SavedMessage | None:
        """Wait until the save after the last cell is done, and get what it wrote (None: the sandbox died, too slow)."""
        reply = await self._request({"t": "sync"}, timeout)
        if isinstance(reply, SavedMessage):
            self.save_pending = False
            return reply
        return None

    async def save(self, directory: str, max_bytes: int, timeout: float) -> SavedMessage | None:
        """Save the session's state now (pause, with snapshots ``on_pause``)."""
        reply = await self._request({"t": "save", "dir": directory, "max_bytes": max_bytes}, timeout)
        return reply if isinstance(reply, SavedMessage) else None

    async def attach(self, workdir: str, *, home: str | None, restore: bool, timeout: float) -> AttachedMessage | None:
        """Tell the interpreter its session's workspace is in place (move there), and to load the saved state."""
        message: dict[str, Any] = {"t": "attach", "workdir": workdir, "restore": restore}
        if home is not None:
            message["home"] = home
        reply = await self._request(message, timeout)
        return reply if isinstance(reply, AttachedMessage) else None

    async def _request(self, message: dict[str, Any], timeout: float) -> Any:
        if not self.alive:
            return None
        self._run_id += 1
        self._replies[self._run_id] = self._loop.create_future()
        try:
            await self._send({**message, "id": self._run_id})
        except OSError:
            self._replies.pop(self._run_id, None)
            return None
        return await self._reply_to(self._run_id, timeout)

    async def _reply_to(self, request_id: int, timeout: float) -> Any:
        waiter = self._replies.get(request_id)
        if waiter is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return None
        finally:
            self._replies.pop(request_id, None)

    def interrupt(self, *, timed_out: bool = False) -> None:
        """Ask the running cell to stop, as Jupyter's interrupt does: SIGINT to pid 1 (KeyboardInterrupt).

        ``timed_out``: SIGXCPU instead, which the runtime also gets from the kernel at the CPU limit;
        the cell then stops with the time limit's error (``TimeoutError: the run exceeded its time
        limit...``, as a one-shot run reports it), not with a KeyboardInterrupt nobody sent.
        """
        if self.alive and self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGXCPU if timed_out else signal.SIGINT)

    def live_figures(self) -> dict[str, int | float | None]:
        """What the sandbox uses now: CPU so far, memory now and at peak, processes. From its cgroups;
        without them (degraded mode), from /proc for its process group."""
        pids = self.cgroup.members() if self.cgroup is not None else _group_members(self.pid)
        cpu_ms = sum(_cpu_ms(pid) for pid in pids)
        if self.cgroup is not None:
            memory, peak, count = self.cgroup.memory_now(), self.cgroup.peak_memory(), self.cgroup.pids_now()
        else:
            memory, peak, count = sum(_rss(pid) for pid in pids), None, len(pids)
        return {"cpu_ms": round(cpu_ms, 3), "memory_bytes": memory, "peak_memory_bytes": peak, "pids": count}

    @property
    def doomed(self) -> bool:
        """Dead, or killed and about to be (its channel may not have closed yet): no cell may run here."""
        return not self.alive or self._killed_for is not None

    def lose(self, reason: str) -> None:
        """Kill this sandbox because its zygote is gone: not the run's fault, so not a run outcome."""
        self.lost = reason
        self.kill("lost")

    def kill(self, reason: str = "killed") -> None:
        """SIGKILL pid 1; the kernel then kills everything in its pid namespace."""
        if self._killed_for is None:
            self._killed_for = reason
        if self._process_group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    async def wait_exit(self, timeout: float) -> Exit | None:
        """How pid 1 ended (None: not within ``timeout``). Its zygote reaps and reports it; once that
        zygote is gone, the pidfd tells when the process has ended (it is then reaped elsewhere)."""
        try:
            if self.zygote.exited.done() and self._pidfd >= 0:
                await asyncio.wait_for(self._pidfd_readable(), timeout)
                return Exit(signal.SIGKILL, 0.0)
            return await asyncio.wait_for(asyncio.shield(self.zygote.exit_of(self.pid)), timeout)
        except TimeoutError:
            return None

    async def _pidfd_readable(self) -> None:
        ended: asyncio.Future[None] = self._loop.create_future()

        def on_readable() -> None:
            if not ended.done():
                ended.set_result(None)

        self._loop.add_reader(self._pidfd, on_readable)
        try:
            await ended
        finally:
            self._loop.remove_reader(self._pidfd)

    def close_io(self) -> None:
        """Stop watching and close our ends of the channel and pipes."""
        self.alive = False
        self.commands.end_all("the sandbox ended")
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._channel.fileno())
        self._channel.close()
        for fd in self._pipes.values():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._pipes = {}
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        self.zygote.forget(self.pid)

    # ---- internals ---------------------------------------------------------

    async def _stop_after_timeout(self, interrupt_grace: float | None) -> DoneMessage | None:
        assert self._done is not None
        if interrupt_grace is not None:
            self.interrupt(timed_out=True)
            try:
                return await asyncio.wait_for(asyncio.shield(self._done), interrupt_grace)
            except TimeoutError:
                pass
        self.kill("timeout")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._done), 2.0)
        return None

    async def _outcome(self, collector: Collector, done: DoneMessage | None, timed_out: bool,
                       duration_ms: float, limits: Limits) -> RunOutcome:
        if done is not None:
            status: Status = "timeout" if timed_out else done.status
            cpu_ms = done.cpu_ms
            peak = self.cgroup.peak_memory() if self.cgroup is not None else None
            return RunOutcome(status, collector.outputs(), "".join(collector.text["stdout"]),
                              "".join(collector.text["stderr"]), done.error, duration_ms, cpu_ms,
                              peak if peak is not None else done.peak_rss, collector.truncated, False)
        # The sandbox died (or was killed) before finishing: find out why.
        self.kill()
        exit_info = await self.wait_exit(2.0)
        status, note = self._classify_death(exit_info, timed_out, limits)
        collector.add_stream("stderr", f"\n[sandlot] {note}\n")
        peak = self.cgroup.peak_memory() if self.cgroup is not None else None
        outputs = collector.outputs()
        error = ExecutionError(ename=_ENAMES[status], evalue=note, traceback=[])
        outputs.append(ErrorOutput(ename=error.ename, evalue=error.evalue, traceback=[]))
        return RunOutcome(status, outputs, "".join(collector.text["stdout"]), "".join(collector.text["stderr"]),
                          error, duration_ms, exit_info.cpu_ms if exit_info else 0.0, peak, collector.truncated, True)

    def _classify_death(self, exit_info: Exit | None, timed_out: bool, limits: Limits) -> tuple[Status, str]:
        if timed_out or self._killed_for == "timeout":
            return "timeout", f"the run exceeded its time limit of {limits.timeout:g}s and was stopped"
        if self.cgroup is not None and self.cgroup.oom_kills() > 0:
            return "memory", f"the run exceeded its memory limit of {limits.memory} bytes and was killed"
        if self._problem is not None:
            return "killed", f"the sandbox broke the channel protocol and was stopped ({self._problem})"
        if exit_info is not None and exit_info.signal == signal.SIGKILL and \
                exit_info.cpu_ms >= limits.cpu_seconds * 1000.0 * 0.95:
            return "timeout", f"the run exceeded its CPU time limit of {limits.cpu_seconds:g}s and was killed"
        if exit_info is not None and exit_info.signal is not None:
            return "killed", f"the sandbox was killed by signal {signal.Signals(exit_info.signal).name}"
        code = os.WEXITSTATUS(exit_info.status) if exit_info is not None and os.WIFEXITED(exit_info.status) else None
        return "killed", f"the interpreter exited (exit code {code})" if code is not None else "the sandbox ended"

    def _on_channel(self) -> None:
        try:
            data = self._channel.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._on_channel_closed()
            return
        if self._collector is not None:
            self._collector.channel_bytes += len(data)
        try:
            for raw in self._decoder.feed(data):
                self._handle(parse_sandbox_message(raw))
        except (framing.FrameError, ProtocolError) as exc:
            self._violation(str(exc))

    def _handle(self, message: Any) -> None:
        if isinstance(message, ReadyMessage):
            if not self._ready.done():
                self._ready.set_result(None)
        elif isinstance(message, FatalMessage):
            if not self._ready.done():
                self._ready.set_exception(SpawnError(message.message))
            self.kill()
        elif isinstance(message, StreamMessage):
            if self._collector is not None and message.id == self._run_id:
                self._drain_pipes()
                self._collector.add_stream(message.name, message.text)
        elif isinstance(message, CallMessage):
            self._start_tool_call(message)
        elif isinstance(message, OutputMessage):
            if self._collector is not None and message.id == self._run_id:
                self._drain_pipes()
                self._collector.add_output(message.output)
        elif isinstance(message, SavedMessage | AttachedMessage):
            waiter = self._replies.get(message.id) if message.id is not None else None
            if waiter is None or waiter.done():
                raise ProtocolError("a reply to a request that was never made")
            waiter.set_result(message)
        elif isinstance(message, CommandOutputMessage | CommandExitMessage):
            self.commands.on_message(message)
        elif isinstance(message, DoneMessage):
            if self._done is not None and not self._done.done():
                if message.id != self._run_id:
                    raise ProtocolError("a reply to a request that was never made")
                self._drain_pipes()
                if message.saved is not None and self.on_saved is not None:
                    self.on_saved(message.saved)
                self._done.set_result(message)

    def _start_tool_call(self, message: CallMessage) -> None:
        broker = self._broker
        if broker is None or self._collector is None:
            error = {"type": "unavailable", "message": "no tools are available here (none are allowed, or no cell runs)"}
            self._spawn_reply(self._reply(message.id, False, error))
            return
        self._spawn_reply(self._serve_tool_call(broker, message))

    def _spawn_reply(self, coro: Any) -> None:
        context = self._cell_context.copy() if self._cell_context is not None else None
        task = self._loop.create_task(coro, context=context)
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _serve_tool_call(self, broker: ToolBroker, message: CallMessage) -> None:
        ok, payload = await broker.call(message.tool, message.args)
        await self._reply(message.id, ok, payload)

    async def _reply(self, call_id: int, ok: bool, payload: Any) -> None:
        reply: dict[str, Any] = {"t": "result", "id": call_id, "ok": ok}
        reply["value" if ok else "error"] = payload
        if len(framing.encode(reply)) > MAX_TOOL_RESULT:
            reply = {"t": "result", "id": call_id, "ok": False,
                     "error": {"type": "tool_error", "message": f"the result is over {MAX_TOOL_RESULT} bytes"}}
        with contextlib.suppress(OSError):
            await self._send(reply)

    async def _send(self, message: dict[str, Any]) -> None:
        data = framing.encode(message)
        async with self._send_lock:
            await self._loop.sock_sendall(self._channel, data)

    def _violation(self, problem: str) -> None:
        self._problem = problem
        self.kill("protocol")
        self._on_channel_closed()

    def _on_channel_closed(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._channel.fileno())
        self.alive = False
        if not self._ready.done():
            self._ready.set_exception(SpawnError(self._problem or "the sandbox exited before it was ready"))
            self._ready.exception()  # mark retrieved: nobody may be waiting
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        for waiter in self._replies.values():
            if not waiter.done():
                waiter.set_result(None)
        self.commands.end_all(self._death_words())

    def _death_words(self) -> str:
        if self._killed_for == "timeout":
            return "the command exceeded its time limit and its sandbox was stopped"
        if self._problem is not None:
            return f"the sandbox broke the channel protocol and was stopped ({self._problem})"
        return "the sandbox ended"

    def _on_pipe(self, name: str) -> None:
        fd = self._pipes.get(name)
        if fd is None:
            return
        try:
            data = os.read(fd, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(fd)
            return
        text = self._utf8[name].decode(data)
        if self._collector is not None and text:
            self._collector.add_stream(name, text)

    def _drain_pipes(self) -> None:
        for name, fd in list(self._pipes.items()):
            for _ in range(64):  # bounded: a flood keeps its place in line with the other readers
                try:
                    data = os.read(fd, 1 << 16)
                except (BlockingIOError, InterruptedError, OSError):
                    break
                if not data:
                    break
                text = self._utf8[name].decode(data)
                if self._collector is not None and text:
                    self._collector.add_stream(name, text)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_ms(pid: int) -> float:
    """User + system CPU of one process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) * 1000.0 / _CLOCK_TICKS if len(fields) > 12 else 0.0


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _group_members(pgid: int) -> list[int]:
    """The processes of a degraded-mode sandbox: its process group (field 5 of /proc/PID/stat)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if len(fields) > 2 and fields[2] == str(pgid):
                members.append(int(entry))
    return members


_ENAMES: dict[Status, str] = {
    "timeout": "TimeoutError", "memory": "MemoryError", "killed": "SandboxKilled", "ok": "", "error": "",
}
