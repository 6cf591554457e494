"""Fair hand-out of scarce pooled sandboxes between tenants: the bookkeeping, and the engine living by it."""

from __future__ import annotations

import asyncio

import pytest

from sandlot import CapacityError, Engine, EngineConfig
from sandlot.engine import handout
from sandlot.engine.handout import Handout


def run(scenario: object) -> object:
    return asyncio.run(scenario)  # type: ignore[arg-type]


def test_nothing_scarce_is_the_fast_path() -> None:
    shares: Handout[str] = Handout(capacity=8)
    assert shares.may_take("a", ready=2, starting=0)
    assert shares.may_take("a", ready=1, starting=0)  # the last one, and nothing on its way: take it
    assert not shares.may_take("a", ready=0, starting=3)


def test_the_tenant_holding_fewest_is_served_first_and_each_queue_in_order() -> None:
    async def scenario() -> list[str]:
        shares: Handout[str] = Handout(capacity=16)
        for _ in range(5):
            shares.hold("flood")
        first, second = shares.enqueue("flood"), shares.enqueue("flood")
        paced = shares.enqueue("paced")
        assert repr(shares) == "<Handout held={'flood': 5} waiting={'flood': 2, 'paced': 1}>"
        order = []
        for _ in range(3):
            waiter = shares.next_waiter(ready=5, starting=0)
            assert waiter is not None
            order.append({id(first): "flood 1", id(second): "flood 2", id(paced): "paced"}[id(waiter)])
        assert shares.next_waiter(ready=5, starting=0) is None and shares.waiting == 0
        return order

    assert run(scenario()) == ["paced", "flood 1", "flood 2"]


def test_a_lean_sandbox_goes_to_the_fairest_waiter_that_said_one_will_do() -> None:
    async def scenario() -> None:
        shares: Handout[str] = Handout(capacity=16)
        shares.hold("flood")
        numpy_run = shares.enqueue("paced")  # needs the default zygote
        flood_lean = shares.enqueue("flood", lean=True)
        paced_lean = shares.enqueue("paced", lean=True)
        assert shares.lean_waiting
        # "paced" holds fewer: its oldest request that a lean sandbox will do, not its oldest.
        assert shares.next_waiter(ready=3, starting=0, lean=True) is paced_lean
        assert shares.next_waiter(ready=3, starting=0, lean=True) is flood_lean
        assert not shares.lean_waiting and shares.next_waiter(ready=3, starting=0, lean=True) is None
        assert shares.next_waiter(ready=3, starting=0) is numpy_run  # a default sandbox does for anyone
        assert shares.waiting == 0

    run(scenario())


def test_a_tenant_that_waits_does_not_jump_its_own_queue() -> None:
    async def scenario() -> None:
        shares: Handout[str] = Handout(capacity=16)
        waiter = shares.enqueue("a")
        assert not shares.may_take("a", ready=3, starting=0)
        assert shares.may_take("b", ready=3, starting=0)
        shares.withdraw("a", waiter)  # it gave up
        assert shares.waiting == 0 and shares.may_take("a", ready=3, starting=0)

    run(scenario())


def test_the_last_pooled_sandbox_is_kept_for_a_tenant_that_holds_none() -> None:
    async def scenario() -> None:
        shares: Handout[str] = Handout(capacity=16)
        shares.hold("flood")
        # Alone, a tenant loses nothing to the reserve.
        assert shares.may_take("flood", ready=handout.RESERVE, starting=2)
        # Once another tenant asked recently, the flood waits for the sandboxes being started...
        assert shares.may_take("paced", ready=handout.RESERVE + 1, starting=2)
        assert not shares.may_take("flood", ready=handout.RESERVE, starting=2)
        waiter = shares.enqueue("flood")
        assert shares.next_waiter(ready=handout.RESERVE, starting=2) is None
        # ...and the reserve goes to a tenant holding nothing, or to anyone once nothing is on its way.
        assert shares.may_take("paced", ready=handout.RESERVE, starting=2)
        assert shares.next_waiter(ready=handout.RESERVE, starting=0) is waiter

    run(scenario())


def test_past_its_share_a_tenant_gets_a_429_not_a_place_in_the_queue() -> None:
    async def scenario() -> None:
        shares: Handout[str] = Handout(capacity=4)
        for _ in range(3):
            shares.hold("a")
        shares.enqueue("a")  # alone, its share is all four
        with pytest.raises(CapacityError, match="its share of 4 between 1 keys") as refused:
            shares.enqueue("a")
        assert refused.value.retry_after == 1.0
        shares.hold("b")  # two tenants in play: a share of two each, and "a" is past it
        with pytest.raises(CapacityError):
            shares.enqueue("a")
        shares.enqueue("b")

    run(scenario())


def test_at_capacity_a_tenant_under_its_share_waits_for_a_sandbox_and_one_past_it_is_refused() -> None:
    async def scenario() -> tuple[str, str]:
        async with Engine(EngineConfig(preload=(), pool_size=0, max_sandboxes=2)) as engine:
            first = await engine.create_session(owner="a")
            await engine.create_session(owner="a")
            with pytest.raises(CapacityError):
                await engine.execute("print(1)", tenant="a")  # it holds its whole share already
            waiting = asyncio.ensure_future(engine.execute("print('b')", tenant="b"))
            await asyncio.sleep(0.3)
            assert not waiting.done() and engine.handout.waiting == 1, repr(engine)
            await engine.close_session(first.id)  # room for one: the refill it frees goes to "b"
            result = await asyncio.wait_for(waiting, 20)
            return result.status, result.stdout

    assert run(scenario()) == ("ok", "b\n")


def test_a_request_waiting_for_a_sandbox_when_the_engine_closes_gets_closed() -> None:
    async def scenario() -> str:
        engine = Engine(EngineConfig(preload=(), pool_size=0, max_sandboxes=1))
        await engine.start()
        await engine.create_session(owner="a")
        waiting = asyncio.ensure_future(engine.execute("1", tenant="b"))
        await asyncio.sleep(0.2)
        await engine.close()
        return type((await asyncio.gather(waiting, return_exceptions=True))[0]).__name__

    assert run(scenario()) == "ClosedError"
