#!/usr/bin/env python3
"""Soak: many concurrent clients against a real ``sandlot serve`` for minutes, with hostile code and injected faults.

64 clients (``--clients``) for 10 minutes (``--minutes``) mix one-shot runs, sessions (cells, files,
live metrics), batches, streams dropped early or after their first event, hostile snippets (fork bombs,
memory bombs, output floods, spins past the timeout), while every 30 s (``--fault-every``) the zygote
or a few random sandboxes are killed with SIGKILL, alternately. It prints requests by kind and
outcome, p50/p99 per kind, the fault log, the server's RSS, fds, mounts, cgroups and processes from
start to end, and a MET/MISS line per goal: 0 unexpected errors, nothing leaked, RSS flat within 10%
after warm-up, and fairness between tenants (issue #10). The server has two API keys: the load is key A's;
key B posts paced one-shot ``print(1)`` runs, one every 200 ms, first on the idle server (before the load),
then all through the load, and its loaded p50 must stay within 3x of its idle p50 (measured as
``bench_fairness.py`` measures it, with its code). ``--quick``: 45 s, 16 clients, one fault of each kind (CI).

Run it as root inside the containment wrapper (the soak sends fork and memory bombs):
    python3 scripts/contained.py python3 benchmarks/soak.py [--quick] [--minutes M] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from sandlot import EngineConfig
from sandlot.engine import cgroups
from sandlot.testing.figures import percentile
from sandlot.testing.serving import free_port

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fairness import GOAL as FAIRNESS_GOAL  # noqa: E402  (a sibling script, not a package)
from bench_fairness import PACED_CODE, paced_runs  # noqa: E402

MiB = 1 << 20

# ---- the server's settings -------------------------------------------------------------------

POOL_SIZE = 16
KEY_A, KEY_B = "soak-key-a", "soak-key-b"
"""Key A runs the load; key B only the paced runs that measure fairness between tenants."""
SERVER_SETTINGS = {
    "SANDLOT_API_KEYS": f"{KEY_A},{KEY_B}",
    # Room for 64 clients (batches take 4 sandboxes each), so 429s stay rare; they are still expected.
    "SANDLOT_MAX_SANDBOXES": "256", "SANDLOT_MAX_RUNS_PER_KEY": "256", "SANDLOT_MAX_SESSIONS_PER_KEY": "128",
    # Small sandboxes: hostile code reaches its limit fast.
    "SANDLOT_TIMEOUT": "3", "SANDLOT_MEMORY": str(256 * MiB), "SANDLOT_PIDS": "64",
    "SANDLOT_LOG_LEVEL": "warning", "SANDLOT_UI": "false",
}
SANDBOX_UIDS = range(EngineConfig().uid_base, EngineConfig().uid_base + EngineConfig().uid_count)
"""Every sandbox process runs as one of these uids: how an orphaned one is found wherever it went."""

# ---- the load --------------------------------------------------------------------------------

CLIENT_TIMEOUT = 60.0       # per request; a hang becomes a ReadTimeout, counted, never a stuck soak
END_GRACE = 120.0           # after the deadline, clients get this long to finish their operation
MAX_BACKOFF = 1.0           # a client honours Retry-After up to this many seconds
PACED_INTERVAL = 0.2        # key B: one paced run every 200 ms, as bench_fairness.py
PACED_WARMUP = 5            # paced runs before the idle ones (its connection, its tenant's lazily made state)
PACED_START = 1.0           # key B's loaded runs begin this long after the load (bench_fairness.py waits as long)
STREAM_CODE = "print('tick', flush=True)\nimport time\ntime.sleep(2)\nprint('never seen')"
FLOOD_CODE = "import sys\nfor i in range(100):\n    sys.stdout.write(f'flood line {i}\\n' * 2000)\nprint('done')"


@dataclass(frozen=True)
class Hostile:
    """A hostile snippet and what the contract says it ends with."""

    code: str
    timeout: float | None
    status: str
    truncated: bool = False


HOSTILE = {
    "hostile.fork": Hostile("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", 1, "timeout"),
    # Time enough to fill 256 MiB on a starved CPU: the memory limit, not the clock, must end it.
    "hostile.memory": Hostile("x = []\nwhile True:\n    x.append(b'x' * (8 << 20))", 10, "memory"),
    "hostile.flood": Hostile(FLOOD_CODE, None, "ok", truncated=True),  # 2.8 MB against the 1 MiB output limit
    "hostile.spin": Hostile("while True:\n    pass", 1, "timeout"),
}

# ---- faults and sampling ---------------------------------------------------------------------

FAULT_GRACE = 2.0           # a fault window lasts from the kill until healthy again, plus this
RECOVERY_TIMEOUT = 30.0     # a fault not recovered from by then is a failure, and its window ends
FAULT_MARGIN = 10.0         # no fault this close to the end: its window must fit in the run
SANDBOXES_PER_FAULT = 3
HEALTH_POLL = 0.02
SAMPLE_EVERY = 5.0
WARM_FRACTION = 0.2         # RSS is compared from this point of the run to its end
RSS_TOLERANCE = 0.10
SETTLE_TIMEOUT = 30.0


# ---- what was observed -----------------------------------------------------------------------

@dataclass
class Observation:
    """One HTTP request as the client saw it; judged only at the end, once the fault windows are known.

    ``label``: ``ok`` (exactly as wanted), ``http`` (a non-2xx answer), ``killed`` (a run ended
    ``killed``), ``restarted`` (a session cell on a fresh interpreter, otherwise right), ``stream-error``
    (a stream's first event was the server's error), ``starved`` (a memory bomb ended by its clock before it
    had the CPU to reach its limit: ``judge_memory_bomb``), ``transport`` (no answer), ``wrong`` (any other
    difference). ``detail`` names the case in a few fixed words (it is a counting key); ``example``
    holds the particulars.
    """

    kind: str
    start: float
    end: float
    label: str
    detail: str = ""
    example: str = ""
    http: int | None = None
    retry_after: bool = False
    since: float | None = None  # restarted: the start of the session's previous cell (or of its creation)


class Recorder:
    """Observations, with times in seconds since the load began (priming happens at negative times)."""

    def __init__(self) -> None:
        self.origin = time.monotonic()
        self.observations: list[Observation] = []

    def now(self) -> float:
        return time.monotonic() - self.origin

    def add(self, observation: Observation) -> None:
        self.observations.append(observation)

    def restart(self) -> float:
        """Make now time 0, keeping what was recorded so far before it; returns the shift."""
        shift = self.now()
        self.origin += shift
        for obs in self.observations:
            obs.start, obs.end = obs.start - shift, obs.end - shift
        return shift


Check = Callable[[httpx.Response], tuple[str, str, str]]
"""Judges a response that came with the wanted status code: (label, detail, example)."""

OK = ("ok", "", "")


async def send(http: httpx.AsyncClient, rec: Recorder, kind: str, method: str, url: str, want: int,
               check: Check | None = None, since: float | None = None, **kwargs: Any) -> tuple[httpx.Response | None, str]:
    """One request: time it, record what came back, back off after a 429 or 503. Returns (response, label)."""
    start = rec.now()
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        rec.add(Observation(kind, start, rec.now(), "transport", type(exc).__name__, str(exc)[:200]))
        return None, "transport"
    except asyncio.CancelledError:
        rec.add(Observation(kind, start, rec.now(), "transport", "still running at the end"))
        raise
    end = rec.now()
    if response.status_code != want:
        observation = http_observation(kind, start, end, response)
        rec.add(observation)
        if observation.label == "http":
            await back_off(response)
        return None, observation.label
    try:
        label, detail, example = check(response) if check else OK
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        label, detail, example = "wrong", "malformed body", f"{exc!r}: {response.text[:160]}"
    rec.add(Observation(kind, start, end, label, detail, example, since=since))
    return response, label


def http_observation(kind: str, start: float, end: float, response: httpx.Response) -> Observation:
    """A response with another status code than wanted: an error (its type) or a wrong success."""
    if response.status_code < 400:
        return Observation(kind, start, end, "wrong", f"HTTP {response.status_code}", response.text[:200],
                           http=response.status_code)
    try:
        error = response.json()["error"]
        # The type and the gist of the message (numbers out): "restarting (the zygote is unresponsive)".
        gist = re.sub(r"\d+(\.\d+)?", "N", str(error.get("message", "")).split(";")[0])[:60]
        error_type = f"{error['type']} ({gist})"
    except (ValueError, KeyError, TypeError, AttributeError):
        error_type = "no error body"
    return Observation(kind, start, end, "http", error_type, response.text[:200], http=response.status_code,
                       retry_after="retry-after" in response.headers)


async def back_off(response: httpx.Response) -> None:
    """Honour Retry-After (capped): a client that retried at once would only add to the overload."""
    if response.status_code in (429, 503):
        with contextlib.suppress(ValueError):
            await asyncio.sleep(min(MAX_BACKOFF, float(response.headers.get("retry-after", "0.2"))))


def result_check(status: str, stdout: str | None = None, truncated: bool = False) -> Check:
    """A check for an execution result: its status, its stdout if given, its truncated flag."""

    def check(response: httpx.Response) -> tuple[str, str, str]:
        return judge_result(response.json(), status, stdout, truncated)

    return check


def judge_result(body: dict[str, Any], status: str, stdout: str | None = None, truncated: bool = False) -> tuple[str, str, str]:
    got = body.get("status")
    example = f"status {got}, stdout {str(body.get('stdout'))[:80]!r}, stderr {str(body.get('stderr'))[-160:]!r}"
    if got != status:
        return ("killed" if got == "killed" else "wrong"), f"status {got} (wanted {status})", example
    if stdout is not None and body.get("stdout") != stdout:
        return "wrong", "wrong stdout", example
    if bool(body.get("truncated")) != truncated:
        return "wrong", f"truncated {body.get('truncated')} (wanted {truncated})", example
    return OK


# ---- the operations a client mixes -----------------------------------------------------------

@dataclass
class Load:
    """What every client shares."""

    rec: Recorder
    duration: float
    faults: list[Fault]
    open_sessions: set[str] = field(default_factory=set)
    memory_bomb_cpu_ms: float | None = None
    """The CPU time the memory bomb took to reach its limit on the idle server (``prime``)."""

    def over(self) -> bool:
        return self.rec.now() >= self.duration


async def one_shot(http: httpx.AsyncClient, load: Load, rng: random.Random) -> None:
    n = rng.randrange(1000)
    await send(http, load.rec, "execute", "POST", "/v1/execute", 200, result_check("ok", f"{n * 2}\n"),
               json={"code": f"n = {n}\nprint(n * 2)"})


async def batch(http: httpx.AsyncClient, load: Load, rng: random.Random) -> None:
    n = rng.randrange(1000)

    def check(response: httpx.Response) -> tuple[str, str, str]:
        results = response.json().get("results", [])
        if len(results) != 4:
            return "wrong", "wrong number of results", str(len(results))
        verdicts = [judge_result(result, "ok", f"{n + k}\n") for k, result in enumerate(results)]
        return next((v for v in verdicts if v[0] == "wrong"), next((v for v in verdicts if v != OK), OK))

    await send(http, load.rec, "batch", "POST", "/v1/batch", 200, check,
               json={"items": [{"code": f"print({n} + {k})"} for k in range(4)]})


STARVED_CPU_MARGIN = 2.0
"""How much more CPU than the idle calibration bomb a starved bomb may have had: the same fill costs more CPU
on a loaded machine (page zeroing and memory-cgroup charging contend), and idle bombs alone vary by +-6%."""


def judge_memory_bomb(result: dict[str, Any], verdict: tuple[str, str, str], load: Load) -> tuple[str, str, str]:
    """A memory bomb's verdict, and the CPU it took to reach its limit (on the idle server, the first one).

    Filling 256 MiB costs a bomb about a second and a half of CPU here (page faults are slow on this VM), so
    on a CPU shared with dozens of spinners and fork bombs its clock can run out first. That one outcome is
    ``starved``: the clock ended it, the memory limit held (peak at most the limit), and it had less CPU than
    twice what the idle bomb needed to reach the limit. A bomb that had the CPU and was not killed for memory, or went past the
    limit, stays wrong.
    """
    usage = result.get("usage") or {}
    cpu_ms, peak = float(usage.get("cpu_ms") or 0.0), usage.get("peak_memory_bytes")
    if verdict == OK:
        if load.memory_bomb_cpu_ms is None:
            load.memory_bomb_cpu_ms = cpu_ms
        return verdict
    needed = load.memory_bomb_cpu_ms
    if (result.get("status") == "timeout" and needed and 0 < cpu_ms < STARVED_CPU_MARGIN * needed
            and peak is not None and peak <= int(SERVER_SETTINGS["SANDLOT_MEMORY"])):
        return "starved", "ended by its clock before it had the CPU to reach its memory limit", \
            f"cpu {cpu_ms:.0f} ms (the idle bomb needed {needed:.0f} ms), peak {peak // MiB} MiB"
    if verdict[0] == "wrong":  # say what the bomb had, so a miss explains itself
        had = f"cpu {cpu_ms:.0f} ms (the idle bomb needed {needed or 0:.0f} ms), peak " + \
            ("unknown" if peak is None else f"{peak / MiB:.1f} MiB")
        return verdict[0], verdict[1], f"{had}; {verdict[2]}"
    return verdict


async def hostile(http: httpx.AsyncClient, load: Load, rng: random.Random) -> None:
    kind = rng.choice(sorted(HOSTILE))
    snippet = HOSTILE[kind]
    body: dict[str, Any] = {"code": snippet.code}
    if snippet.timeout is not None:
        body["timeout"] = snippet.timeout

    def check(response: httpx.Response) -> tuple[str, str, str]:
        result = response.json()
        verdict = judge_result(result, snippet.status, truncated=snippet.truncated)
        if kind == "hostile.memory":
            verdict = judge_memory_bomb(result, verdict, load)
        if verdict == OK and snippet.truncated:
            out = str(result.get("stdout", ""))
            if not out.startswith("flood line 0\n") or len(out.encode()) > MiB or "done" in out:
                return "wrong", "truncated output is not the first bytes", out[:80]
        return verdict

    await send(http, load.rec, kind, "POST", "/v1/execute", 200, check, json=body)


async def stream_drop(http: httpx.AsyncClient, load: Load, rng: random.Random) -> None:
    """A streamed run the client walks away from: after its first event, or (one in two) as soon as the response
    begins, while the server may still be starting its sandbox. Either way the server must cancel it."""
    early = rng.random() < 0.5
    rec, kind, start = load.rec, "stream.early" if early else "stream.drop", load.rec.now()
    try:
        async with http.stream("POST", "/v1/execute", json={"code": STREAM_CODE, "stream": True}) as response:
            if response.status_code != 200:
                await response.aread()
                rec.add(http_observation(kind, start, rec.now(), response))
                await back_off(response)
                return
            if early:
                rec.add(Observation(kind, start, rec.now(), "ok"))
                return
            name, data = await first_event(response)
            end = rec.now()
        # Leaving the block closed the connection mid-stream: that is the disconnect.
    except httpx.HTTPError as exc:
        rec.add(Observation(kind, start, rec.now(), "transport", type(exc).__name__, str(exc)[:200]))
        return
    except asyncio.CancelledError:
        rec.add(Observation(kind, start, rec.now(), "transport", "still running at the end"))
        raise
    if name == "stdout" and isinstance(data, dict) and data.get("text") == "tick\n":
        rec.add(Observation(kind, start, end, "ok"))
    elif name == "error" and isinstance(data, dict) and "error" in data:
        gist = re.sub(r"\d+(\.\d+)?", "N", str(data["error"].get("message", "")).split(";")[0])[:60]
        rec.add(Observation(kind, start, end, "stream-error", f"{data['error'].get('type')} ({gist})", json.dumps(data)[:200]))
    elif name == "stderr" and isinstance(data, dict) and str(data.get("text", "")).startswith("\n[sandlot] the sandbox was killed"):
        rec.add(Observation(kind, start, end, "killed", "killed before its first output", json.dumps(data)[:200]))
    elif name == "done" and isinstance(data, dict):  # the run ended before it printed: killed, or worse
        label = "killed" if data.get("status") == "killed" else "wrong"
        rec.add(Observation(kind, start, end, label, f"done first, status {data.get('status')}", json.dumps(data)[:200]))
    else:
        rec.add(Observation(kind, start, end, "wrong", f"first event {name}", json.dumps(data)[:200]))


async def first_event(response: httpx.Response) -> tuple[str | None, Any]:
    """The first Server-Sent Event of a response: (its name, its JSON data)."""
    name, data = "message", []
    async for line in response.aiter_lines():
        if not line:
            if data:
                return name, json.loads("\n".join(data))
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
    return None, None


async def session_flow(http: httpx.AsyncClient, load: Load, rng: random.Random) -> None:
    """Create a session, put a file, two cells that use it, metrics, read files back, list, delete.

    A fault may replace the session's interpreter: the cell after it says ``restarted: true``, its files must
    all be there, and its variables are those of the last cell whose state was saved (durable sessions): ``x``
    is back, or, when the fault came before the first cell's state was saved, a NameError is right.
    """
    rec = load.rec
    created_at = rec.now()
    response, _ = await send(http, rec, "session.create", "POST", "/v1/sessions", 201, json={})
    if response is None:
        return
    sid = response.json()["id"]
    load.open_sessions.add(sid)
    try:
        await session_steps(http, load, sid, rng.randbytes(2048).hex(), created_at)
    finally:
        deleted, _ = await send(http, rec, "session.delete", "DELETE", f"/v1/sessions/{sid}", 204)
        if deleted is not None:
            load.open_sessions.discard(sid)


async def session_steps(http: httpx.AsyncClient, load: Load, sid: str, data: str, created_at: float) -> None:
    rec, base = load.rec, f"/v1/sessions/{sid}"
    response, _ = await send(http, rec, "session.put", "PUT", f"{base}/files/data.txt", 201, content=data.encode())
    if response is None or load.over():
        return
    first_cell = rec.now()
    code = "x = open('data.txt').read()\nlen(x)"
    response, _ = await send(http, rec, "session.cell", "POST", f"{base}/execute", 200, cell_check(len(data), first=True),
                             since=created_at, json={"code": code})
    if response is None or load.over():
        return
    code = "open('out.txt', 'w').write(open('data.txt').read()[::-1])\nprint(len(x))"
    response, _ = await send(http, rec, "session.cell", "POST", f"{base}/execute", 200, cell_check(len(data), first=False),
                             since=first_cell, json={"code": code})
    if response is None or load.over():
        return
    await send(http, rec, "session.metrics", "GET", f"{base}/metrics", 200, metrics_check)
    for path, content in (("out.txt", data[::-1]), ("data.txt", data)):
        response, _ = await send(http, rec, "session.get", "GET", f"{base}/files/{path}", 200, content_check(content))
        if response is None:
            return
    await send(http, rec, "session.list", "GET", f"{base}/files", 200, listing_check({"data.txt", "out.txt"}))


def cell_check(length: int, first: bool) -> Check:
    """The two cells: the first shows ``len(x)`` as its value; the second writes out.txt and prints ``len(x)``."""

    def check(response: httpx.Response) -> tuple[str, str, str]:
        result = response.json()
        restarted = result.get("restarted") is True
        error = result.get("error") or {}
        example = f"status {result.get('status')}, restarted {restarted}, error {error.get('ename')}: {error.get('evalue')}"
        if error.get("ename") in ("FileNotFoundError", "OSError"):
            return "wrong", "lost files" + (" after a restart" if restarted else ""), example
        if first:
            value = next((o.get("data", {}).get("text/plain") for o in result.get("outputs", [])
                          if o.get("output_type") == "execute_result"), None)
            right = result.get("status") == "ok" and value == str(length)
        elif restarted:  # x is restored, unless the fault beat the save that followed the first cell
            right = (result.get("status") == "ok" and result.get("stdout") == f"{length}\n") or \
                (result.get("status") == "error" and error.get("ename") == "NameError")
        else:
            right = result.get("status") == "ok" and result.get("stdout") == f"{length}\n"
        if not right:
            label = "killed" if result.get("status") == "killed" else "wrong"
            return label, f"cell status {result.get('status')}" + (" after a restart" if restarted else ""), example
        return ("restarted", "", example) if restarted else OK

    return check


def metrics_check(response: httpx.Response) -> tuple[str, str, str]:
    body = response.json()
    missing = {"running", "cpu_ms", "memory_bytes", "pids", "workspace_bytes"} - set(body)
    return ("wrong", "metrics fields missing", str(sorted(missing))) if missing else OK


def content_check(content: str) -> Check:
    def check(response: httpx.Response) -> tuple[str, str, str]:
        return OK if response.content == content.encode() else ("wrong", "file content differs", response.text[:80])

    return check


def listing_check(paths: set[str]) -> Check:
    def check(response: httpx.Response) -> tuple[str, str, str]:
        listed = {entry.get("path") for entry in response.json().get("files", [])}
        return OK if paths <= listed else ("wrong", "files missing from the listing", str(sorted(listed)))

    return check


Operation = Callable[[httpx.AsyncClient, Load, random.Random], Awaitable[None]]
# Weights per operation. A session flow makes ~9 requests, so hostile snippets are about one request in eight.
MIX: list[tuple[Operation, float]] = [(one_shot, 0.35), (session_flow, 0.10), (batch, 0.15), (stream_drop, 0.15),
                                      (hostile, 0.20)]


async def client(base_url: str, load: Load, seed: int) -> None:
    """One client: operations back to back, chosen at random by MIX, until the deadline."""
    rng = random.Random(seed)
    operations, weights = zip(*MIX, strict=True)
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(KEY_A), timeout=httpx.Timeout(CLIENT_TIMEOUT, connect=10),
                                 limits=limits) as http:
        while not load.over():
            operation = rng.choices(operations, weights)[0]
            try:
                await operation(http, load, rng)
            except Exception as exc:  # a bug of the soak's own (or a body it did not foresee): counted, the load goes on
                now = load.rec.now()
                load.rec.add(Observation(operation.__name__, now, now, "wrong", f"soak client error {type(exc).__name__}",
                                         repr(exc)[:200]))


async def prime(base_url: str, load: Load) -> None:
    """Every operation once, one after another, before the idle baseline: lazy state on the server exists by then."""
    rng = random.Random(0)
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(KEY_A), timeout=CLIENT_TIMEOUT) as http:
        for operation, _ in MIX:
            await operation(http, load, rng)
        for kind in sorted(HOSTILE):
            await hostile(http, load, random.Random(sorted(HOSTILE).index(kind)))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Paced:
    """Key B's paced runs in one phase: the latencies (ms) and in-sandbox ``duration_ms`` of the right ones."""

    latencies: list[float] = field(default_factory=list)
    run_ms: list[float] = field(default_factory=list)
    not_right: int = 0


