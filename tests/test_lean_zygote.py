"""The lean zygote: one-shot runs that import only the standard library come from a zygote that preloads nothing.

It is a saving, never a difference a run can rely on: the same containment, limits and module policy as the
default zygote's sandboxes, runs that import anything else go to the default zygote, and a dead lean zygote
sends every run there until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import httpx
import pytest
from conftest import running_server

from sandlot import Engine, EngineConfig
from sandlot._config import ModulePolicy
from sandlot._errors import RestartingError
from sandlot.engine.imports import MAX_PARSED, standard_library_only
from sandlot.server import ServerConfig

PRELOADED = frozenset({"numpy", "pandas", "matplotlib"})
PRELOAD_SEEN = "import sys\nprint('numpy' in sys.modules, flush=True)"
"""True in a default sandbox (numpy preloaded), False in a lean one; the code itself imports only sys."""


@pytest.mark.parametrize(("code", "lean"), [
    ("print(1)", True),
    ("x = 'important'\nprint(x)", True),  # the word, not an import
    ("import json, os.path\nfrom collections import Counter", True),
    ("def f():\n    import re\n    return re", True),
    ("import numpy as np", False),
    ("import pandas.core.frame", False),
    ("from matplotlib import pyplot", False),
    ("import requests", False),  # not in the standard library: the default zygote's site-packages view is the same
    ("from . import helper", False),
    ("__import__('numpy')", False),
    ("import importlib\nimportlib.import_module('numpy')", False),
    ("exec('import numpy')", False),
    ("getattr(__builtins__, '__import__')('numpy')", False),
    ("import os\nos.system('true')\ndef broken(:", False),  # a syntax error is reported by the default zygote
])
def test_which_code_is_standard_library_only(code: str, lean: bool) -> None:
    assert standard_library_only(code, preloaded=PRELOADED) is lean


def test_a_preloaded_name_that_is_also_standard_library_is_not_lean() -> None:
    assert standard_library_only("import json", preloaded=frozenset({"json"})) is False


async def lean_up(engine: Engine, ready: int = 1) -> dict[str, Any]:
    """The lean zygote's health once its pool holds ``ready`` sandboxes (the first run that could use it starts it)."""
    if engine.health()["lean"]["state"] == "unused":
        assert (await engine.execute("pass")).status == "ok"
    deadline = time.monotonic() + 30
    while True:
        lean = engine.health()["lean"]
        if lean["state"] == "up" and lean["pool_ready"] >= ready:
            return lean
        assert time.monotonic() < deadline, lean
        await asyncio.sleep(0.02)


def test_standard_library_runs_come_from_the_lean_zygote_and_the_rest_from_the_default() -> None:
    async def scenario() -> None:
        async with Engine(EngineConfig(preload=("numpy",), pool_size=1, lean_pool_size=2)) as engine:
            await lean_up(engine, 2)
            lean = await engine.execute(PRELOAD_SEEN)
            assert (lean.status, lean.stdout) == ("ok", "False\n"), lean
            default = await engine.execute("import numpy\n" + PRELOAD_SEEN + "\nprint(numpy.arange(3).sum())")
            assert (default.status, default.stdout) == ("ok", "True\n3\n"), default
            # numpy is still there for a lean run that imports it by a string it builds: only slower.
            late = await engine.execute("name = 'num' + 'py'\nm = __import__(name)\nprint(m.arange(4).sum())")
            assert (late.status, late.stdout) == ("ok", "6\n"), late

    asyncio.run(scenario())


def test_a_lean_sandbox_is_contained_like_any_other() -> None:
    hostile = (
        "import os, socket, sys\n"
        "print(os.getuid() != 0, os.getpid() < 10)\n"
        "try:\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    print('tcp socket made')\n"
        "except OSError as exc:\n    print('no tcp', type(exc).__name__)\n"
        "print(os.environ.get('SANDLOT_TEST_HOST_SECRET'), os.path.exists('/etc/shadow'),\n"
        "      b'python' in open('/proc/1/cmdline', 'rb').read())\n"
        "print('numpy' in sys.modules)\n"
        "import ctypes\n"
    )

    async def scenario() -> None:
        config = EngineConfig(preload=("numpy",), pool_size=1, lean_pool_size=1, modules=ModulePolicy(deny=("ctypes",)))
        async with Engine(config) as engine:
            await lean_up(engine)
            result = await engine.execute(hostile, limits={"memory": 128 << 20})
            lines = result.stdout.splitlines()
            assert lines[0] == "True True", result  # not root, its own pid namespace
            assert lines[1].startswith("no tcp"), result  # the pool's seccomp program: no TCP sockets
            assert lines[2] == "None False True", result  # no host secrets or files; pid 1 is the sandbox's
            assert lines[-1] == "False", result  # it was a lean sandbox
            # The default environment's module policy holds in the lean zygote too.
            assert result.status == "error" and result.error is not None, result
            assert "ctypes" in result.error.evalue and "module policy" in result.error.evalue, result.error
            await lean_up(engine)
            big = await engine.execute(PRELOAD_SEEN + "\nx = bytearray(512 << 20)\nprint('allocated')",
                                       limits={"memory": 128 << 20})
            assert (big.status, big.stdout) == ("memory", "False\n"), big  # a lean sandbox, held to the run's limits

    asyncio.run(scenario())


