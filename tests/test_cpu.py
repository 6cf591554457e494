"""The cpu controller: sandboxes weighted below the server, each capped at its `cpus`, tenants in groups of their own."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable

import pytest
from conftest import TIGHT_LIMITS

from sandlot import Engine, EngineConfig, InvalidRequestError
from sandlot.engine import cpu
from sandlot.engine.cgroups import CgroupManager, Hierarchy, detect

CPU = detect().get("cpu")
needs_cpu = pytest.mark.skipif(os.geteuid() != 0 or CPU is None, reason="needs root and the cpu controller")

SPIN_ONE_SECOND = """
import time
end = time.monotonic() + 1.0
while time.monotonic() < end:
    pass
print(round(time.process_time(), 2))
"""


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def weight(path: str) -> int:
    assert CPU is not None
    return int(read(os.path.join(path, "cpu.shares" if CPU.version == 1 else "cpu.weight")))


def quota(path: str) -> float:
    """The cap of a cpu cgroup, in CPUs."""
    assert CPU is not None
    if CPU.version == 1:
        return int(read(os.path.join(path, "cpu.cfs_quota_us"))) / int(read(os.path.join(path, "cpu.cfs_period_us")))
    limit, period = read(os.path.join(path, "cpu.max")).split()
    return int(limit) / int(period)


def with_engine(test: Callable[[Engine], Awaitable[None]]) -> None:
    """Run ``test`` against a fresh engine of its own (its cgroup tree is what the test looks at)."""
    async def main() -> None:
        async with Engine(EngineConfig(preload=(), pool_size=2, limits=TIGHT_LIMITS)) as engine:
            await test(engine)
    asyncio.run(main())


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


def subdirs(path: str) -> list[str]:
    with os.scandir(path) as entries:
        return sorted(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))


def tenant_groups(parent: str) -> list[str]:
    return [path for path in subdirs(parent) if os.path.basename(path) != cpu.POOL]


def instance_dir(engine: Engine) -> str:
    factory = engine._factory
    assert factory is not None and factory.cgroups is not None
    return factory.cgroups._parents["cpu"]


@needs_cpu
def test_sandboxes_weigh_below_the_server_and_each_is_capped() -> None:
    async def check(engine: Engine) -> None:
        await wait_until(lambda: len(engine.pool.ready) == 2)
        parent = instance_dir(engine)
        pool = os.path.join(parent, cpu.POOL)
        assert weight(parent) == (cpu.SANDBOXES_SHARES if CPU and CPU.version == 1 else cpu.SANDBOXES_SHARES * 100 // 1024)
        assert weight(pool) == (cpu.POOL_SHARES if CPU and CPU.version == 1 else cpu.POOL_SHARES * 100 // 1024)
        pooled = subdirs(pool)
        assert len(pooled) == 2 and all(quota(path) == 1.0 for path in pooled)
        for sandbox in engine.pool.ready:
            assert sandbox.cgroup is not None and sandbox.cgroup.cpu_dir in pooled
            assert read(os.path.join(sandbox.cgroup.cpu_dir, "cgroup.procs")).split() == [str(sandbox.pid)]
    with_engine(check)


@needs_cpu
def test_a_sandbox_gets_no_more_cpu_than_its_cpus() -> None:
    async def check(engine: Engine) -> None:
        session = await engine.create_session(limits={"cpus": 0.5})
        sandbox = session._sandbox
        assert sandbox is not None and sandbox.cgroup is not None and sandbox.cgroup.cpu_dir is not None
        spun = await session.execute(SPIN_ONE_SECOND)
        assert spun.status == "ok", spun
        # One second of spinning at half a CPU: at most about half a second of CPU (quota periods are 100 ms).
        # (No lower bound: on a busy host it may get less; then the kernel had no reason to hold it back.)
        used = float(spun.stdout)
        assert used <= 0.6, spun.stdout
        if used >= 0.4:
            assert cpu.throttled_periods(sandbox.cgroup.cpu_dir) >= 1
        await engine.close_session(session.id)
    with_engine(check)


def test_cpus_beyond_the_maximum_is_refused() -> None:
    async def check(engine: Engine) -> None:
        with pytest.raises(InvalidRequestError, match="cpus=64 is above the server's maximum of 8"):
            await engine.execute("1", limits={"cpus": 64})
        with pytest.raises(InvalidRequestError, match="cpus must be a positive number"):
            await engine.execute("1", limits={"cpus": 0})
    with_engine(check)


@needs_cpu
def test_each_tenant_has_one_group_made_on_demand_and_removed_when_empty() -> None:
    async def check(engine: Engine) -> None:
        parent = instance_dir(engine)
        a1 = await engine.create_session(owner="key_a")
        a2 = await engine.create_session(owner="key_a")
        b = await engine.create_session(owner="key_b", limits={"cpus": 0.25})
        sandboxes = {s.id: s._sandbox for s in (a1, a2, b)}
        await wait_until(lambda: all(s is not None and s.placing is not None and s.placing.done() for s in sandboxes.values()))
        dirs = {sid: os.path.dirname(s.cgroup.cpu_dir) for sid, s in sandboxes.items() if s and s.cgroup and s.cgroup.cpu_dir}
        assert dirs[a1.id] == dirs[a2.id] != dirs[b.id]
        groups = tenant_groups(parent)
        tenant_weight = cpu.TENANT_SHARES if CPU and CPU.version == 1 else cpu.TENANT_SHARES * 100 // 1024
        assert len(groups) == 2 and all(weight(g) == tenant_weight for g in groups)
        # Named by a counter: a sandbox sees its own cgroup path, and learns nothing of the keys from it.
        assert all(os.path.basename(g)[0] == "t" and os.path.basename(g)[1:].isdigit() for g in groups)
        sandbox_b = sandboxes[b.id]
        assert sandbox_b is not None and sandbox_b.cgroup is not None and sandbox_b.cgroup.cpu_dir is not None
        assert quota(sandbox_b.cgroup.cpu_dir) == 0.25
        assert read(os.path.join(sandbox_b.cgroup.cpu_dir, "cgroup.procs")).split() == [str(sandbox_b.pid)]
        # The session works where it moved, and its next interpreter (a pooled one, its volume attached) is moved
        # to its tenant's group as it is taken.
        assert (await b.execute("x = 6 * 7\nx")).outputs[0].data["text/plain"] == "42"
        killed = await b.execute("x = []\nwhile True:\n    x.append(b'x' * (16 << 20))")
        assert killed.status == "memory"
        again = await b.execute("1 + 1")
        assert again.restarted and b._sandbox is not None and b._sandbox.cgroup is not None
        placed = b._sandbox
        await wait_until(lambda: placed.placing is None or placed.placing.done())
        # (Its group went with its killed interpreter, the last sandbox in it, and came back with the next.)
        assert os.path.dirname(b._sandbox.cgroup.cpu_dir or "") not in (dirs[a1.id], os.path.join(parent, cpu.POOL))
        assert quota(b._sandbox.cgroup.cpu_dir or "") == 0.25
        await engine.close_session(a1.id)
        assert len(tenant_groups(parent)) == 2
        await engine.close_session(a2.id)
        await engine.close_session(b.id)
        assert tenant_groups(parent) == []
    with_engine(check)


@needs_cpu
def test_a_one_shot_run_is_placed_in_its_tenants_group_while_it_runs() -> None:
    async def check(engine: Engine) -> None:
        parent = instance_dir(engine)
        spin = asyncio.ensure_future(engine.execute("while True: pass", timeout=1.5, tenant="key_spin"))
        await wait_until(lambda: tenant_groups(parent) != [])
        group = tenant_groups(parent)[0]
        await wait_until(lambda: any(read(os.path.join(sb, "cgroup.procs")) for sb in subdirs(group)))
        assert (await spin).status == "timeout"
        await wait_until(lambda: not os.path.isdir(group))
    with_engine(check)


def test_a_cpu_controller_that_cannot_be_used_is_left_out() -> None:
    """A cpu hierarchy whose files cannot be written (here: v2 without cpu in its parent's subtree_control)
    leaves sandboxes unweighted and uncapped; memory and pids still work."""
    root = tempfile.mkdtemp()
    try:
        fake = Hierarchy("cpu", 2, root, "/")
        os.makedirs(os.path.join(root, "sandlot-1-abcdef", "cgroup.subtree_control"))  # a write to it fails
        manager = CgroupManager({"cpu": fake}, "sandlot-1-abcdef")
        assert manager.hierarchies == {} and manager.tenants is None
        assert manager.create("sb-1-ab", memory_bytes=1 << 30, pids=64, cpus=1.0).cpu_dir is None
    finally:
        shutil.rmtree(root)
