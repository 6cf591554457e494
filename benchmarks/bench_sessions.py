"""Durable sessions (issue #11): pause, resume, the cost of snapshots, restart with many sessions, density.

One ``sandlot serve`` subprocess per part, on its own data dir, over loopback with httpx. Printed beside each
other, measured in the same run:

1. ``POST /v1/sessions`` (a fresh session) and a Jupyter kernel start (``jupyter_client``), the baselines;
   pause and resume p50/p95 for a small namespace and for one holding a 100 MB DataFrame (resume is timed to the
   end of its first cell, which is when the names are back). Goal: resume of a small session within 5x a fresh
   session create.
2. The cost a snapshot adds to a cell: back-to-back cells changing a small namespace, with ``snapshots =
   every_cell`` against ``on_pause``. Goal: < 10% (the save runs after the reply; the next cell waits for it).
3. Restart-to-first-cell with N saved sessions (default 1,000): SIGTERM, start, first cell of one session.
4. Density: N paused sessions (default 10,000; made by forking one paused session, which copies its volume and its
   saved state as a create and pause would leave them) while 50 stay live: disk and RAM used, and the server's
   processes. Goal: paused sessions use no process.

Run it as root inside the containment wrapper (``--quick``: smaller counts, for CI):
    python3 scripts/contained.py python3 benchmarks/bench_sessions.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from sandlot.testing.figures import percentile
from sandlot.testing.serving import ServerProcess

GOAL_RESUME_RATIO = 5.0
GOAL_SNAPSHOT_COST = 0.10


class Server(ServerProcess):
    def __init__(self, data_dir: str, **env: str) -> None:
        super().__init__(env={"SANDLOT_DATA_DIR": data_dir, "SANDLOT_POOL_SIZE": "8", "SANDLOT_LOG_LEVEL": "warning",
                              "SANDLOT_MAX_SESSIONS_PER_KEY": "100000", "SANDLOT_MAX_SANDBOXES": "128", **env})
        self.data_dir = data_dir

    def wait_pool(self, size: int = 8, limit: float = 30) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/healthz").json().get("pool_ready", size) >= size:
                return
            time.sleep(0.05)


@contextlib.contextmanager
def server(**env: str) -> Iterator[Server]:
    data_dir = tempfile.mkdtemp(prefix="sandlot-bench-sessions-")
    running = Server(data_dir, **env)
    running.start()
    try:
        yield running
    finally:
        running.stop(grace=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000.0


def ok(response: httpx.Response, code: int = 200) -> dict[str, Any]:
    if response.status_code != code:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    if "status" in body and body.get("status") not in ("ok", "running", "paused"):
        raise SystemExit(f"a cell failed: {body}")
    return body


def stats(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):8.1f} ms   p95 {percentile(values, 95):8.1f} ms   (n={len(values)})"


def jupyter_kernel_starts(rounds: int) -> list[float]:
    from jupyter_client.manager import start_new_kernel

    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        manager, client = start_new_kernel(kernel_name="python3")
        times.append((time.perf_counter() - began) * 1000.0)
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return times


def part_pause_resume(rounds: int, big_rounds: int, report: dict[str, Any]) -> None:
    print("1. pause and resume, beside a fresh session and a Jupyter kernel start")
    with server() as s, httpx.Client(base_url=s.url, timeout=300) as c:
        creates, pauses, resumes = [], [], []
        for _ in range(rounds):
            s.wait_pool()
            began = time.perf_counter()
            sid = ok(c.post("/v1/sessions", json={}), 201)["id"]
            creates.append((time.perf_counter() - began) * 1000.0)
            ok(c.post(f"/v1/sessions/{sid}/execute", json={"code": "a = 1\nb = [1, 2, 3]\ndef f(x): return x + a"}))
            pauses.append(timed(lambda sid=sid: ok(c.post(f"/v1/sessions/{sid}/pause"))))
            s.wait_pool()
            began = time.perf_counter()
            ok(c.post(f"/v1/sessions/{sid}/resume"))
            result = ok(c.post(f"/v1/sessions/{sid}/execute", json={"code": "print(f(b[0]))"}))
            resumes.append((time.perf_counter() - began) * 1000.0)
            assert result["stdout"] == "2\n", result
            c.delete(f"/v1/sessions/{sid}")
        big_pauses, big_resumes = [], []
        for _ in range(big_rounds):
            sid = ok(c.post("/v1/sessions", json={}), 201)["id"]
            ok(c.post(f"/v1/sessions/{sid}/execute", json={
                "code": "import numpy as np, pandas as pd\ndf = pd.DataFrame(np.random.default_rng(1).random((1_250_000, 10)))\n"
                        "print(df.memory_usage().sum() // 1_000_000)"}))
            big_pauses.append(timed(lambda sid=sid: ok(c.post(f"/v1/sessions/{sid}/pause"))))
            s.wait_pool()
            began = time.perf_counter()
            result = ok(c.post(f"/v1/sessions/{sid}/execute", json={"code": "print(df.shape)"}))
            big_resumes.append((time.perf_counter() - began) * 1000.0)
            assert result["stdout"] == "(1250000, 10)\n", result
            c.delete(f"/v1/sessions/{sid}")
    kernels = jupyter_kernel_starts(max(3, rounds // 4))
    print(f"   fresh session create        {stats(creates)}")
    print(f"   Jupyter kernel start        {stats(kernels)}")
    print(f"   pause, small namespace      {stats(pauses)}")
    print(f"   resume + first cell, small  {stats(resumes)}")
    if big_rounds:
        print(f"   pause, 100 MB DataFrame     {stats(big_pauses)}")
        print(f"   resume + first cell, 100 MB {stats(big_resumes)}")
    ratio = percentile(resumes, 50) / percentile(creates, 50)
    verdict = "MET" if ratio <= GOAL_RESUME_RATIO else "MISS"
    print(f"   {verdict}  resume of a small session within {GOAL_RESUME_RATIO:g}x a fresh create: {ratio:.2f}x "
          f"(Jupyter kernel start: {percentile(kernels, 50) / percentile(creates, 50):.1f}x)")
    report["pause_resume"] = {"create": creates, "kernel": kernels, "pause": pauses, "resume": resumes,
                              "big_pause": big_pauses, "big_resume": big_resumes, "ratio": ratio, "verdict": verdict}


def part_snapshot_cost(cells: int, report: dict[str, Any]) -> None:
    """Two servers at once, one per mode, their cells interleaved: the machine's drift hits both alike."""
    print("2. the cost a snapshot adds to a cell (back-to-back cells, small namespace)")
    times: dict[str, list[float]] = {"on_pause": [], "every_cell": []}
    with server(SANDLOT_SNAPSHOTS="on_pause") as a, server(SANDLOT_SNAPSHOTS="every_cell") as b, \
            httpx.Client(base_url=a.url, timeout=60) as ca, httpx.Client(base_url=b.url, timeout=60) as cb:
        sessions = {}
        for mode, c in (("on_pause", ca), ("every_cell", cb)):
            sid = ok(c.post("/v1/sessions", json={}), 201)["id"]
            ok(c.post(f"/v1/sessions/{sid}/execute", json={"code": "import numpy as np\nn = 0\nrows = list(range(100))"}))
            sessions[mode] = (c, sid)
        for i in range(cells + 10):
            for mode in (("on_pause", "every_cell") if i % 2 else ("every_cell", "on_pause")):
                c, sid = sessions[mode]
                took = timed(lambda c=c, sid=sid: ok(c.post(f"/v1/sessions/{sid}/execute", json={"code": "n += 1\nrows.append(n)"})))
                if i >= 10:  # the first ones warm up
                    times[mode].append(took)
    every, on_pause = times["every_cell"], times["on_pause"]
    cost = percentile(every, 50) / percentile(on_pause, 50) - 1
    print(f"   snapshots = on_pause        {stats(on_pause)}")
    print(f"   snapshots = every_cell      {stats(every)}")
    verdict = "MET" if cost < GOAL_SNAPSHOT_COST else "MISS"
    print(f"   {verdict}  a cell's latency rises by < {GOAL_SNAPSHOT_COST:.0%}: {cost:+.1%} (p50)")
    report["snapshot_cost"] = {"every_cell": every, "on_pause": on_pause, "cost": cost, "verdict": verdict}


