"""The warm pool: pure bookkeeping, and the engine keeping it full."""

from __future__ import annotations

import asyncio
import sys
import time

from sandlot import EngineConfig, Sandlot
from sandlot._config import EnvironmentSpec
from sandlot.engine import Engine
from sandlot.engine.engine import pool_max_size
from sandlot.engine.pool import PoolState


class Item:
    def __init__(self, ready: bool = True) -> None:
        self.is_ready = ready


def test_pool_state_counts() -> None:
    pool: PoolState[Item] = PoolState(target=3, max_starting=2)
    assert repr(pool) == "<PoolState ready=0 starting=0 target=3 taken=0 failed=0>"
    assert pool.starts_needed() == 2  # capped by max_starting
    assert pool.starts_needed() == 0
    pool.start_finished(Item())
    assert pool.starts_needed() == 1
    pool.start_finished(None)
    assert repr(pool) == "<PoolState ready=1 starting=1 target=3 taken=0 failed=1>"
    pool.start_finished(Item())
    assert pool.take() is not None
    assert repr(pool) == "<PoolState ready=1 starting=0 target=3 taken=1 failed=1>"


def test_pool_skips_dead_items() -> None:
    pool: PoolState[Item] = PoolState(target=2)
    pool.starts_needed()
    dead = Item(ready=False)
    pool.start_finished(dead)
    pool.start_finished(Item())
    assert pool.take() is not None
    assert pool.take_dead() == [dead]  # for the caller to destroy
    assert pool.take() is None
    assert pool.take_dead() == []


def test_pool_grows_on_misses_and_shrinks_halfway_when_idle() -> None:
    pool: PoolState[Item] = PoolState(target=2, max_target=10, shrink_after=30.0)
    for _ in range(12):
        pool.missed(now=100.0)
    assert (pool.target, pool.misses) == (10, 12)  # one per miss, up to the maximum
    for _ in range(10):
        pool.starts_needed()
        pool.start_finished(Item())
    assert pool.shrink_if_idle(now=129.0) == []  # not idle long enough
    surplus = pool.shrink_if_idle(now=130.0)
    assert pool.target == 6 and len(surplus) == 4 and len(pool.ready) == 6  # halfway back to 2
    assert pool.shrink_if_idle(now=140.0) == []  # the next step waits its own 30 s
    pool.missed(now=150.0)  # a miss restarts the clock (and grows the pool again)
    assert pool.target == 7 and pool.shrink_if_idle(now=179.0) == []
    steps = [len(pool.shrink_if_idle(now=180.0 + 30 * i)) or pool.target for i in range(5)]
    assert pool.target == 2 and len(pool.ready) == 2, steps
    assert pool.shrink_if_idle(now=1e6) == []  # never below the configured size


def test_a_fixed_pool_does_not_grow() -> None:
    pool: PoolState[Item] = PoolState(target=3)
    pool.missed(now=1.0)
    assert pool.target == 3 and pool.misses == 1
    assert pool_max_size(EngineConfig(pool_size=4)) == 16
    assert pool_max_size(EngineConfig(pool_size=4, max_sandboxes=10)) == 5
    assert pool_max_size(EngineConfig(pool_size=4, pool_max_size=0)) == 4
    assert pool_max_size(EngineConfig(pool_size=0)) == 0


def test_engine_pool_grows_under_a_burst_then_shrinks_back() -> None:
    """A burst bigger than the pool makes requests wait (misses); the pool then keeps more sandboxes ready
    for the next burst, and returns to its size, retiring the extra sandboxes, once the bursts stop."""
    async def main() -> None:
        config = EngineConfig(preload=(), pool_size=1, pool_max_size=4, pool_shrink_after=1.0)
        async with Engine(config) as engine:
            await until(lambda: len(engine.pool.ready) == 1, engine)
            results = await asyncio.gather(*(engine.execute("print(1)") for _ in range(6)))
            assert [r.stdout for r in results] == ["1\n"] * 6
            assert engine.pool.target == 4, repr(engine.pool)
            await until(lambda: len(engine.pool.ready) == 4, engine)  # warm for the next burst
            await until(lambda: engine.pool.target == 1 and len(engine.pool.ready) == 1, engine, timeout=30)
            factory = engine._factory
            assert factory is not None
            await until(lambda: len(factory.alive) == 1, engine)  # the surplus was destroyed, not just dropped
    asyncio.run(main())


def test_an_environments_pool_grows_under_a_burst_then_shrinks_back() -> None:
    """A named environment's pool (its lane's) adapts as the default one does, up to its own pool_max_size."""
    async def main() -> None:
        config = EngineConfig(preload=(), pool_size=0, pool_shrink_after=1.0, environments={
            "other": EnvironmentSpec(python=sys.executable, preload=("json",), pool_size=1, pool_max_size=3)})
        async with Engine(config) as engine:
            lane = engine._lanes["other"]
            assert lane.pool.max_target == 3
            await engine.execute("print(1)", environment="other")  # its first use starts its zygote and pool
            await until(lambda: len(lane.pool.ready) == 1, engine)
            results = await asyncio.gather(*(engine.execute("print(1)", environment="other") for _ in range(5)))
            assert [r.stdout for r in results] == ["1\n"] * 5
            assert lane.pool.target == 3, repr(lane)
            await until(lambda: len(lane.pool.ready) == 3, engine)  # warm for the next burst
            await until(lambda: lane.pool.target == 1 and len(lane.pool.ready) == 1, engine, timeout=30)
    asyncio.run(main())


async def until(condition: object, engine: Engine, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, repr(engine)
        await asyncio.sleep(0.02)


def wait_for_full_pool(sl: Sandlot, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sl.engine.pool.ready) < sl.engine.pool.target:
        assert time.monotonic() < deadline, repr(sl.engine)
        time.sleep(0.02)


def test_engine_keeps_the_pool_full_and_never_reuses_a_sandbox(sl: Sandlot) -> None:
    wait_for_full_pool(sl)
    pids = set()
    for _ in range(6):
        pids.add(sl.execute("import os\nos.getpid()").outputs[0].data["text/plain"])
    assert pids == {"1"}  # each is pid 1 of its own namespace...
    uids = {sl.execute("import os\nos.getuid()").outputs[0].data["text/plain"] for _ in range(4)}
    assert len(uids) >= 2  # ...and runs under a uid no other live sandbox has
    wait_for_full_pool(sl)
    assert f"ready={sl.engine.pool.target} starting=0" in repr(sl.engine.pool)


def test_a_sandbox_is_used_once(sl: Sandlot) -> None:
    first = sl.execute("open('/tmp/marker', 'w').write('x')\nimport os\nos.path.exists('/tmp/marker')")
    second = sl.execute("import os\nos.path.exists('/tmp/marker') or os.path.exists('/workspace/marker')")
    assert first.outputs[0].data["text/plain"] == "True"
    assert second.outputs[0].data["text/plain"] == "False"
