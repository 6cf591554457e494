"""Egress: what the proxy costs, and what the wheel cache saves, measured in one run (issue #14).

A local origin server (in a process of its own, on 127.0.0.1) serves 1 MiB of bytes and a package index.

- **Proxy overhead**: the same 1 MiB download, N times, from the host directly (urllib) and from inside a
  sandbox with network, through the egress proxy (urllib, honouring HTTP_PROXY); each timed where the client
  runs, so the sandbox's start is not in it. Both arms run the same script (``DOWNLOADS``: the same call, the
  same loop, the same URL, the first download of each run left out), the host's in a Python process of its own
  with no proxy in its environment, as the sandbox's is one. Goal: the sandbox's median within 1.5x of the
  host's.
- **The start of a run with network**: a run with network is started on demand (its seccomp program differs
  from the pool's) and gets its proxy; ``print(1)`` with and without network, end to end, and the proxy's set-up
  alone (entering the namespace from a thread, bringing ``lo`` up, binding, serving).
- **Cached pip**: ``%pip install benchpkg`` (a 2 MiB wheel) in a fresh session, first with an empty wheel
  cache, then again in another session (the proxy answers the wheel from the host's cache).
- **First import**: in those sessions, the first ``import benchpkg`` (installed at run time, into the workspace)
  beside the first ``import fractions`` (preloaded by the zygote: already in ``sys.modules``), timed in the sandbox.

    python3 scripts/contained.py python3 benchmarks/bench_egress.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from sandlot import Engine, EngineConfig
from sandlot.egress import EgressSettings
from sandlot.engine.engine import TEARDOWN_MAX_DELAY

SIZE = 1 << 20
PRELOADED = "fractions"
FIRST_IMPORTS = f"""
import time
took = {{}}
for name in ("{PRELOADED}", "benchpkg"):
    began = time.perf_counter()
    __import__(name)
    took[name] = (time.perf_counter() - began) * 1000
print(took["{PRELOADED}"], took["benchpkg"])
"""
ORIGIN = """
import base64, os, sys, time
from sandlot.testing.origin import Origin
with Origin() as origin:
    payload = base64.b64encode(os.urandom(3 << 19)).decode()  # 2 MiB of text that does not compress much
    origin.add_wheel("benchpkg", "1.0", {"benchpkg/__init__.py": "VALUE = 1\\n", "benchpkg/data.txt": payload})
    print(origin.port, flush=True)
    sys.stdin.read()