def test_runs_waiting_for_a_sandbox_get_the_lean_zygotes_refills() -> None:
    """With the default zygote stopped (its pool empty, no refills), runs that queued for a sandbox are served as
    the lean pool refills: the hand-out gives lean sandboxes to the waiters that said one will do."""
    async def scenario() -> list[str]:
        async with Engine(EngineConfig(preload=("numpy",), pool_size=1, pool_max_size=1, lean_pool_size=1)) as engine:
            await lean_up(engine)
            while len(engine.pool.ready) < 1:
                await asyncio.sleep(0.01)
            zygote = engine.health()["zygote"]["pid"]
            os.kill(zygote, signal.SIGSTOP)
            try:
                results = await asyncio.wait_for(asyncio.gather(*(engine.execute(PRELOAD_SEEN) for _ in range(4))), 20)
            finally:
                os.kill(zygote, signal.SIGCONT)
            assert all(r.status == "ok" for r in results), results
            return sorted(r.stdout for r in results)

    # One from each pool at once, then the two that waited from the lean zygote's refills.
    assert asyncio.run(scenario()) == ["False\n", "False\n", "False\n", "True\n"]


def test_runs_go_on_while_the_lean_zygote_is_dead_and_it_comes_back() -> None:
    async def scenario() -> None:
        async with Engine(EngineConfig(preload=("numpy",), pool_size=2, lean_pool_size=1)) as engine:
            first = await lean_up(engine)
            spinning = asyncio.ensure_future(engine.execute("while True: pass", timeout=30))
            await asyncio.sleep(0.5)
            os.kill(first["pid"], signal.SIGKILL)
            with pytest.raises(RestartingError):
                await asyncio.wait_for(spinning, 20)  # a run in flight in the dead zygote's sandbox
            health = engine.health()
            assert health["ok"], health["reasons"]  # the default zygote serves: the server is healthy
            for _ in range(3):
                result = await engine.execute(PRELOAD_SEEN)
                assert result.status == "ok", result
            back = await lean_up(engine)
            assert back["pid"] != first["pid"] and back["restarts"] == 1, back
            assert (await engine.execute(PRELOAD_SEEN)).stdout == "False\n"

    asyncio.run(scenario())


def test_an_engine_closed_while_the_lean_zygote_starts_closes_quietly(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with Engine(EngineConfig(preload=("numpy",), pool_size=1, lean_pool_size=1)) as engine:
            assert (await engine.execute("print(1)")).stdout == "1\n"  # starts the lean zygote, and leaves
    asyncio.run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_no_lean_zygote_when_nothing_is_preloaded_or_it_is_turned_off() -> None:
    async def scenario() -> None:
        for config in (EngineConfig(preload=(), pool_size=1), EngineConfig(preload=("numpy",), pool_size=1, lean_pool_size=0)):
            async with Engine(config) as engine:
                assert engine.health()["lean"] is None
                assert (await engine.execute("print(1)")).stdout == "1\n"

    asyncio.run(scenario())


def test_health_shows_the_lean_zygote() -> None:
    config = ServerConfig(engine=EngineConfig(preload=("numpy",), pool_size=1, lean_pool_size=1))
    with running_server(config) as url:
        assert httpx.get(url + "/healthz", timeout=10).json()["lean"]["state"] == "unused"
        assert httpx.post(url + "/v1/execute", json={"code": "print(1)"}, timeout=30).json()["stdout"] == "1\n"
        deadline = time.monotonic() + 30
        while (lean := httpx.get(url + "/healthz", timeout=10).json()["lean"])["state"] != "up":
            assert time.monotonic() < deadline, lean
            time.sleep(0.05)
        assert isinstance(lean["pid"], int) and lean["restarts"] == 0, lean


def test_code_too_long_to_read_on_the_event_loop_goes_to_the_default_zygote() -> None:
    line = "x = 1\n"
    long = "import json\n" + line * (MAX_PARSED // len(line))
    short = "import json\n" + line * (MAX_PARSED // len(line) - 10)
    assert len(long) > MAX_PARSED >= len(short)
    assert standard_library_only(long, preloaded=PRELOADED) is False
    assert standard_library_only(short, preloaded=PRELOADED) is True
