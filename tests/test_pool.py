"""The warm pool: pure bookkeeping, and the engine keeping it full."""

from __future__ import annotations

import time

from sandlot import Sandlot
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
