"""Agent round trips: a k-step task as a client-side loop, and as one call to sandlot's agent endpoint.

The same task (the model asks for k code steps, ``print(i)`` each, then answers), three ways:

  (a)  the classic client-side loop: the client calls the model across the network every turn and
       runs each tool call in a local process of its own (``python -c``);
  (a') the same loop, but each tool call runs on sandlot's ``POST /v1/execute`` across the network,
       as users of hosted sandboxes do;
  (b)  one call to sandlot's ``POST /v1/chat/completions``: sandlot runs the loop next to the model.

The network: the client reaches the model ((a), (a')) and sandlot ((a'), (b)) only through TCP
proxies that hold each chunk 25 ms each way (``sandlot.testing.proxy``; RTT = 50 ms), while
sandlot reaches the model directly, side by side. The model is the scripted fake
(``sandlot.testing.ScriptedUpstream``) with a fixed latency per turn; the client-side loops use
the official ``openai`` SDK with the same ``python`` tool sandlot offers. Every run is checked:
k steps, each printed its number, the model was asked exactly k + 1 times.

Model: (a) = (k+1)(RTT + L) + k·exec_local, (a') = (k+1)(RTT + L) + k·(RTT + exec_remote),
(b) = RTT + (k+1)·L + k·exec_cell. So (b) saves k RTTs against (a) and 2k against (a'): one and
two RTTs per step, plus what its execution saves.

Run it as root inside the containment wrapper (sandlot's sandboxes need root):
    python3 scripts/contained.py python3 benchmarks/bench_agent.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from sandlot.agent.actions import PYTHON_TOOL
from sandlot.testing import Reply, ScriptedUpstream
from sandlot.testing.proxy import DelayProxy
from sandlot.testing.serving import ServerProcess

ONE_WAY = 0.025  # seconds each way through a proxy
RTT = 2 * ONE_WAY
MODEL_LATENCY = 0.050  # seconds per model turn
KS = (1, 3, 10)
POOL_SIZE = 8
MODEL = "scripted"
TASK = "Print the numbers from 0 to k - 1, one code step each, then say you are done."
WAYS = {"a": "(a) client loop, local python -c", "a'": "(a') client loop, sandlot /v1/execute",
        "b": "(b) sandlot agent endpoint"}


@dataclass
class Run:
    wall: float
    exec_time: float  # seconds of code execution inside the wall time (as the client or the server saw it)


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def exec_time(self) -> float:
        return statistics.median(r.exec_time for r in self.runs)


def script(k: int) -> list[Reply | Callable[[dict[str, Any]], Reply]]:
    # Code that computes its output (a bare print(3) would get the loop's hint that it computed nothing, and
    # the answer after it would be sent back once: another model turn than the script holds).
    return [*(Reply(tool_code=f"step = {i}\nprint(step)") for i in range(k)), Reply(content=f"Done: {k} steps.")]


def expected_outputs(k: int) -> list[str]:
    return [f"{i}\n" for i in range(k)]


# ---- the three ways --------------------------------------------------------------------

def client_loop(model: openai.OpenAI, run_tool: Callable[[str], tuple[str, float]]) -> tuple[str, list[str], float]:
    """The classic loop: ask the model, run what it asks for, send the result back, until it answers.

    Returns the answer, each step's stdout, and the seconds of code execution (as ``run_tool`` says).
    """
    messages: list[dict[str, Any]] = [{"role": "user", "content": TASK}]
    outputs: list[str] = []
    exec_time = 0.0
    while True:
        response = model.chat.completions.create(model=MODEL, messages=messages, tools=[PYTHON_TOOL])  # type: ignore[arg-type,list-item]
        message = response.choices[0].message
        if not message.tool_calls:
            return message.content or "", outputs, exec_time
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            code = json.loads(call.function.arguments)["code"]  # type: ignore[union-attr]
            output, seconds = run_tool(code)
            exec_time += seconds
            outputs.append(output)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})


def run_local(code: str) -> tuple[str, float]:
    """A process of its own per tool call; its execution time is the whole process's."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout, time.perf_counter() - started


