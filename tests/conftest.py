"""Shared fixtures: real engines (real zygotes, real sandboxes) and the leak check."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from sandlot import EngineConfig, Limits, Sandlot
from sandlot._config import MiB, default_state_dir
from sandlot.engine.cgroups import detect
from sandlot.engine.instances import INSTANCE_NAME, instance_is_live
from sandlot.server import ServerConfig, create_app
from sandlot.server.protocol import bounded_http
from sandlot.tools import ToolRegistry

# A secret the server process holds; no sandbox may ever see it.
HOST_SECRET = "sandlot-host-secret-7f3a9c"
os.environ["SANDLOT_TEST_HOST_SECRET"] = HOST_SECRET
# Servers the tests start keep their sessions in their own state dir (gone when they stop), so that
# several can run at once; the durable-session tests give theirs a data dir of its own.
os.environ.setdefault("SANDLOT_DATA_DIR", "")

TIGHT_LIMITS = Limits(timeout=15, cpu_time=2, memory=256 * MiB, pids=32, file_size=8 * MiB,
                      workspace_size=16 * MiB, tmp_size=16 * MiB, output_size=64 * 1024, rich_output_size=MiB)


def leftovers() -> list[str]:
    """Anything of ours still around: processes, mounts, cgroups, state directories."""
    found = []
    me = os.getpid()  # the processes check below is scoped by our pid namespace
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "sandlot_runtime" in cmdline:
                found.append(f"process {entry}: {cmdline[:120]}")
    # Engines of other test runs on this machine may be alive (their instance lock is held);
    # anything of an instance whose lock is free is a leftover.
    state = default_state_dir()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = line.split()[4]
            if mount_point.startswith(state + "/sandlot-"):
                instance = "/".join(mount_point.split("/")[:len(state.split("/")) + 1])
                if not instance_is_live(instance):
                    found.append(f"mount {mount_point}")
    found += [f"loop device {device}" for device in loop_devices_of_ours()]
    return found + dead_instances()


def loop_devices_of_ours() -> list[str]:
    """Loop devices backed by a session volume's image (``<data_dir>/sessions/<id>/workspace.img``) whose data dir
    no live server holds: each goes once nothing mounts it."""
    found = []
    with contextlib.suppress(OSError):
        for device in os.listdir("/sys/block"):
            backing = ""
            with contextlib.suppress(OSError), open(f"/sys/block/{device}/loop/backing_file") as f:
                backing = f.read().strip()
            # An image this process cannot see is another mount namespace's (a concurrent contained run's).
            if backing.endswith("/workspace.img") and os.path.exists(backing) and not data_dir_is_live(
                    os.path.dirname(os.path.dirname(os.path.dirname(backing)))):
                found.append(f"{device} ({backing})")
    return found


def data_dir_is_live(path: str) -> bool:
    import fcntl

    try:
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def dead_instances(prefix: str = "sandlot-") -> list[str]:
    """Cgroups and state directories of engine instances (named ``prefix``…) that no live engine holds."""
    state = default_state_dir()

    def dead(name: str) -> bool:
        return bool(INSTANCE_NAME.match(name)) and name.startswith(prefix) and \
            not instance_is_live(os.path.join(state, name))

    found = [f"cgroup {h.own_dir}/{name}" for h in detect().values() for name in os.listdir(h.own_dir) if dead(name)]
    if os.path.isdir(state):
        found += [f"state dir {state}/{name}" for name in os.listdir(state) if dead(name)]
    return found


LOOPS: dict[str, Callable[[Awaitable[Any]], Any]] = {"asyncio": asyncio.run}
try:
    import uvloop  # what `sandlot serve` runs the engine (and so the egress proxy) on
    LOOPS["uvloop"] = uvloop.run
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    """Runs a coroutine to its end, once on each event loop the server may use (the egress proxy's tests)."""
    return LOOPS[request.param]


@pytest.fixture(scope="session", autouse=True)
def no_leftovers() -> Iterator[None]:
    """After every engine of the run has closed, nothing of ours may be left."""
    yield
    assert leftovers() == []


@pytest.fixture(scope="session")
def sl() -> Iterator[Sandlot]:
    """The default configuration, as `sandlot serve` would run it."""
    with Sandlot(EngineConfig()) as engine:
        yield engine


@pytest.fixture(scope="session")
def tight() -> Iterator[Sandlot]:
    """Small limits, so limit tests are quick; nothing preloaded."""
    with Sandlot(EngineConfig(preload=(), limits=TIGHT_LIMITS, pool_size=2)) as engine:
        yield engine


# ---- a real server on a loopback port ------------------------------------------------

@contextlib.contextmanager
def running_server(config: ServerConfig, tools: ToolRegistry | None = None) -> Iterator[str]:
    """Serve ``create_app(config, tools)`` with uvicorn on a free loopback port; yields the base URL."""
    with serving(create_app(config, tools), config) as url:
        yield url


@contextlib.contextmanager
def serving(app: FastAPI, config: ServerConfig) -> Iterator[str]:
    """Serve ``app`` (made from ``config``) with uvicorn on a free loopback port; yields the base URL."""
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) for sockets that say
    # so, and without it every kept-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                           http=bounded_http(config.request_read_timeout), timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A server with default settings and no API keys (loopback)."""
    with running_server(ServerConfig(engine=EngineConfig(pool_size=4))) as url:
        yield url


API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def auth_server_url() -> Iterator[str]:
    """A server that requires API key ``API_KEY``; small per-key quotas; nothing preloaded."""
    config = ServerConfig(api_keys=(API_KEY, "second-key-abcdef"), max_sessions_per_key=3, max_runs_per_key=4,
                          engine=EngineConfig(preload=(), pool_size=2, limits=TIGHT_LIMITS))
    with running_server(config) as url:
        yield url
