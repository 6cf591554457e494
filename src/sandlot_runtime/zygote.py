"""The zygote: imports the common libraries once, then forks sandboxes on request.

Started by the host as ``python -I -m sandlot_runtime.zygote FD`` with a clean
environment (every sandbox can read every page it inherits from here, so no
secret may ever be in this process). It must stay single-threaded: forking a
threaded process can leave locks held forever in the child.

Control protocol over the SOCK_SEQPACKET socket ``FD`` (one JSON message per
packet): the host sends a ``ZygoteSetup`` first and gets ``ready``; then
``spawn`` {req, spec} with three fds (channel, stdout, stderr) gets
``spawned`` {req, pid} with a pidfd, or ``spawn_failed`` {req, message};
``ping`` {req} gets ``pong`` {req} (the host's check that we are not stalled); and
the zygote reports each sandbox's end as ``exited`` {pid, status, cpu_ms}.
The host closing the socket ends the zygote, and with it every sandbox.
"""

from __future__ import annotations

import gc
import importlib
import io
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from . import _libc, contain, display, execute, fds, framing, heap, kernel, module_policy, namespaces, packages, tools  # noqa: F401 (loaded before forking)
from .spec import NAMESPACES, SandboxSpec, ZygoteSetup

MAX_CONTROL_MESSAGE = 1 << 20
PARENT_DEATH_SIGNAL = signal.SIGTERM
REHEARSAL_ROUNDS = 20
"""Cells of each kind ``kernel.rehearse`` runs: past the 8 calls after which 3.11 specialises a function."""
"""What the kernel sends us when the host's thread dies; handled, so we kill every sandbox first."""
_host_gone = False


def _on_parent_death(signum: int, frame: object) -> None:
    global _host_gone
    _host_gone = True