def remote_runner(http: httpx.Client) -> Callable[[str], tuple[str, float]]:
    """``POST /v1/execute`` across the network; its execution time is the server's ``duration_ms``."""
    def run(code: str) -> tuple[str, float]:
        response = http.post("/v1/execute", json={"code": code})
        result = response.json()
        assert response.status_code == 200 and result["status"] == "ok", response.text
        return str(result["stdout"]), float(result["duration_ms"]) / 1000
    return run


def agent_call(sandlot: openai.OpenAI) -> tuple[str, list[str], float]:
    response = sandlot.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": TASK}])
    extra = (response.model_extra or {})["sandlot"]
    steps = extra["steps"]
    assert extra["stop_reason"] == "answer" and all(s["status"] == "ok" for s in steps), extra
    return (response.choices[0].message.content or "", [s["stdout"] for s in steps],
            sum(s["duration_ms"] for s in steps) / 1000)


# ---- setting up ------------------------------------------------------------------------

def sandlot_server(model_url: str, config_path: str) -> ServerProcess:
    """``sandlot serve`` with the scripted model as its upstream, reached directly (side by side)."""
    with open(config_path, "w") as f:
        f.write(f'[engine]\npool_size = {POOL_SIZE}\n\n[agent]\nmax_steps = {max(KS) + 5}\nmax_wall_time = 120\n\n'
                f'[[models]]\nname = "{MODEL}"\nbase_url = "{model_url}"\naction_format = "tool_calls"\n')
    return ServerProcess("--config", config_path, "--log-level", "warning", pool_ready=POOL_SIZE)