def fork_many(c: httpx.Client, source: str, count: int) -> None:
    for _ in range(count):
        ok(c.post(f"/v1/sessions/{source}/fork"), 201)


def part_restart(saved: int, report: dict[str, Any]) -> None:
    print(f"3. restart to first cell with {saved} saved sessions")
    with server() as s, httpx.Client(base_url=s.url, timeout=120) as c:
        source = ok(c.post("/v1/sessions", json={}), 201)["id"]
        ok(c.post(f"/v1/sessions/{source}/execute", json={"code": "x = 7"}))
        ok(c.post(f"/v1/sessions/{source}/pause"))
        fork_many(c, source, saved - 1)
        s.stop(grace=120)
        began = time.perf_counter()
        ready = s.start()
        result = ok(c.post(f"/v1/sessions/{source}/execute", json={"code": "print(x)"}))
        total = time.perf_counter() - began
        assert result["stdout"] == "7\n"
        listed = len(c.get("/v1/sessions").json()["sessions"])
    print(f"   ready after {ready * 1000:.0f} ms, first cell answered after {total * 1000:.0f} ms; {listed} sessions listed")
    report["restart"] = {"sessions": saved, "ready_ms": ready * 1000, "first_cell_ms": total * 1000, "listed": listed}


def du(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


LIVE_SESSION_PSS_GOAL = 5e6  # bytes of PSS per live idle session


def server_figures(s: Server) -> dict[str, int]:
    pids = [s.pid]
    for pid in pids:  # every descendant of the server
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as f:
            pids.extend(int(child) for child in f.read().split())
    pss = 0  # proportional: pages the sandboxes share with the zygote are counted once, not per process
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
    return {"processes": len(pids), "pss_bytes": pss}


def settled_figures(s: Server, limit: float = 30) -> dict[str, int]:
    """``server_figures`` once the warm pool is full and the count of processes holds still (0.3 s apart): taken
    while refills still ran, a figure counted pool sandboxes that a later one had too many or too few of."""
    s.wait_pool()
    deadline = time.monotonic() + limit
    figures = server_figures(s)
    while True:
        time.sleep(0.3)
        again = server_figures(s)
        if again["processes"] == figures["processes"] or time.monotonic() > deadline:
            return again
        figures = again


def part_density(paused: int, live: int, report: dict[str, Any]) -> None:
    print(f"4. density: {paused} paused sessions, {live} live")
    # The server is told it may hold every live session at once (plus its pool and the paused ones' wake-up).
    with server(SANDLOT_MAX_SANDBOXES=str(max(128, live + 32))) as s, httpx.Client(base_url=s.url, timeout=120) as c:
        idle = settled_figures(s)
        live_ids = []
        for _ in range(live):
            sid = ok(c.post("/v1/sessions", json={}), 201)["id"]
            ok(c.post(f"/v1/sessions/{sid}/execute", json={"code": "v = list(range(1000))"}))
            live_ids.append(sid)
        with_live = settled_figures(s)
        disk_before = du(s.data_dir)
        source = ok(c.post("/v1/sessions", json={}), 201)["id"]
        ok(c.post(f"/v1/sessions/{source}/execute", json={"code": "import numpy as np\nstate = {'k': list(range(100))}"}))
        ok(c.post(f"/v1/sessions/{source}/pause"))
        began = time.perf_counter()
        fork_many(c, source, paused - 1)
        made = time.perf_counter() - began
        after = settled_figures(s)
        disk = du(s.data_dir) - disk_before
        counted = len(c.get("/v1/sessions", params={"state": "paused"}).json()["sessions"])
        woken = ok(c.post(f"/v1/sessions/{source}/execute", json={"code": "print(len(state['k']))"}))
        assert woken["stdout"] == "100\n"
    per = disk / paused
    print(f"   made in {made:.0f} s; {counted} listed as paused")
    print(f"   disk for the paused sessions: {disk / 1e6:.0f} MB ({per / 1e3:.0f} kB each)")
    print(f"   server processes: idle {idle['processes']}, with {live} live {with_live['processes']}, "
          f"and {paused} paused more {after['processes']}")
    print(f"   memory (PSS of the server and all its processes): idle {idle['pss_bytes'] / 2**20:.0f} MiB, with {live} "
          f"live {with_live['pss_bytes'] / 2**20:.0f} MiB, with the paused ones too {after['pss_bytes'] / 2**20:.0f} MiB")
    per_live = (with_live["pss_bytes"] - idle["pss_bytes"]) / live
    live_verdict = "MET" if per_live < LIVE_SESSION_PSS_GOAL else "MISS"
    print(f"   {live_verdict}  a live idle session costs {per_live / 1e6:.2f} MB of PSS (goal < "
          f"{LIVE_SESSION_PSS_GOAL / 1e6:.0f} MB, issue #13)")
    verdict = "MET" if after["processes"] <= with_live["processes"] + 1 else "MISS"
    print(f"   {verdict}  {paused} paused sessions use no process")
    report["density"] = {"paused": paused, "live": live, "disk_bytes": disk, "idle": idle, "with_live": with_live,
                         "after": after, "made_s": made, "verdict": verdict,
                         "live_pss_bytes_each": per_live, "live_verdict": live_verdict}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument("--saved", type=int, help="sessions for the restart part (default 1000; quick 100)")
    parser.add_argument("--paused", type=int, help="paused sessions for the density part (default 10000; quick 200)")
    parser.add_argument("--live", type=int, help="live idle sessions for the density part (default 50; quick 10; "
                                                 "issue #13's figure is 1000)")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    part_pause_resume(8 if args.quick else 30, 1 if args.quick else 5, report)
    part_snapshot_cost(60 if args.quick else 300, report)
    part_restart(args.saved or (100 if args.quick else 1000), report)
    part_density(args.paused or (200 if args.quick else 10_000), args.live or (10 if args.quick else 50), report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
