"""Cluster mode (issue #18): one ``sandlot serve`` against ``sandlot serve --ray`` on three local Ray nodes.

Measured in one run, over loopback with httpx, each side its own ``sandlot serve`` subprocess:

1. ``POST /v1/execute`` ``print(1)`` p50/p95, a session cell p50, and 16 clients' throughput of one-shot runs.
   Goal: cluster-mode latency within 2x of one node (p50 of execute and of a session cell).
2. Time to place N sessions (default 1,000; each is created, then paused so that it holds no process) from
   16 clients, and their balance across the three nodes. Goal: sessions per node within 10% of the mean.
3. Node loss: N sessions on the cluster (each with a variable and a file), one worker node's raylet killed;
   the time until every session of that node answers again, with its state. Goal: within 10 s.

Run it as root inside the containment wrapper (``--quick``: smaller counts, for CI):
    python3 scripts/contained.py python3 benchmarks/bench_cluster.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from sandlot.cluster import ray_env
from sandlot.testing.figures import percentile
from sandlot.testing.serving import ServerProcess, free_port

ray_env.keep_on_loopback()  # before ray is imported, here and in every Ray process this run starts

GOAL_LATENCY_RATIO = 2.0
GOAL_SPREAD = 0.10
GOAL_RECOVERY_S = 10.0
CLIENTS = 16


@contextlib.contextmanager
def serving(args: list[str], data_dir: str, log_dir: str) -> Iterator[str]:
    env = {"SANDLOT_LOG_LEVEL": "warning", "SANDLOT_MAX_SESSIONS_PER_KEY": "100000",
           "SANDLOT_MAX_RUNS_PER_KEY": "256", "SANDLOT_DATA_DIR": data_dir}
    port = free_port()
    server = ServerProcess("--pool-size", "4", "--max-sandboxes", "200", "--no-ui", *args, env=env, port=port,
                           log=Path(log_dir) / f"serve-{port}.log", timeout=180)
    server.start()  # shows the log's tail if it does not become ready
    try:
        yield server.url
    except BaseException:
        print(f"--- the server's log ({server.log}), last lines:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop(grace=60)


def latency(url: str, runs: int) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(5):
            client.post("/v1/execute", json={"code": "print(1)"})
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            assert client.post("/v1/execute", json={"code": "print(1)"}).json()["stdout"] == "1\n"
            times.append((time.perf_counter() - start) * 1000)
        sid = client.post("/v1/sessions", json={}).json()["id"]
        cells = []
        for index in range(runs):
            start = time.perf_counter()
            assert client.post(f"/v1/sessions/{sid}/execute", json={"code": f"v = {index}"}).status_code == 200
            cells.append((time.perf_counter() - start) * 1000)
        client.delete(f"/v1/sessions/{sid}")
    return {"execute_p50_ms": percentile(times, 50), "execute_p95_ms": percentile(times, 95),
            "cell_p50_ms": percentile(cells, 50)}


def throughput(url: str, per_client: int) -> float:
    def worker(_: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(per_client):
                assert client.post("/v1/execute", json={"code": "print(1)"}).status_code == 200
        return per_client

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        done = sum(pool.map(worker, range(CLIENTS)))
    return done / (time.perf_counter() - start)


def place_sessions(url: str, count: int) -> tuple[float, list[str]]:
    def worker(indexes: range) -> list[str]:
        made = []
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in indexes:
                response = client.post("/v1/sessions", json={})
                assert response.status_code == 201, response.text
                sid = response.json()["id"]
                made.append(sid)
                client.post(f"/v1/sessions/{sid}/pause")  # not timed below: a paused session holds no process
        return made

    chunks = [range(i, count, CLIENTS) for i in range(CLIENTS)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        ids = [sid for chunk in pool.map(worker, chunks) for sid in chunk]
    return time.perf_counter() - start, ids


def measure(url: str, runs: int, per_client: int) -> dict[str, float]:
    figures = latency(url, runs)
    figures["throughput_rps"] = throughput(url, per_client)
    return figures


def recovery(url: str, cluster: Any, sessions: int) -> dict[str, float]:
    import ray

    directory = ray.get_actor("sandlot-directory", namespace="sandlot")
    front_node = httpx.get(f"{url}/v1/cluster").json()["front_end_node"]
    attached = {front_node, ray.get_runtime_context().get_node_id()}
    victim = next(n for n in cluster.nodes if n.node_id not in attached)
    with httpx.Client(base_url=url, timeout=60) as client:
        ids = [client.post("/v1/sessions", json={}).json()["id"] for _ in range(sessions)]
        for sid in ids:
            client.post(f"/v1/sessions/{sid}/execute", json={"code": f"x = {sid!r}"})
        time.sleep(1.0)  # the last cells' state saved
        on_victim = [sid for sid in ids if ray.get(directory.lookup.remote(sid))[0] == victim.node_id]
        killed = time.monotonic()
        cluster.remove(victim)
        pending = set(on_victim)
        while pending and time.monotonic() - killed < 60:
            for sid in list(pending):
                response = client.post(f"/v1/sessions/{sid}/execute", json={"code": "x"})
                if response.status_code == 200 and response.json()["outputs"][-1]["data"]["text/plain"] == repr(sid):
                    pending.discard(sid)
            time.sleep(0.05)
        seconds = time.monotonic() - killed
    return {"sessions_on_lost_node": len(on_victim), "restored": len(on_victim) - len(pending), "recovery_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts (CI)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    runs, per_client, sessions, lost = (60, 6, 90, 15) if args.quick else (300, 25, 1000, 60)
    from sandlot.testing.ray_cluster import local_cluster

    work = tempfile.mkdtemp(prefix="slbench-", dir="/tmp")
    results: dict[str, Any] = {}
    try:
        single_dir = os.path.join(work, "single")
        os.makedirs(single_dir)
        with serving([], single_dir, work) as url:
            results["single"] = measure(url, runs, per_client)
            results["single"]["place_s"], _ = place_sessions(url, sessions)
        print("single node:", json.dumps(results["single"]), flush=True)
        with local_cluster(3, cpus=1) as cluster, serving(["--ray", cluster.address], cluster.data_dir, work) as url:
            deadline = time.monotonic() + 120
            while len(httpx.get(f"{url}/v1/cluster").json()["nodes"]) < 3 and time.monotonic() < deadline:
                time.sleep(0.3)
            results["cluster"] = measure(url, runs, per_client)
            results["cluster"]["place_s"], ids = place_sessions(url, sessions)
            time.sleep(1.0)
            per_node = [n["sessions"] for n in httpx.get(f"{url}/v1/cluster").json()["nodes"]]
            mean = sum(per_node) / len(per_node)
            results["cluster"]["sessions_per_node"] = per_node
            results["cluster"]["spread"] = (max(per_node) - min(per_node)) / mean if mean else 0.0
            with httpx.Client(base_url=url, timeout=60) as client:
                for sid in ids:
                    client.delete(f"/v1/sessions/{sid}")
            results["cluster"].update(recovery(url, cluster, lost))
            print("cluster:", json.dumps(results["cluster"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    single, clustered = results["single"], results["cluster"]
    ratio_execute = clustered["execute_p50_ms"] / single["execute_p50_ms"]
    ratio_cell = clustered["cell_p50_ms"] / single["cell_p50_ms"]
    print(f"execute print(1) p50 {single['execute_p50_ms']:.1f} ms -> {clustered['execute_p50_ms']:.1f} ms "
          f"(p95 {single['execute_p95_ms']:.1f} -> {clustered['execute_p95_ms']:.1f}): {ratio_execute:.2f}x")
    print(f"session cell p50 {single['cell_p50_ms']:.1f} ms -> {clustered['cell_p50_ms']:.1f} ms: {ratio_cell:.2f}x")
    print(f"{CLIENTS}-client throughput {single['throughput_rps']:.0f} -> {clustered['throughput_rps']:.0f} runs/s")
    print(f"place {sessions} sessions: {single['place_s']:.1f} s -> {clustered['place_s']:.1f} s; "
          f"per node {clustered['sessions_per_node']}, spread {clustered['spread']:.1%}")
    print(f"node loss: {clustered['restored']}/{clustered['sessions_on_lost_node']} sessions back in "
          f"{clustered['recovery_s']:.1f} s")
    goals = [("latency within 2x (execute p50)", ratio_execute <= GOAL_LATENCY_RATIO),
             ("latency within 2x (session cell p50)", ratio_cell <= GOAL_LATENCY_RATIO),
             ("sessions spread within 10%", clustered["spread"] <= GOAL_SPREAD),
             ("node loss recovers every session within 10 s",
              clustered["restored"] == clustered["sessions_on_lost_node"] and clustered["recovery_s"] <= GOAL_RECOVERY_S)]
    for name, met in goals:
        print(f"{'MET' if met else 'MISS'}: {name}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