def wait_pool_full(direct: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while direct.get("/healthz").json()["pool_ready"] < POOL_SIZE and time.monotonic() < deadline:
        time.sleep(0.01)


# ---- the run ---------------------------------------------------------------------------

def measure(reps: int, ks: tuple[int, ...]) -> tuple[dict[str, dict[int, Cell]], dict[str, Any]]:
    cells: dict[str, dict[int, Cell]] = {way: {k: Cell() for k in ks} for way in WAYS}
    with ScriptedUpstream([], latency=MODEL_LATENCY, model=MODEL) as model, \
            tempfile.TemporaryDirectory() as tmp, \
            sandlot_server(model.base_url, os.path.join(tmp, "sandlot.toml")) as server:
        sandlot_url = server.url
        with DelayProxy(model.base_url, delay=ONE_WAY) as model_net, \
                DelayProxy(sandlot_url, delay=ONE_WAY) as sandlot_net, \
                openai.OpenAI(base_url=model_net.url, api_key="none", max_retries=0, timeout=60) as model_client, \
                openai.OpenAI(base_url=sandlot_net.url + "/v1", api_key="none", max_retries=0,
                              timeout=120) as agent_client, \
                httpx.Client(base_url=sandlot_net.url, timeout=60) as execute_client, \
                httpx.Client(base_url=sandlot_url, timeout=10) as direct:
            ways: dict[str, Callable[[], tuple[str, list[str], float]]] = {
                "a": lambda: client_loop(model_client, run_local),
                "a'": lambda: client_loop(model_client, remote_runner(execute_client)),
                "b": lambda: agent_call(agent_client),
            }

            def once(way: str, k: int) -> Run:
                model.script = script(k)
                model.requests.clear()
                wait_pool_full(direct)
                started = time.perf_counter()
                answer, outputs, exec_time = ways[way]()
                wall = time.perf_counter() - started
                assert outputs == expected_outputs(k), (way, k, outputs)
                assert answer == f"Done: {k} steps." and model.remaining == 0, (way, k, answer, model.remaining)
                assert len(model.requests) == k + 1, (way, k, len(model.requests))
                return Run(wall, exec_time)

            for way in WAYS:  # warm-up: connections opened, imports done, first-run costs paid
                once(way, 1)
            for _ in range(reps):
                for k in ks:
                    for way in WAYS:
                        cells[way][k].runs.append(once(way, k))
            network = {"model_proxy_connections": model_net.connections,
                       "sandlot_proxy_connections": sandlot_net.connections}
    return cells, network


def main() -> int:
    # The server this starts keeps its sessions only while it runs: it must not wait on (or be refused by) the
    # data directory of a `sandlot serve` the developer may be running (one server per data dir).
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a CI smoke run, < 60 s)")
    parser.add_argument("--reps", type=int, help="repetitions per cell (default 7, or 3 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 7)

    started = time.monotonic()
    cells, network = measure(reps, KS)
    elapsed = time.monotonic() - started

    ms, rtt_ms = 1000.0, RTT * 1000
    print(f"agent round trips: a k-step task three ways; {os.cpu_count()} CPUs; median of {reps} runs per cell")
    print(f"  network: client <-> model and client <-> sandlot through proxies, {ONE_WAY * ms:.0f} ms each way "
          f"(RTT {rtt_ms:.0f} ms); sandlot -> model direct; model latency {MODEL_LATENCY * ms:.0f} ms per turn")
    for label in WAYS.values():
        print(f"    {label}")
    head = ("k", "(a) ms", "(a') ms", "(b) ms", "(a)/(b)", "(a')/(b)", "saved/step vs (a)", "vs (a')")
    print(f"\n  {head[0]:>3} {head[1]:>9} {head[2]:>9} {head[3]:>9} {head[4]:>8} {head[5]:>9}   {head[6]:>22} {head[7]:>20}")
    results: dict[str, Any] = {"config": {"one_way_delay_s": ONE_WAY, "rtt_s": RTT, "model_latency_s": MODEL_LATENCY,
                                          "reps": reps, "ks": list(KS), "cpus": os.cpu_count()},
                               "network": network, "cells": {}, "per_step_saving": {}}
    for k in KS:
        a, a2, b = cells["a"][k], cells["a'"][k], cells["b"][k]
        save_a, save_a2 = (a.wall - b.wall) / k, (a2.wall - b.wall) / k
        print(f"  {k:>3} {a.wall * ms:>9.1f} {a2.wall * ms:>9.1f} {b.wall * ms:>9.1f} {a.wall / b.wall:>8.2f} "
              f"{a2.wall / b.wall:>9.2f}   {save_a * ms:>8.1f} ms = {save_a / RTT:>4.2f} RTT "
              f"{save_a2 * ms:>7.1f} ms = {save_a2 / RTT:>4.2f} RTT")
        for way in WAYS:
            cell = cells[way][k]
            results["cells"].setdefault(way, {})[str(k)] = {
                "median_s": cell.wall, "runs_s": [r.wall for r in cell.runs], "exec_median_s": cell.exec_time}
        results["per_step_saving"][str(k)] = {"vs_a_s": save_a, "vs_a_rtt": save_a / RTT,
                                              "vs_a_prime_s": save_a2, "vs_a_prime_rtt": save_a2 / RTT}

    print("\n  without code execution: execution per step (a: python -c process; a', b: the server's run time),")
    print("  and what (b) saves per step once each way's execution time is taken out of its wall time")
    for k in KS:
        rest = {way: cells[way][k].wall - cells[way][k].exec_time for way in WAYS}
        net_a, net_a2 = (rest["a"] - rest["b"]) / k, (rest["a'"] - rest["b"]) / k
        execs = "  ".join(f"{way:<2} {cells[way][k].exec_time / k * ms:5.1f} ms" for way in WAYS)
        print(f"  {k:>3}   exec/step: {execs}   saved/step: vs (a) {net_a / RTT:4.2f} RTT, vs (a') {net_a2 / RTT:4.2f} RTT")
        results["per_step_saving"][str(k)].update({"vs_a_without_exec_rtt": net_a / RTT,
                                                   "vs_a_prime_without_exec_rtt": net_a2 / RTT})
    print(f"\n  expected: (b) saves 1 RTT per step against (a) and 2 against (a'), plus execution time; "
          f"proxied connections opened: model {network['model_proxy_connections']}, "
          f"sandlot {network['sandlot_proxy_connections']}")
    print(f"  total {elapsed:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
