"""What one fresh sandbox costs in CPU, step by step (issue #13: profile before cutting).

Two parts, one run, on an in-process engine with its default setup:

1. **The real path** (the engine's factory, the real zygote): for N sandboxes one after another, the host's CPU
   and wall time to start one (workspace, cgroups, spawn request, wait for ready), the zygote's CPU for the fork
   (its ``/proc/PID/schedstat``), the sandbox's own CPU up to ready (containment + runtime start-up) and for its
   first cell (``pass``), the CPU of its exit (the kernel's teardown of its namespaces and mounts, as the zygote's
   ``wait4`` accounts it), and the host's CPU and wall time to destroy it.
2. **Each containment step**: ``sandlot_runtime.contain`` itself (namespaces mode), with the engine's own setup
   and a spec built like the factory's, run in a child forked here, each step timed with the thread's CPU clock
   and the wall clock through ``contain``'s ``mark`` hook. The fork here is of this
   process, not of the zygote, and without a new pid namespace (this process has threads, and unshare(CLONE_NEWPID)
   refuses them): part 1 gives the zygote's fork with its pid namespace; here /proc is mounted from this one.

Needs root (namespaces mode). ``/proc/PID/schedstat`` is in ns, so small costs are visible (``stat``'s ticks are
10 ms).

    python3 scripts/contained.py python3 benchmarks/bench_sandbox_cost.py [--count N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import sys
import time
from typing import Any

from sandlot import Engine, EngineConfig
from sandlot._config import Limits
from sandlot_runtime import fds
from sandlot_runtime.contain import contain
from sandlot_runtime.spec import SandboxSpec


def schedstat_ms(pid: int) -> float:
    """CPU time of a process's main thread so far (ns precision)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e6


def process_cpu_ms(pid: int) -> float:
    """CPU time of every thread of a process (schedstat of each task)."""
    total = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e6
        except FileNotFoundError:
            pass
    return total


class Samples:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[list[float], list[float]]] = {}

    def add(self, step: str, cpu_ms: float | None, wall_ms: float | None = None) -> None:
        cpu, wall = self.rows.setdefault(step, ([], []))
        if cpu_ms is not None:
            cpu.append(cpu_ms)
        if wall_ms is not None:
            wall.append(wall_ms)

    def table(self, title: str) -> list[str]:
        lines = [f"| {title} | CPU ms (median) | wall ms (median) |", "|---|---|---|"]
        for step, (cpu, wall) in self.rows.items():
            cpu_text = f"{statistics.median(cpu):.2f}" if cpu else ""
            wall_text = f"{statistics.median(wall):.2f}" if wall else ""
            lines.append(f"| {step} | {cpu_text} | {wall_text} |")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {step: {"cpu_ms": statistics.median(cpu) if cpu else None, "wall_ms": statistics.median(wall) if wall else None}
                for step, (cpu, wall) in self.rows.items()}


async def real_path(engine: Engine, count: int) -> Samples:
    factory = engine._factory
    assert factory is not None
    zygote_pid = factory.zygote.pid
    assert zygote_pid is not None
    me = os.getpid()
    samples = Samples()
    for _ in range(count):
        await asyncio.sleep(0.05)  # let the previous teardown's background work finish
        host0, zyg0, wall0 = process_cpu_ms(me), schedstat_ms(zygote_pid), time.perf_counter()
        sandbox = await factory.start(Limits())
        wall1, host1, zyg1 = time.perf_counter(), process_cpu_ms(me), schedstat_ms(zygote_pid)
        ready_cpu = process_cpu_ms(sandbox.pid)
        samples.add("host: start (workspace, cgroups, spawn, wait for ready)", host1 - host0, (wall1 - wall0) * 1e3)
        samples.add("zygote: fork + bookkeeping", zyg1 - zyg0)
        samples.add("sandbox: containment + runtime start, to ready", ready_cpu)
        cell0 = time.perf_counter()
        outcome = await sandbox.run("pass", count=1, limits=Limits())
        cell_wall = (time.perf_counter() - cell0) * 1e3
        assert outcome is not None
        after_cell = process_cpu_ms(sandbox.pid)
        samples.add("sandbox: first cell (`pass`)", after_cell - ready_cpu, cell_wall)
        host2, wall2 = process_cpu_ms(me), time.perf_counter()
        exit_wait = asyncio.ensure_future(factory.zygote.exit_of(sandbox.pid))
        await factory.destroy(sandbox, keep_workspace=False)
        host3, wall3 = process_cpu_ms(me), time.perf_counter()
        exited = await asyncio.wait_for(exit_wait, 5)
        samples.add("host: destroy (kill, wait for exit, rmdir cgroups, remove workspace)", host3 - host2,
                    (wall3 - wall2) * 1e3)
        samples.add("sandbox: exit (kernel: namespaces, mounts, memory)", max(0.0, exited.cpu_ms - after_cell))
    return samples


