#!/usr/bin/env python3
"""Run a command against one real sandlot server, started here and stopped afterwards.

    python3 test/serve.py node --test build/test/

The TypeScript tests (and ``npm run openapi``) need a live server. This starts
exactly one for the whole command: a real ``create_app`` under uvicorn on a free
loopback port, with API keys, and with an agent model ("echo") that lives in a
scripted upstream (``sandlot.testing.upstream``), so the agent endpoint is
tested without a real model. The command gets the details in its environment:

    SANDLOT_TEST_URL         the server's base URL
    SANDLOT_TEST_API_KEY     a valid key for most tests
    SANDLOT_TEST_QUOTA_KEY   a second key, for the quota test (quotas are per key)
    SANDLOT_TEST_MAX_SESSIONS  the per-key session quota
    SANDLOT_TEST_ORIGIN_URL  a local HTTP server (``sandlot.testing.origin``) the server's egress
                             allows (``127.0.0.1:<its port>``), standing in for the internet
    SANDLOT_TEST_OTHER_URL   a second local server egress does not allow

When the command ends, the server shuts down and every process it started
(zygote, sandboxes) must be gone; a leftover fails the run. The exit status is
the command's. Start sandboxes only inside ``scripts/contained.py``.

The echo model: a user message ``run: <code>`` makes it call the ``python``
tool with ``<code>``; after a tool result it answers ``result: <what the tool
returned>``; ``fail: <text>`` makes it answer HTTP 403; anything else it echoes
as ``echo: <text>``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import uvicorn

from sandlot import EngineConfig, Limits
from sandlot._config import MiB
from sandlot.agent.config import AgentSettings, UpstreamModel
from sandlot.egress import EgressSettings
from sandlot.server import ServerConfig, create_app
from sandlot.testing.origin import Origin
from sandlot.testing.upstream import Reply, ScriptedUpstream

API_KEY = "sandlot-ts-test-key-0123"
QUOTA_KEY = "sandlot-ts-quota-key-4567"
MAX_SESSIONS = 6
LIMITS = Limits(timeout=15, cpu_time=5, memory=256 * MiB, pids=32, file_size=8 * MiB, workspace_size=16 * MiB,
                tmp_size=16 * MiB, output_size=256 * 1024, rich_output_size=MiB)
# The scripted upstream replays a list; the echo model answers every request the same way.
ECHO_TURNS = 10_000


def echo_model(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]
    if last.get("role") == "tool":
        return Reply(f"result: {last.get('content')}")
    text = last.get("content") if isinstance(last.get("content"), str) else ""
    if text.startswith("run:"):
        return Reply(tool_code=text.removeprefix("run:").strip())
    if text.startswith("fail:"):  # an upstream that refuses (403 is not retried): the server's 502
        return Reply(text.removeprefix("fail:").strip(), status=403)
    return Reply(f"echo: {text}")


def descendants(root: int) -> set[int]:
    """Every live process whose parent chain leads to ``root``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # The command name may hold spaces and parentheses; the ppid follows the last ')'.
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: set[int] = set()
    for pid in parents:
        chain, current = [], pid
        while current in parents and current not in found and current != root:
            chain.append(current)
            current = parents[current]
        if current == root or current in found:
            found.update(chain)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> int:
    command = sys.argv[1:]
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    with ScriptedUpstream([echo_model] * ECHO_TURNS) as upstream, Origin() as origin, Origin() as other:
        # Egress to the one local origin only; no wheel cache (it would be a directory left in the cache dir).
        egress = EgressSettings(allow=(f"127.0.0.1:{origin.port}",), wheel_cache=False)
        config = ServerConfig(
            api_keys=(API_KEY, QUOTA_KEY), max_sessions_per_key=MAX_SESSIONS, log_level="warning",
            engine=EngineConfig(preload=(), pool_size=2, limits=LIMITS, egress=egress),
            models=(UpstreamModel(name="echo", base_url=upstream.base_url, action_format="tool_calls"),),
            agent=AgentSettings(max_steps=3, max_wall_time=30))
        # IPPROTO_TCP explicitly: asyncio only turns Nagle off for sockets that say so (see tests/conftest.py).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(create_app(config), log_config=None, access_log=False, lifespan="on",
                                               http="h11", timeout_graceful_shutdown=5))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                print("serve.py: the sandlot server did not start", file=sys.stderr)
                return 1
            time.sleep(0.02)
        env = {**os.environ, "SANDLOT_TEST_URL": url, "SANDLOT_TEST_API_KEY": API_KEY,
               "SANDLOT_TEST_QUOTA_KEY": QUOTA_KEY, "SANDLOT_TEST_MAX_SESSIONS": str(MAX_SESSIONS),
               "SANDLOT_TEST_ORIGIN_URL": origin.url, "SANDLOT_TEST_OTHER_URL": other.url}
        child = subprocess.Popen(command, env=env)
        try:
            status = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            status = child.wait()
        started = descendants(os.getpid())  # the zygote and any sandbox still up
        server.should_exit = True
        thread.join(30)
        sock.close()
    if thread.is_alive():
        print("serve.py: the server did not stop within 30 s", file=sys.stderr)
        return status or 1
    deadline = time.monotonic() + 10
    while (left := sorted(pid for pid in started if alive(pid))) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        print(f"serve.py: processes left after the server stopped: {left}", file=sys.stderr)
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