async def paced(base_url: str, load: Load, kind: str, samples: int, until: Callable[[], bool] | None = None) -> Paced:
    """Key B's one-shot ``print(1)`` runs, one every PACED_INTERVAL, timed by bench_fairness.paced_runs; each one
    also recorded (as ``kind``) and judged like every other request of the soak."""
    phase = Paced()
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(KEY_B), timeout=httpx.Timeout(CLIENT_TIMEOUT, connect=10),
                                 limits=httpx.Limits(max_connections=2, max_keepalive_connections=1)) as http:

        async def post() -> httpx.Response | None:
            response, _ = await send(http, load.rec, kind, "POST", "/v1/execute", 200, result_check("ok", "1\n"),
                                     json={"code": PACED_CODE})
            return response

        phase.latencies = await paced_runs(http, samples, PACED_INTERVAL, errors, phase.run_ms, until=until, post=post)
    phase.not_right = len(errors)
    return phase


async def paced_under_load(base_url: str, load: Load) -> Paced:
    """Key B's paced runs from PACED_START into the load until its deadline."""
    await asyncio.sleep(PACED_START)
    return await paced(base_url, load, "paced.load", int(load.duration / PACED_INTERVAL) + 1, until=load.over)


# ---- the server, seen from outside -----------------------------------------------------------