def steps_in_child(setup: Any, spec: SandboxSpec, channel: int, out: int, err: int, life_r: int) -> None:
    """``sandlot_runtime.contain`` itself, each step timed through its ``mark`` hook; the marks go back on the
    channel. Never returns."""
    marks: list[tuple[str, int, int]] = []

    def mark(step: str) -> None:
        marks.append((step, time.clock_gettime_ns(time.CLOCK_THREAD_CPUTIME_ID), time.perf_counter_ns()))

    given = channel
    ours = os.fstat(channel)
    try:
        mark("start")
        channel = contain(setup, spec, channel, out, err, life_r, mark=mark)
        os.write(channel, json.dumps(marks).encode())
    except BaseException as exc:  # noqa: BLE001 (reported to the parent)
        # As the zygote does: the channel is at its final fd if the failing step came after `fds`, and at the fd it
        # was given before; only an fd that is that socket (another fd 3 could be anything) gets the report.
        report = json.dumps({"error": repr(exc)[:4000]}).encode()
        for fd in dict.fromkeys((fds.CHANNEL_FD, given)):
            try:
                found = os.fstat(fd)
                if (found.st_dev, found.st_ino) == (ours.st_dev, ours.st_ino):
                    os.write(fd, report)
                    break
            except OSError:
                continue
        os._exit(70)
    os._exit(0)


async def each_step(engine: Engine, count: int) -> Samples:
    factory = engine._factory
    assert factory is not None and factory.cgroups is not None
    setup = factory._setup
    samples = Samples()
    limit = Limits()
    for _ in range(count):
        uid = factory.uids.take()
        workspace = factory.workspaces.create(f"cost-{uid}-{secrets.token_hex(3)}", owner_uid=uid,
                                              size_bytes=limit.workspace_size)
        cgroup = factory.cgroups.create(f"cost-{uid}-{secrets.token_hex(2)}", memory_bytes=limit.memory,
                                        pids=limit.pids, cpus=limit.cpus, cpu_parent=None)
        spec = SandboxSpec(uid=uid, workspace=workspace.path, tmp_size=limit.tmp_size,
                           cgroup_procs=cgroup.procs_files,
                           rlimits=factory.rlimits_for(limit, has_cgroup=True))
        ours, theirs = socket.socketpair()
        life_r, life_w = os.pipe()
        sys.stdout.flush()
        wall0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(life_w)
            steps_in_child(setup, spec, theirs.fileno(), 1, 2, life_r)
        fork_wall = (time.perf_counter() - wall0) * 1e3
        theirs.close()
        os.close(life_r)
        raw = ours.recv(1 << 16)
        _, status, usage = os.wait4(pid, 0)
        ours.close()
        os.close(life_w)
        if not raw:  # the child could not even report (its channel gone): say so, not a JSON error
            raise RuntimeError(f"the contained child ended without a report (wait status {status:#x})")
        result = json.loads(raw)
        if isinstance(result, dict):
            raise RuntimeError(result["error"])
        for (_, cpu0, wall_a), (step, cpu1, wall_b) in zip(result, result[1:], strict=False):
            samples.add(step, (cpu1 - cpu0) / 1e6, (wall_b - wall_a) / 1e6)
        total_cpu = (usage.ru_utime + usage.ru_stime) * 1e3
        samples.add("(the child's whole life, wait4: user + sys)", total_cpu)
        samples.add("(of which sys)", usage.ru_stime * 1e3)
        samples.add("(fork here, parent's wall)", None, fork_wall)  # its CPU is in neither clock read here
        t0 = time.process_time()
        gone = cgroup.remove()
        factory.workspaces.remove(workspace)
        samples.add("teardown: rmdir cgroups + remove workspace (host)", (time.process_time() - t0) * 1e3)
        assert gone
        factory.uids.release(uid)
    return samples


async def main_async(count: int, out: str | None) -> None:
    async with Engine(EngineConfig(pool_size=1)) as engine:
        await engine.execute("pass")
        await asyncio.sleep(1.0)
        real = await real_path(engine, count)
        steps = await each_step(engine, count)
    print(f"one fresh sandbox, {count} one after another; {os.cpu_count()} CPUs\n")
    print("\n".join(real.table("real path (engine factory, zygote)")))
    print()
    print("\n".join(steps.table("containment steps (child forked here)")))
    if out:
        with open(out, "w") as f:
            json.dump({"real": real.as_dict(), "steps": steps.as_dict()}, f, indent=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--json")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces mode)", file=sys.stderr)
        return 2
    asyncio.run(main_async(args.count, args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