class Zygote:
    def __init__(self, control: socket.socket, setup: ZygoteSetup) -> None:
        self.control = control
        self.setup = setup
        self.own_pid_ns = namespaces.open_own_pid_namespace() if setup.isolation == NAMESPACES else -1
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # The life pipe: we hold the only write end; a sandbox sees EOF on its read end once we are
        # gone (parent_death.arm checks it after the uid change).
        self.life_r, self.life_w = os.pipe2(os.O_CLOEXEC)
        self.sandboxes: set[int] = set()
        """The pids of our sandboxes; other children we reap are orphans a sandbox left."""

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # Our own parent-death signal (the host's thread went away): a handler, so that the
        # sandboxes go first (see kill_all), and the loop wakes through the wakeup fd.
        signal.signal(PARENT_DEATH_SIGNAL, _on_parent_death)
        signal.set_wakeup_fd(self.wakeup_w)
        # poll, not select: the control fd keeps the number it had in the host, which can be above
        # select's FD_SETSIZE (1024) on a busy host; select would raise and end every sandbox.
        poller = select.poll()
        for fd in (self.control.fileno(), self.wakeup_r):
            poller.register(fd, select.POLLIN)
        try:
            while not _host_gone:
                readable = {fd for fd, _events in poller.poll()}
                if self.wakeup_r in readable:
                    _drain(self.wakeup_r)
                self._reap()
                if self.control.fileno() in readable and not self._handle_request():
                    return
        except (BrokenPipeError, ConnectionError):
            return  # the host went away: exit quietly
        finally:
            self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL every sandbox (pid 1 of its namespace, or its process group): none outlives us.

        Each sandbox would die with us anyway (its parent-death signal); this second line does not
        depend on that, and in degraded mode it also reaches what a sandbox forked."""
        for pid in list(self.sandboxes):
            try:
                if self.own_pid_ns >= 0:
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    def _handle_request(self) -> bool:
        try:
            raw, fds, _flags, _addr = socket.recv_fds(self.control, MAX_CONTROL_MESSAGE, 3)
        except InterruptedError:
            return True
        if not raw:
            return False
        request = json.loads(raw)
        if request.get("t") == "spawn":
            self._spawn(request, fds)
        elif request.get("t") == "ping":
            self._send({"t": "pong", "req": request.get("req")})
        for fd in fds:
            os.close(fd)
        return True

    def _spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        req = request["req"]
        try:
            if len(fds) != 3:
                raise ValueError(f"spawn needs 3 fds, got {len(fds)}")
            spec = SandboxSpec.from_json(json.dumps(request["spec"]).encode())
            pid = self._fork(spec, *fds)
            self.sandboxes.add(pid)
            pidfd = os.pidfd_open(pid)
        except Exception as exc:
            self._send({"t": "spawn_failed", "req": req, "message": f"{type(exc).__name__}: {exc}",
                        "errno": getattr(exc, "errno", None)})  # EAGAIN: out of processes (a pids limit)
            return
        try:
            self._send({"t": "spawned", "req": req, "pid": pid}, [pidfd])
        finally:
            os.close(pidfd)

    def _fork(self, spec: SandboxSpec, channel_fd: int, stdout_fd: int, stderr_fd: int) -> int:
        if self.own_pid_ns >= 0:
            namespaces.children_in_new_pid_namespace()
        try:
            pid = os.fork()
            if pid == 0:
                os.close(self.life_w)  # first: only the zygote may hold the life pipe's write end
                self._become_sandbox(spec, channel_fd, stdout_fd, stderr_fd)
        finally:
            if self.own_pid_ns >= 0 and os.getpid() != 1:
                namespaces.children_in_own_pid_namespace(self.own_pid_ns)
        return pid

    def _become_sandbox(self, spec: SandboxSpec, channel_fd: int, stdout_fd: int, stderr_fd: int) -> None:
        """In the child: contain, then serve user code. Never returns."""
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(PARENT_DEATH_SIGNAL, signal.SIG_DFL)
            channel_fd = contain.contain(self.setup, spec, channel_fd, stdout_fd, stderr_fd, self.life_r)
        except BaseException as exc:
            report = framing.encode({"t": "fatal", "message": f"containment failed: {exc!r}"[:4000]})
            # The channel may already have moved to its final fd number when the step failed.
            for fd in dict.fromkeys((fds.CHANNEL_FD, channel_fd)):
                try:
                    os.write(fd, report)
                    break
                except OSError:
                    continue
            os._exit(70)
        try:
            kernel.run(channel_fd)
        finally:
            os._exit(0)

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self.sandboxes:
                continue  # an orphan of a degraded-mode sandbox, reparented to us: reaped, not reported
            self.sandboxes.discard(pid)
            cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000.0
            self._send({"t": "exited", "pid": pid, "status": status, "cpu_ms": cpu_ms})

    def _send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode()
        if fds:
            socket.send_fds(self.control, [data], fds)
        else:
            self.control.send(data)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _vm_size() -> int:
    """This process's virtual memory size: what each sandbox starts with, before any user code."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _preload(modules: list[str]) -> None:
    for name in modules:
        importlib.import_module(name)
    if "matplotlib" in modules or "matplotlib.pyplot" in modules:
        # Imported by name, like every preload: the runtime itself depends on the stdlib only.
        importlib.import_module("matplotlib").use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
        # Warm the font cache and the first-figure code paths.
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_title("warm-up")
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    # A signal mask survives fork and exec: a host thread that blocks signals (a Ray worker's threads
    # do) would pass it on to every sandbox, and a cell could not be interrupted (SIGINT) or stopped at
    # its CPU limit (SIGXCPU). Sandboxes start with nothing blocked, whoever started us.
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    _libc.prctl(_libc.PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL)
    # In degraded mode a sandbox is no pid 1 that reaps its own orphans: what it leaves when it is
    # killed (its whole process group dies with it) is reparented to us and reaped, not left as
    # zombies under whatever init the host has.
    _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when we stop
    setup = ZygoteSetup.from_json(control.recv(MAX_CONTROL_MESSAGE))
    # The host says how much forking and containing yield to requests (a lower priority without the cpu
    # controller); each sandbox returns to normal priority before it serves.
    os.setpriority(os.PRIO_PROCESS, 0, setup.nice)
    started = time.perf_counter()
    _preload(setup.preload)
    preload_ms = (time.perf_counter() - started) * 1000
    if setup.deny_modules or setup.allow_modules is not None:
        # After the preloads (which the operator chose), before any sandbox: every one inherits the hooks.
        module_policy.install(module_policy.ImportPolicy(setup.environment, setup.deny_modules, setup.allow_modules))
    kernel.rehearse(REHEARSAL_ROUNDS)  # every sandbox inherits the cell path's code warmed up, shared
    gc.collect()
    gc.freeze()  # keep the collector from touching (and copying) inherited objects
    heap.fill_free_blocks()  # last: a sandbox's allocations then go to pools of its own
    zygote = Zygote(control, setup)
    try:
        zygote._send({"t": "ready", "pid": os.getpid(), "preload_ms": preload_ms,
                      "threads": len(os.listdir("/proc/self/task")), "vm_bytes": _vm_size()})
    except (BrokenPipeError, ConnectionError):
        return  # the host stopped waiting for us (it is shutting down): nothing to serve
    zygote.serve()


if __name__ == "__main__":
    main()