def start_server(port: int, pool_size: int, log: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, **SERVER_SETTINGS, "SANDLOT_POOL_SIZE": str(pool_size)}
    return subprocess.Popen([sys.executable, "-m", "sandlot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(server: subprocess.Popen[bytes], health: httpx.AsyncClient, pool_size: int) -> dict[str, Any]:
    """Wait until /healthz is 200 with the pool full; give up after two minutes or if the server exits."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await health.get("/healthz")
            body: dict[str, Any] = response.json()
            if response.status_code == 200 and body.get("pool_ready", 0) >= pool_size:
                return body
        await asyncio.sleep(0.1)
    raise SystemExit(f"the server did not become healthy (exit status {server.poll()})")


async def health_of(health: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    """(status code, body) of /healthz; (0, {}) if it did not answer."""
    try:
        response = await health.get("/healthz")
        return response.status_code, response.json()
    except (httpx.HTTPError, ValueError):
        return 0, {}


class Probe:
    """What the server holds, read from /proc, mountinfo and the cgroup tree, never from the server itself."""

    def __init__(self, server_pid: int, state_dir: str) -> None:
        self.pid = server_pid
        # The server's instance is <state_dir>/sandlot-<pid>-<hex>, with cgroups of the same name under its own cgroup.
        self.prefix = f"sandlot-{server_pid}-"
        self.mount_prefix = os.path.join(state_dir, self.prefix)
        # The server is our child and was not moved, so its own cgroups are ours.
        self.cgroup_dirs = sorted({h.own_dir for h in cgroups.detect().values()})

    def sample(self) -> dict[str, Any]:
        total, orphans = self.processes()
        return {"rss_mib": self.rss_mib(), "fds": self.fds(), "mounts": self.mounts(), "cgroups": self.cgroups(),
                "cpu_groups": self.cpu_groups(),
                "processes": total, "orphans": orphans, "fd_kinds": self.fd_kinds(), "strays": self.strays()}

    def rss_mib(self) -> float | None:
        with contextlib.suppress(OSError):
            for line in open(f"/proc/{self.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return None

    def fds(self) -> int | None:
        with contextlib.suppress(OSError):
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        return None

    def fd_kinds(self) -> dict[str, int]:
        """The server's fds by what they are: socket, pipe, anon_inode:[…], or a file by its name (to tell a leak's kind)."""
        kinds: Counter[str] = Counter()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                    kind = target.split(":")[0] if target.startswith(("socket:", "pipe:")) else \
                        target if target.startswith("anon_inode:") else "file " + os.path.basename(target)
                    kinds[re.sub(r"[0-9a-f]{6,}|\d+", "N", kind)] += 1
        return dict(kinds.most_common())

    def mounts(self) -> int:
        with open("/proc/self/mountinfo") as f:
            return sum(1 for line in f if line.split()[4].startswith(self.mount_prefix))

    def cgroups(self) -> int:
        """The server's cgroup directories: its instance parent and one per sandbox, in every hierarchy (at any
        depth: the cpu ones are in the pool's group or a tenant's), and those groups themselves."""
        return sum(1 + len(subs) for _, subs in self._instance_trees())

    def cpu_groups(self) -> int:
        """The cpu groups that are not a sandbox's (the pool's, one per tenant): one, the pool's, when idle."""
        return sum(1 for _, subs in self._instance_trees() for sub in subs if not os.path.basename(sub).startswith("sb-"))

    def _instance_trees(self) -> list[tuple[str, list[str]]]:
        """(instance parent, every cgroup directory below it) for each of the server's instance cgroups."""
        trees = []
        for own in self.cgroup_dirs:
            with contextlib.suppress(OSError):
                for entry in os.scandir(own):
                    if entry.name.startswith(self.prefix) and entry.is_dir(follow_symlinks=False):
                        trees.append((entry.path, [os.path.join(top, d) for top, dirs, _ in os.walk(entry.path)
                                                   for d in dirs]))
        return trees

    def strays(self) -> list[str]:
        """Workspace mounts and sandbox cgroups without their other half (a sandbox's are both named by its uid):
        what a leak left, named, with the processes still in a stray cgroup."""
        with open("/proc/self/mountinfo") as f:
            mounted = {m.group(1) for line in f if line.split()[4].startswith(self.mount_prefix)
                       and (m := re.search(r"/ws/u(\d+)-", line.split()[4]))}
        found, in_cgroups = [], set()
        for _, subs in self._instance_trees():
            for sub in subs:
                name = os.path.basename(sub)
                if not name.startswith("sb-"):
                    continue
                uid = name.split("-")[1]
                in_cgroups.add(uid)
                if uid not in mounted:
                    with contextlib.suppress(OSError), open(os.path.join(sub, "cgroup.procs")) as procs:
                        found.append(f"cgroup {sub} ({len(procs.read().split())} processes)")
        found += [f"workspace of uid {uid} without a cgroup" for uid in sorted(mounted - in_cgroups)]
        return found

    def processes(self) -> tuple[int, int]:
        """(the server's processes, those of them no longer below the server): its descendants, and any sandbox
        process wherever it went (by uid), which a dead zygote's orphans would be."""
        parents: dict[int, int] = {}
        sandbox_processes: set[int] = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/stat") as f:
                    parents[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{pid}/status") as f:
                    uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
                if uid in SANDBOX_UIDS:
                    sandbox_processes.add(pid)
        below = {pid for pid in parents if self._descends(pid, parents)}
        return len(below | sandbox_processes), len(sandbox_processes - below)

    def _descends(self, pid: int, parents: dict[int, int]) -> bool:
        seen = 0
        while pid in parents and seen < 64:
            pid = parents[pid]
            if pid == self.pid:
                return True
            seen += 1
        return False

    def zygote_children(self, zygote: int) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == zygote:
                        found.append(int(entry))
        return found


async def snapshot(probe: Probe, health: httpx.AsyncClient, t: float, label: str = "") -> dict[str, Any]:
    """One row of the resource table: the outside view plus what /healthz says about sandboxes and sessions."""
    _, body = await health_of(health)
    return {"t": round(t, 2), "label": label, **probe.sample(), "sandboxes_alive": body.get("sandboxes_alive"),
            "sessions": body.get("sessions"), "pool_ready": body.get("pool_ready")}


async def sample_resources(probe: Probe, health: httpx.AsyncClient, rec: Recorder, samples: list[dict[str, Any]],
                           stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(await snapshot(probe, health, rec.now()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


def idle_counts(sample: dict[str, Any], hierarchies: int) -> bool:
    """Whether a sample is what an idle server holds: the zygote and one process, mount and cgroup per sandbox alive,
    and in the cpu hierarchy the pool's group and (while sessions are open) key A's (key B opens no session)."""
    alive = sample["sandboxes_alive"]
    return (alive is not None and sample["pool_ready"] is not None and sample["processes"] == 1 + alive
            and sample["mounts"] == alive and sample["orphans"] == 0
            and sample["cgroups"] == hierarchies * (1 + alive) + sample["cpu_groups"]
            and sample["cpu_groups"] <= 1 + bool(sample.get("sessions")))


async def settle(probe: Probe, health: httpx.AsyncClient, rec: Recorder, pool_size: int, label: str) -> dict[str, Any]:
    """Wait (up to SETTLE_TIMEOUT) until the server is idle and steady: the pool full, no sandbox but the pool's and
    the sessions', nothing else held, and the same counts twice in a row; then that sample."""
    started, previous = time.monotonic(), None
    hierarchies = len(probe.cgroup_dirs)
    while True:
        sample = await snapshot(probe, health, rec.now(), label)
        idle = (sample["pool_ready"] == pool_size and sample["sandboxes_alive"] == pool_size + (sample["sessions"] or 0)
                and idle_counts(sample, hierarchies))
        key = tuple(sample[k] for k in ("fds", "mounts", "cgroups", "processes", "sandboxes_alive"))
        if idle and key == previous:
            sample["settled_after_s"] = round(time.monotonic() - started, 2)
            return sample
        if time.monotonic() - started > SETTLE_TIMEOUT:
            sample["settled_after_s"] = None
            return sample
        previous = key if idle else None
        await asyncio.sleep(0.5)


# ---- faults ----------------------------------------------------------------------------------

@dataclass
class Fault:
    """One injected fault and how the server came back from it."""

    at: float                           # seconds since the load began
    kind: str                           # "zygote" or "sandboxes"
    pids: list[int]
    recovered_after: float | None = None  # seconds from the kill until healthy; None: not within RECOVERY_TIMEOUT
    new_zygote: int | None = None

    def window(self) -> tuple[float, float]:
        after = self.recovered_after if self.recovered_after is not None else RECOVERY_TIMEOUT
        return self.at, self.at + after + FAULT_GRACE


def healthy(status: int, body: dict[str, Any], old_zygote: int | None) -> bool:
    """Serving again: the zygote up (a new one, after a zygote kill) and /healthz 200, or 503 only for being busy."""
    zygote = body.get("zygote") or {}
    if zygote.get("state") != "up" or (old_zygote is not None and zygote.get("pid") in (old_zygote, None)):
        return False
    return status == 200 or (status == 503 and all(r.startswith("no capacity") for r in body.get("reasons", [])))


async def inject_faults(probe: Probe, health: httpx.AsyncClient, load: Load, every: float, rng: random.Random) -> None:
    """Every ``every`` seconds, alternately: SIGKILL the zygote, SIGKILL a few random sandboxes; time the recovery."""
    index = 0
    while (index + 1) * every <= load.duration - FAULT_MARGIN:
        await asyncio.sleep(max(0.0, (index + 1) * every - load.rec.now()))
        _, body = await health_of(health)
        zygote = (body.get("zygote") or {}).get("pid")
        fault = Fault(load.rec.now(), "zygote" if index % 2 == 0 else "sandboxes", [])
        if isinstance(zygote, int):
            victims = [zygote] if fault.kind == "zygote" else probe.zygote_children(zygote)
            rng.shuffle(victims)
            for pid in victims[:SANDBOXES_PER_FAULT]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    fault.pids.append(pid)
        fault.at = load.rec.now()
        load.faults.append(fault)
        await wait_recovered(health, load.rec, fault, zygote if fault.kind == "zygote" else None)
        index += 1


async def wait_recovered(health: httpx.AsyncClient, rec: Recorder, fault: Fault, old_zygote: int | None) -> None:
    while rec.now() - fault.at < RECOVERY_TIMEOUT:
        status, body = await health_of(health)
        if healthy(status, body, old_zygote):
            fault.recovered_after = round(rec.now() - fault.at, 3)
            fault.new_zygote = (body.get("zygote") or {}).get("pid") if old_zygote is not None else None
            return
        await asyncio.sleep(HEALTH_POLL)


# ---- judging ---------------------------------------------------------------------------------

def judge(obs: Observation, faults: list[Fault]) -> tuple[str, bool]:
    """(outcome, expected?) of one observation, now that the fault windows are known.

    Expected: exactly right; 429 with Retry-After anywhere (capacity); inside a fault window (the
    request overlapped it), a 503, a run ended ``killed`` or a stream's error event; a restarted session
    cell if a fault happened since its previous cell began; a starved memory bomb anywhere (it is counted
    apart). Anything else is unexpected.
    """
    in_window = any(obs.start <= w_end and obs.end >= w_start for w_start, w_end in (f.window() for f in faults))
    if obs.label == "ok":
        return "ok", True
    if obs.label == "http":
        if obs.http == 429:
            return ("429 capacity", True) if obs.retry_after else ("429 without Retry-After", False)
        if obs.http == 503 and in_window:
            return f"503 {obs.detail} (fault window)" + ("" if obs.retry_after else " no Retry-After"), True
        return f"{obs.http} {obs.detail}" + (" in a fault window" if in_window else " outside a fault window"), False
    if obs.label in ("killed", "stream-error"):
        name = "killed" if obs.label == "killed" else f"stream error {obs.detail}"
        return (f"{name} (fault window)", True) if in_window else (f"{name} outside a fault window", False)
    if obs.label == "starved":
        return f"memory bomb {obs.detail}", True
    if obs.label == "restarted":
        since = obs.since if obs.since is not None else obs.start
        if any(since <= f.at <= obs.end for f in faults):
            return "restarted after a fault", True
        return "restarted without a fault", False
    if obs.label == "transport":
        return f"no answer: {obs.detail}", False
    return obs.detail or obs.label, False


def tally(observations: list[Observation], faults: list[Fault]) -> dict[str, Any]:
    """Requests by kind and outcome, p50/p99 of the right ones per kind, and the unexpected ones."""
    by_kind: dict[str, Counter[str]] = {}
    latencies: dict[str, list[float]] = {}
    unexpected: list[dict[str, Any]] = []
    for obs in observations:
        outcome, expected = judge(obs, faults)
        by_kind.setdefault(obs.kind, Counter())[outcome if expected else "UNEXPECTED " + outcome] += 1
        if outcome == "ok":
            latencies.setdefault(obs.kind, []).append((obs.end - obs.start) * 1000)
        if not expected:
            unexpected.append({"outcome": outcome, **asdict(obs)})
    latency = {kind: {"n": len(v), "p50_ms": round(percentile(v, 50), 1), "p99_ms": round(percentile(v, 99), 1)}
               for kind, v in latencies.items()}
    unrecovered = [f for f in faults if f.recovered_after is None]
    return {"by_kind": {k: dict(c) for k, c in sorted(by_kind.items())}, "latency": latency, "unexpected": unexpected,
            "requests": len(observations), "unexpected_count": len(unexpected) + len(unrecovered),
            "unrecovered_faults": len(unrecovered)}


def leftovers(probe: Probe) -> dict[str, Any]:
    """What is left of the server after it exited: processes (orphaned sandboxes), mounts, cgroups, its directory."""
    total, _ = probe.processes()
    state_dir = os.path.dirname(probe.mount_prefix)
    names = os.listdir(state_dir) if os.path.isdir(state_dir) else []
    return {"processes": total, "mounts": probe.mounts(), "cgroups": probe.cgroups(),
            "instance_dir": any(name.startswith(probe.prefix) for name in names)}


def fairness(idle: Paced, loaded: Paced, observations: list[Observation], faults: list[Fault],
             counts: dict[str, Any]) -> dict[str, Any]:
    """Key B's paced runs, idle and under key A's load: p50s (of the right answers, as bench_fairness.py takes them),
    their ratio, the loaded p50 outside every fault window too, and how many of B's answers were not right."""

    def p50(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    windows = [f.window() for f in faults]
    quiet = [(o.end - o.start) * 1000 for o in observations if o.kind == "paced.load" and o.label == "ok"
             and not any(o.start <= w_end and o.end >= w_start for w_start, w_end in windows)]
    unexpected = sum(n for kind, outcomes in counts["by_kind"].items() if kind.startswith("paced.")
                     for outcome, n in outcomes.items() if outcome.startswith("UNEXPECTED"))
    idle_p50, loaded_p50 = p50(idle.latencies), p50(loaded.latencies)
    return {"idle_p50_ms": idle_p50, "loaded_p50_ms": loaded_p50, "ratio": loaded_p50 / idle_p50,
            "loaded_quiet_p50_ms": p50(quiet), "idle_run_p50_ms": p50(idle.run_ms), "loaded_run_p50_ms": p50(loaded.run_ms),
            "idle_runs": len(idle.latencies), "loaded_runs": len(loaded.latencies), "loaded_quiet_runs": len(quiet),
            "idle_not_right": idle.not_right, "loaded_not_right": loaded.not_right, "unexpected": unexpected,
            "idle_ms": idle.latencies, "loaded_ms": loaded.latencies}


FAIRNESS = f"key B's paced runs within {FAIRNESS_GOAL:g}x of idle under key A's load"


def goals(counts: dict[str, Any], start: dict[str, Any], settled: dict[str, Any], warm: dict[str, Any],
          end: dict[str, Any], after: dict[str, Any], exit_code: int | None,
          fair: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(goal, met?, the numbers) for each of the four goals."""
    total, bad = counts["requests"], counts["unexpected_count"]
    keys = ("processes", "mounts", "cgroups", "fds")
    back = all(settled[k] == start[k] for k in keys) and settled["settled_after_s"] is not None
    clean = not any(after[k] for k in ("processes", "mounts", "cgroups", "instance_dir")) and exit_code == 0
    leak_text = (", ".join(f"{k} {settled[k]}/{start[k]}" for k in keys) + " (settled/idle baseline"
                 + (f", settled in {settled['settled_after_s']} s)" if settled["settled_after_s"] is not None
                    else ", never settled)")
                 + f"; after exit {after['processes']} processes, {after['mounts']} mounts, {after['cgroups']} cgroups, "
                 + f"instance dir {'left' if after['instance_dir'] else 'gone'}, exit status {exit_code}")
    ratio = end["rss_mib"] / warm["rss_mib"] if warm.get("rss_mib") and end.get("rss_mib") else float("nan")
    return [
        ("0 unexpected errors", bad == 0, f"{bad} unexpected of {total} requests"
         + (f" (+{counts['unrecovered_faults']} faults not recovered from)" if counts["unrecovered_faults"] else "")),
        ("nothing leaked", back and clean, leak_text),
        ("RSS flat within 10% after warm-up", abs(ratio - 1) <= RSS_TOLERANCE,
         f"{warm.get('rss_mib', 0):.1f} MiB at t={warm['t']:.0f} s -> {end.get('rss_mib', 0):.1f} MiB at t={end['t']:.0f} s "
         f"({ratio:.3f}x)"),
        # NaN (no right answer in a phase) compares False: a miss.
        (FAIRNESS, fair["ratio"] <= FAIRNESS_GOAL and fair["unexpected"] == 0,
         f"idle p50 {fair['idle_p50_ms']:.2f} ms, loaded p50 {fair['loaded_p50_ms']:.2f} ms, {fair['ratio']:.2f}x "
         f"(goal <= {FAIRNESS_GOAL:g}x; outside fault windows p50 {fair['loaded_quiet_p50_ms']:.2f} ms, "
         f"{fair['loaded_quiet_p50_ms'] / fair['idle_p50_ms']:.2f}x); {fair['idle_runs']}+{fair['loaded_runs']} right runs, "
         f"{fair['idle_not_right']}+{fair['loaded_not_right']} not right ({fair['unexpected']} unexpected)"),
    ]


# ---- the report ------------------------------------------------------------------------------

def print_requests(counts: dict[str, Any]) -> None:
    print(f"\nrequests by kind and outcome ({counts['requests']} requests; latency of the right ones)")
    print(f"  {'kind':<16} {'total':>7} {'ok':>7} {'expected':>9} {'UNEXP':>6} {'p50 ms':>9} {'p99 ms':>9}")
    for kind, outcomes in counts["by_kind"].items():
        n = sum(outcomes.values())
        bad = sum(v for k, v in outcomes.items() if k.startswith("UNEXPECTED"))
        lat = counts["latency"].get(kind, {})
        print(f"  {kind:<16} {n:>7} {outcomes.get('ok', 0):>7} {n - bad - outcomes.get('ok', 0):>9} {bad:>6} "
              f"{lat.get('p50_ms', float('nan')):>9.1f} {lat.get('p99_ms', float('nan')):>9.1f}")
    others: dict[str, Counter[str]] = {}
    for kind, outcomes in counts["by_kind"].items():
        for outcome, count in outcomes.items():
            if outcome != "ok":
                others.setdefault(outcome, Counter())[kind] = count
    if others:
        print("  outcomes other than ok (all kinds; by kind):")
        for outcome, kinds in sorted(others.items(), key=lambda item: (item[0].startswith("UNEXPECTED"), item[0])):
            split = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
            print(f"    {sum(kinds.values()):>6}  {outcome}  [{split}]")
    for example in counts["unexpected"][:12]:
        print(f"    e.g. t={example['start']:.1f}-{example['end']:.1f} s {example['kind']}: {example['outcome']}: "
              f"{example['example'][:160]}")


def print_faults(faults: list[dict[str, Any]]) -> None:
    print(f"\nfaults ({len(faults)}; window = kill .. healthy + {FAULT_GRACE:.0f} s)")
    for f in faults:
        pids, recovered = f["pids"], f["recovered_after"]
        what = f"zygote {pids[0] if pids else '?'}" if f["kind"] == "zygote" else f"{len(pids)} sandboxes {pids}"
        back = f"healthy after {recovered:.3f} s" if recovered is not None else f"NOT healthy within {RECOVERY_TIMEOUT:.0f} s"
        print(f"  t={f['at']:7.1f} s  SIGKILL {what:<32} {back}" + (f" (new zygote {f['new_zygote']})" if f["new_zygote"] else ""))


def print_resources(rows: list[dict[str, Any]], after: dict[str, Any]) -> None:
    print("\nserver resources (outside view; cgroups = instance parent + one per sandbox, per hierarchy, + the cpu "
          "hierarchy's pool and tenant groups)")
    print(f"  {'':<16} {'t s':>7} {'RSS MiB':>8} {'fds':>5} {'mounts':>6} {'cgroups':>7} {'procs':>6} {'orphans':>7} "
          f"{'sandboxes':>9} {'sessions':>8} {'pool':>5}")
    for row in rows:
        print(f"  {row['label']:<16} {row['t']:>7.1f} {row['rss_mib'] or 0:>8.1f} {row['fds'] or 0:>5} {row['mounts']:>6} "
              f"{row['cgroups']:>7} {row['processes']:>6} {row['orphans']:>7} {row['sandboxes_alive']!s:>9} "
              f"{row['sessions']!s:>8} {row['pool_ready']!s:>5}")
    print(f"  {'after exit':<16} {'':>7} {'-':>8} {'-':>5} {after['mounts']:>6} {after['cgroups']:>7} {after['processes']:>6}"
          f"   instance dir {'LEFT' if after['instance_dir'] else 'gone'}")


def print_leak_details(start: dict[str, Any], settled: dict[str, Any]) -> None:
    """What differs between the idle baseline and the settled end: fds by kind, and named stray mounts and cgroups."""
    kinds = sorted(set(start["fd_kinds"]) | set(settled["fd_kinds"]))
    changed = [f"{k} {start['fd_kinds'].get(k, 0)} -> {settled['fd_kinds'].get(k, 0)}" for k in kinds
               if start["fd_kinds"].get(k, 0) != settled["fd_kinds"].get(k, 0)]
    if changed:
        print("  fds by kind, idle baseline -> settled: " + ", ".join(changed))
    for stray in settled["strays"]:
        print(f"  stray: {stray}")


def server_log_summary(path: str) -> dict[str, Any]:
    """Warnings, errors and tracebacks the server logged, grouped by message with the numbers taken out."""
    lines = open(path, errors="replace").read().splitlines()
    kinds: Counter[str] = Counter()
    for line in lines:
        try:
            entry = json.loads(line)
            level, message = str(entry.get("level", "")), str(entry.get("msg", ""))
        except (ValueError, AttributeError):  # not one of its JSON log lines: a traceback's, or a library's
            level, message = ("error" if "Traceback" in line else ""), line
        if level.lower() in ("warning", "error", "critical"):
            kinds[f"{level.lower()}: " + re.sub(r"\d+(\.\d+)?", "N", message)[:150]] += 1
    return {"lines": len(lines), "tracebacks": sum("Traceback" in line for line in lines), "messages": dict(kinds.most_common(20))}


# ---- the run ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    minutes: float
    clients: int
    fault_every: float
    pool_size: int
    seed: int
    paced_idle: int = 50
    """Key B's paced runs on the idle server (as many again and more run under the load, until its end)."""


async def soak(plan: Plan, log_path: str) -> dict[str, Any]:
    """Start the server, prime it, take the idle baseline, run the load with faults, settle, stop it, look around."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = start_server(port, plan.pool_size, log)
    rec = Recorder()
    load = Load(rec, plan.minutes * 60, [])
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(KEY_A), timeout=10) as health:
        try:
            try:
                ready = await wait_ready(server, health, plan.pool_size)
            except SystemExit as exc:
                raise SystemExit(f"{exc}; its log: {log_path}") from None
            probe = Probe(server.pid, EngineConfig().state_dir)
            await prime(base_url, load)
            await settle(probe, health, rec, plan.pool_size, "primed")
            # Key B on the idle server, the same server the load will run on: the fairness goal's baseline.
            await paced(base_url, load, "paced.warm-up", PACED_WARMUP)
            idle = await paced(base_url, load, "paced.idle", plan.paced_idle)
            start = await settle(probe, health, rec, plan.pool_size, "start (idle)")
            start["t"] -= rec.restart()  # the load begins now; priming and the idle paced runs stay before 0
            samples, end, loaded = await run_load(base_url, plan, probe, health, load)
            warm = next((s for s in samples if s["t"] >= WARM_FRACTION * load.duration), end)
            leftover_sessions = await close_sessions(health, load)
            settled = await settle(probe, health, rec, plan.pool_size, "settled")
        finally:
            exit_code = stop_server(server)
    after = leftovers(probe)
    counts = tally(rec.observations, load.faults)
    fair = fairness(idle, loaded, rec.observations, load.faults, counts)
    rows = [start, dict(warm, label=f"warm-up ({WARM_FRACTION:.0%})"), end, settled]
    return {"plan": asdict(plan), "isolation": ready.get("isolation"), "version": ready.get("version"),
            "cpus": os.cpu_count(), "server_settings": SERVER_SETTINGS, "counts": counts,
            "faults": [asdict(f) for f in load.faults], "resources": rows, "after_exit": after, "samples": samples,
            "leftover_sessions": leftover_sessions, "exit_code": exit_code, "fairness": fair,
            "goals": goals(counts, start, settled, warm, end, after, exit_code, fair)}


async def run_load(base_url: str, plan: Plan, probe: Probe, health: httpx.AsyncClient,
                   load: Load) -> tuple[list[dict[str, Any]], dict[str, Any], Paced]:
    """The clients (key A), key B's paced runs, the faults and the sampler, until the deadline (and the operations
    under way then) is past. Returns the samples, the one taken as the load stopped, and key B's paced runs."""
    stop = asyncio.Event()
    samples: list[dict[str, Any]] = []
    sampler = asyncio.create_task(sample_resources(probe, health, load.rec, samples, stop))
    faulter = asyncio.create_task(inject_faults(probe, health, load, plan.fault_every, random.Random(plan.seed)))
    workers = [asyncio.create_task(client(base_url, load, plan.seed * 1000 + n)) for n in range(plan.clients)]
    pacer = asyncio.create_task(paced_under_load(base_url, load))
    _, pending = await asyncio.wait([*workers, pacer], timeout=load.duration + END_GRACE)
    for task in pending:
        task.cancel()  # bounded: what still runs now is counted ("still running at the end")
    await asyncio.gather(*workers, pacer, return_exceptions=True)
    loaded = Paced() if pacer.cancelled() else pacer.result()  # cancelled: still waiting END_GRACE after the deadline
    faulter.cancel()
    await asyncio.gather(faulter, return_exceptions=True)
    end = await snapshot(probe, health, load.rec.now(), "end of load")
    stop.set()
    await sampler
    return samples, end, loaded


async def close_sessions(health: httpx.AsyncClient, load: Load) -> int:
    """Delete the sessions a client could not (its delete met a fault), and any the server still lists."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        listed = (await health.get("/v1/sessions")).json().get("sessions", [])
        load.open_sessions |= {s["id"] for s in listed}
    for sid in sorted(load.open_sessions):
        with contextlib.suppress(httpx.HTTPError):
            await health.delete(f"/v1/sessions/{sid}")
    return len(load.open_sessions)


def stop_server(server: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, as an operator stops it; it must drain and exit 0 by itself (else SIGKILL, and None)."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        return server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return None


def report(result: dict[str, Any], log: dict[str, Any], log_path: str) -> None:
    plan = result["plan"]
    settings = {k.removeprefix("SANDLOT_").lower(): v for k, v in SERVER_SETTINGS.items()}
    print(f"sandlot soak: {plan['clients']} clients for {plan['minutes']:g} min, faults every {plan['fault_every']:g} s; "
          f"isolation {result['isolation']}, {result['cpus']} CPUs; server: pool {plan['pool_size']}, max_sandboxes "
          f"{settings['max_sandboxes']}, runs/sessions per key {settings['max_runs_per_key']}/{settings['max_sessions_per_key']}, "
          f"sandboxes {settings['timeout']} s, {int(settings['memory']) // MiB} MiB, {settings['pids']} pids")
    counts = result["counts"]
    print_requests(counts)
    hostile_share = sum(sum(v.values()) for k, v in counts["by_kind"].items() if k.startswith("hostile")) / max(1, counts["requests"])
    print(f"  hostile snippets: {hostile_share:.1%} of requests; sessions left for the cleanup: {result['leftover_sessions']}")
    print_faults(result["faults"])
    print_resources(result["resources"], result["after_exit"])
    print_leak_details(result["resources"][0], result["resources"][-1])
    fair = result["fairness"]
    print(f"\nfairness: key B's paced one-shot {PACED_CODE}, one every {PACED_INTERVAL * 1000:.0f} ms; key A runs the load")
    print(f"  idle server (before the load)  p50 {fair['idle_p50_ms']:8.2f} ms   {fair['idle_runs']:>5} right runs, "
          f"{fair['idle_not_right']} not; in the sandbox p50 {fair['idle_run_p50_ms']:.2f} ms")
    print(f"  under the load                 p50 {fair['loaded_p50_ms']:8.2f} ms   {fair['loaded_runs']:>5} right runs, "
          f"{fair['loaded_not_right']} not; in the sandbox p50 {fair['loaded_run_p50_ms']:.2f} ms")
    print(f"  under the load, outside faults p50 {fair['loaded_quiet_p50_ms']:8.2f} ms   {fair['loaded_quiet_runs']:>5} right runs")
    print(f"\nserver log: {log['lines']} lines, {log['tracebacks']} tracebacks ({log_path})")
    for message, count in log["messages"].items():
        print(f"  {count:>5}x {message}")
    print("\ngoals")
    for goal, met, numbers in result["goals"]:
        print(f"  {'MET ' if met else 'MISS'}  {goal}: {numbers}")


def run_as_init() -> int:
    """Be the init of this pid namespace: run the soak as a child, reap every orphan meanwhile.

    Under scripts/contained.py the soak is pid 1 of a fresh pid namespace. A killed zygote orphans its
    sandboxes (they die with it), and orphans go to pid 1: without an init reaping them they would stay
    zombies, counted as leaks the server did not make.
    """
    child = subprocess.Popen([sys.executable, *sys.argv])
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        if pid == child.pid:
            return os.waitstatus_to_exitcode(status) % 256


def main() -> int:
    # The server this starts keeps its sessions only while it runs: it must not wait on (or be refused by) the
    # data directory of a `sandlot serve` the developer may be running (one server per data dir).
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="how long the load runs (default 10; --quick 0.75)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 64; --quick 16)")
    parser.add_argument("--fault-every", type=float, help="seconds between faults (default 30; --quick 15)")
    parser.add_argument("--pool-size", type=int, default=POOL_SIZE, help=f"the server's warm pool (default {POOL_SIZE})")
    parser.add_argument("--seed", type=int, default=1, help="seeds the mix and the choice of sandboxes to kill")
    parser.add_argument("--quick", action="store_true", help="45 s, 16 clients, one fault of each kind (CI)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args()
    if os.getpid() == 1:
        return run_as_init()
    defaults = (0.75, 16, 15.0, 20) if args.quick else (10.0, 64, 30.0, 50)
    plan = Plan(args.minutes or defaults[0], args.clients or defaults[1], args.fault_every or defaults[2],
                args.pool_size, args.seed, defaults[3])
    log_path = os.path.join(tempfile.gettempdir(), f"sandlot-soak-{os.getpid()}-{int(time.time())}.log")
    result = asyncio.run(soak(plan, log_path))
    log = server_log_summary(log_path)
    report(result, log, log_path)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result | {"server_log": log}, f, indent=2)
    met = {goal: ok for goal, ok, _ in result["goals"]}
    # Wrong answers, leaks and an unfair server fail the run (CI keeps them from creeping in); RSS drift is reported only.
    return 0 if met["0 unexpected errors"] and met["nothing leaked"] and met[FAIRNESS] else 1


if __name__ == "__main__":
    sys.exit(main())