"""


DOWNLOADS = """
import json, time, urllib.request
times = []
for _ in range({n}):
    started = time.perf_counter()
    data = urllib.request.urlopen({url!r}).read()
    assert len(data) == {size}
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps(times))
"""


def host_downloads(code: str) -> list[float]:
    """``DOWNLOADS`` run on the host, in a process of its own as in a sandbox (the interpreter's flags too: a
    sandbox's Python is isolated), going to the origin directly."""
    env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    out = subprocess.run([sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, check=True)
    times: list[float] = json.loads(out.stdout)
    return times


async def timed(coro: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await coro
    return (time.perf_counter() - started) * 1000, result


async def main(quick: bool) -> dict[str, Any]:
    n, rounds = (5, 2) if quick else (10, 4)
    origin = subprocess.Popen([sys.executable, "-c", ORIGIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cache = tempfile.mkdtemp(prefix="sandlot-bench-egress-")
    try:
        assert origin.stdout is not None
        port = int(origin.stdout.readline())
        url = f"http://127.0.0.1:{port}/bytes/{SIZE}"
        allow = [f"127.0.0.1:{port}"]
        config = EngineConfig(preload=(PRELOADED,), pool_size=2, cache_dir=cache,
                              egress=EgressSettings(allow=tuple(allow), index_url=f"http://127.0.0.1:{port}/simple/"))
        async with Engine(config) as engine:
            attach_times: list[float] = []
            attach = engine.egress.attach

            async def timed_attach(*args: Any) -> Any:
                took, proxy = await timed(attach(*args))
                attach_times.append(took)
                return proxy

            engine.egress.attach = timed_attach  # type: ignore[method-assign]
            downloads = DOWNLOADS.format(n=n + 1, url=url, size=SIZE)
            await asyncio.to_thread(host_downloads, downloads)  # warm both ends once
            host: list[float] = []
            sandbox: list[float] = []
            round_ratios: list[float] = []
            for _ in range(rounds):  # in turns, so a busy spell on a shared host falls on both
                # Each arm starts on an idle engine: the last sandbox's teardown (the engine's, in the background,
                # unmapping its memory) would otherwise land on the host's downloads.
                await asyncio.sleep(TEARDOWN_MAX_DELAY + 0.1)
                host_round = (await asyncio.to_thread(host_downloads, downloads))[1:]  # the first warms the imports
                result = await engine.execute(downloads, network=allow)
                assert result.status == "ok", (result.stderr, result.error)
                sandbox_round = json.loads(result.stdout)[1:]  # and the sandbox's
                host += host_round
                sandbox += sandbox_round
                round_ratios.append(statistics.median(sandbox_round) / statistics.median(host_round))

            plain, with_network = [], []
            for _ in range(n):
                await asyncio.sleep(0.05)  # let the pool refill: the plain run's best case, as in production
                plain.append((await timed(engine.execute("print(1)")))[0])
                with_network.append((await timed(engine.execute("print(1)", network=allow)))[0])

            pip_times: list[float] = []
            import_times: list[tuple[float, float]] = []
            for _ in range(2):
                session = await engine.create_session(network=allow)
                try:
                    took, cell = await timed(session.execute("%pip install benchpkg"))
                    assert cell.status == "ok" and "Successfully installed" in cell.stdout, cell.stdout
                    pip_times.append(took)
                    imported = await session.execute(FIRST_IMPORTS)
                    assert imported.status == "ok", (imported.stderr, imported.error)
                    preloaded_ms, installed_ms = map(float, imported.stdout.split())
                    import_times.append((preloaded_ms, installed_ms))
                finally:
                    await engine.close_session(session.id)
    finally:
        if origin.stdin is not None:
            origin.stdin.close()
        origin.wait(10)
        shutil.rmtree(cache, ignore_errors=True)

    figures = {
        "download_host_ms": statistics.median(host), "download_sandbox_ms": statistics.median(sandbox),
        "download_ratio": statistics.median(sandbox) / statistics.median(host),
        "download_ratio_rounds": round_ratios,
        "run_plain_ms": statistics.median(plain), "run_network_ms": statistics.median(with_network),
        "proxy_setup_ms": statistics.median(attach_times),
        "pip_first_ms": pip_times[0], "pip_cached_ms": pip_times[1], "pip_ratio": pip_times[1] / pip_times[0],
        "import_preloaded_ms": statistics.median(t[0] for t in import_times),
        "import_installed_ms": statistics.median(t[1] for t in import_times),
    }
    print(f"1 MiB download, median of {len(host)}: host {figures['download_host_ms']:.2f} ms, sandbox through the proxy "
          f"{figures['download_sandbox_ms']:.2f} ms: {figures['download_ratio']:.2f}x (goal: within 1.5x); each "
          f"round's ratio {min(round_ratios):.2f}-{max(round_ratios):.2f}x, median {statistics.median(round_ratios):.2f}x")
    print(f"print(1) end to end, median of {len(plain)}: pooled without network {figures['run_plain_ms']:.1f} ms, "
          f"with network (on demand + proxy) {figures['run_network_ms']:.1f} ms, of which the proxy's set-up in the "
          f"sandbox's namespace (setns thread, lo up, bind, serve) {figures['proxy_setup_ms']:.2f} ms")
    print(f"%pip install of a 2 MiB wheel: first {figures['pip_first_ms']:.0f} ms, cached {figures['pip_cached_ms']:.0f} ms: "
          f"{figures['pip_ratio']:.2f}x")
    print(f"first import in the session: {PRELOADED} (preloaded) {figures['import_preloaded_ms']:.3f} ms, benchpkg "
          f"(installed at run time) {figures['import_installed_ms']:.2f} ms: "
          f"{figures['import_installed_ms'] / max(figures['import_preloaded_ms'], 1e-6):.0f}x")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Fewer iterations (a smoke run).")
    parser.add_argument("--json", help="Also write the figures to this file.")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="The event loop the engine (and so the proxy) runs on: `sandlot serve` uses uvloop "
                             "where it is installed.  [default: uvloop]")
    args = parser.parse_args()
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    if args.loop == "uvloop":
        import uvloop

        out = uvloop.run(main(args.quick))
    else:
        out = asyncio.run(main(args.quick))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
