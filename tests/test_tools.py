"""Programmatic tool calling: sandbox code calls host tools over the channel."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException

from sandlot import EngineConfig, Sandlot
from sandlot.tools import ToolRegistry, http_tool, tools_from_openapi

TOOL_SECRET = "tool-credential-5b1e77"
os.environ["SANDLOT_TEST_TOOL_SECRET"] = TOOL_SECRET


@pytest.fixture(scope="module")
def weather_api() -> Iterator[str]:
    """A real HTTP service on loopback that wants a credential only the host has."""
    app = FastAPI()

    @app.get("/weather/{city}", operation_id="get_weather_http")
    async def weather(city: str, unit: str = "C", authorization: str = Header("")) -> dict[str, object]:
        if authorization != f"Bearer {TOOL_SECRET}":
            raise HTTPException(401, "no credential")
        return {"city": city, "temp": 21 if unit == "C" else 70, "unit": unit}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def make_registry(weather_url: str) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def lookup(record_id: int) -> dict[str, int]:
        """The record with this id."""
        return {"id": record_id, "value": (record_id * 37) % 101}

    @registry.tool
    async def slow(seconds: float = 0.1) -> str:
        """Sleep, then answer."""
        await asyncio.sleep(seconds)
        return "done"

    @registry.tool(timeout=0.5)
    async def hang() -> None:
        """Never answers in time."""
        await asyncio.sleep(60)

    @registry.tool
    def explode(reason: str) -> None:
        """Always raises."""
        raise ValueError(f"exploded: {reason}")

    registry.add(http_tool("weather", "GET", weather_url + "/weather/{city}", description="Weather in a city.",
                           params={"city": str, "unit": (str, "C")},
                           headers_from_env={"Authorization": "SANDLOT_TEST_TOOL_AUTH"}))
    os.environ["SANDLOT_TEST_TOOL_AUTH"] = f"Bearer {TOOL_SECRET}"
    return registry


@pytest.fixture(scope="module")
def sl(weather_api: str) -> Iterator[Sandlot]:
    config = EngineConfig(preload=(), pool_size=2, max_tool_calls=30, max_tool_time=20)
    with Sandlot(config, tools=make_registry(weather_api)) as engine:
        yield engine


def run_json(sl: Sandlot, code: str) -> object:
    result = sl.execute(code)
    assert result.status == "ok", (result.stderr, result.error)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sync_tool_and_its_record(sl: Sandlot) -> None:
    result = sl.execute("from sandlot.tools import lookup\nprint(lookup(3)['value'], lookup(record_id=4)['value'])")
    assert result.stdout == "10 47\n"
    assert [(c.name, c.arguments, c.status) for c in result.tool_calls] == [
        ("lookup", {"record_id": 3}, "ok"), ("lookup", {"record_id": 4}, "ok")]
    assert all(c.duration_ms >= 0 for c in result.tool_calls)


def test_stubs_have_real_signatures_and_docs(sl: Sandlot) -> None:
    code = "import inspect, json\nfrom sandlot.tools import weather\n" \
           "print(json.dumps([str(inspect.signature(weather)), weather.__doc__]))"
    assert run_json(sl, code) == ["(city: 'str', unit: 'str' = 'C') -> 'Any'", "Weather in a city."]


def test_async_tool_and_aio(sl: Sandlot) -> None:
    code = "from sandlot.tools import slow\nimport asyncio\nprint(await slow.aio(0.01), slow(0.01))"
    assert sl.execute(code).stdout == "done done\n"


def test_http_tool_uses_the_hosts_credential(sl: Sandlot) -> None:
    assert run_json(sl, "import json\nfrom sandlot.tools import weather\nprint(json.dumps(weather('Oslo', unit='F')))") \
        == {"city": "Oslo", "temp": 70, "unit": "F"}


def test_openapi_tools(weather_api: str) -> None:
    import httpx

    document = httpx.get(weather_api + "/openapi.json").json()
    (tool,) = tools_from_openapi(document, base_url=weather_api,
                                 headers_from_env={"Authorization": "SANDLOT_TEST_TOOL_AUTH"})
    assert tool.name == "get_weather_http"
    assert asyncio.run(tool.call({"city": "Lima"}))["temp"] == 21


def test_invalid_arguments_raise_tool_error_in_the_sandbox(sl: Sandlot) -> None:
    code = "import json\nfrom sandlot.tools import lookup, ToolError\ntry:\n    lookup('not a number')\n" \
           "except ToolError as e:\n    print(json.dumps(str(e)))"
    assert "invalid arguments" in run_json(sl, code)  # type: ignore[operator]
    wrong_call = sl.execute("from sandlot.tools import lookup\nlookup(1, 2, 3)")
    assert wrong_call.error is not None and wrong_call.error.ename == "TypeError"


def test_a_tool_that_raises(sl: Sandlot) -> None:
    result = sl.execute("from sandlot.tools import explode\nexplode('why')")
    assert result.status == "error"
    assert result.error is not None and result.error.ename == "ToolError"
    assert "ValueError: exploded: why" in result.error.evalue
    assert result.tool_calls[0].status == "tool_error"


def test_a_tool_that_hangs_times_out(sl: Sandlot) -> None:
    started = time.monotonic()
    result = sl.execute("from sandlot.tools import hang\nhang()")
    assert time.monotonic() - started < 5
    assert result.error is not None and "timed out" in result.error.evalue
    assert result.tool_calls[0].status == "timeout"


def test_a_flood_of_calls_hits_the_cap(sl: Sandlot) -> None:
    code = "import json\nfrom sandlot.tools import lookup, ToolError\nok = 0\ntry:\n    for i in range(1000):\n" \
           "        lookup(i)\n        ok += 1\nexcept ToolError as e:\n    print(json.dumps([ok, str(e)]))"
    ok, message = run_json(sl, code)  # type: ignore[misc]
    assert ok == 30 and "limit of 30" in message


def test_calls_run_concurrently(sl: Sandlot) -> None:
    code = "import time, json\nfrom sandlot.tools import slow, parallel_map\nt = time.perf_counter()\n" \
           "out = parallel_map(slow, [0.1] * 10)\nprint(json.dumps([out.count('done'), time.perf_counter() - t]))"
    count, elapsed = run_json(sl, code)  # type: ignore[misc]
    assert count == 10
    assert elapsed < 0.6  # ten 0.1 s calls, one after another, would take 1 s


def test_secrets_never_reach_the_sandbox(sl: Sandlot) -> None:
    # The sandbox uses the credentialed tool, then searches everything it can read for the secret:
    # its environment, its files, and every readable page of its own memory (inherited from the zygote).
    # The secret is given as two halves that are never joined, so the search cannot find itself.
    half = len(TOOL_SECRET) // 2
    code = f"""
import json, os
from sandlot.tools import weather
weather('Paris')
head, tail = {TOOL_SECRET[:half]!r}.encode(), {TOOL_SECRET[half:]!r}.encode()
found = []
def contains(data):
    start = data.find(head)
    while start != -1:
        if data[start + len(head):start + len(head) + len(tail)] == tail:
            return True
        start = data.find(head, start + 1)
    return False
if any(contains(v.encode()) for v in os.environ.values()):
    found.append('environ')
for root in ('/workspace', '/tmp'):
    for dirpath, _, files in os.walk(root):
        for name in files:
            if contains(open(os.path.join(dirpath, name), 'rb').read()):
                found.append(name)
scanned = 0
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
    for line in maps:
        span, perms = line.split()[:2]
        if 'r' not in perms:
            continue
        start, end = (int(x, 16) for x in span.split('-'))
        try:
            mem.seek(start)
            chunk = mem.read(end - start)
        except (OSError, ValueError, OverflowError):
            continue
        scanned += len(chunk)
        if contains(chunk):
            found.append(line.split()[-1])
print(json.dumps([found, scanned]))
"""
    found, scanned = run_json(sl, code)  # type: ignore[misc]
    assert scanned > 10 << 20  # it really read its memory
    assert found == []


def test_session_tool_allowlist(sl: Sandlot) -> None:
    with sl.session(tools=["lookup"]) as session:
        visible = session.execute("import sandlot.tools as t\nprint(sorted(n for n in t.__all__ if n[0].islower()))")
        assert visible.stdout == "['lookup', 'parallel_map']\n"
        # Forging a call to a tool outside the allowlist, straight on the channel, gets an error and nothing else.
        code = ("import os, json, struct\nbody = json.dumps({'t': 'call', 'id': 777, 'tool': 'explode', "
                "'args': {'reason': 'x'}}).encode()\nos.write(3, struct.pack('>I', len(body)) + body)\n"
                "size = struct.unpack('>I', os.read(3, 4))[0]\nprint(os.read(3, size).decode())")
        reply = json.loads(session.execute(code).stdout)
        assert reply["ok"] is False and reply["error"]["type"] == "unknown_tool"
        assert session.execute("1 + 1").status == "ok"


def test_importing_a_tool_the_session_may_not_call_says_so(sl: Sandlot) -> None:
    with sl.session(tools=["lookup"]) as session:
        refused = session.execute("from sandlot.tools import explode")
        assert refused.error is not None and refused.error.ename == "ImportError"
        assert "'explode' exists but this run or session may not call it (it may call: lookup;" in refused.error.evalue
        assert "unknown location" not in refused.error.evalue
        # A name that is no tool at all is still the usual error, and getattr's default still works.
        missing = session.execute("from sandlot.tools import no_such_tool")
        assert missing.error is not None and missing.error.ename == "ImportError"
        assert session.execute("import sandlot.tools as t\ngetattr(t, 'no_such_tool', 'default')").outputs[0].data == \
            {"text/plain": "'default'"}


def test_without_tools_the_module_is_empty_and_calls_are_refused() -> None:
    with Sandlot(EngineConfig(preload=(), pool_size=1)) as plain:
        listing = plain.execute("import sandlot.tools as t\nprint(t.__all__)")
        assert listing.stdout == "['ToolError', 'parallel_map']\n"
        code = ("import os, json, struct\nbody = json.dumps({'t': 'call', 'id': 5, 'tool': 'x', 'args': {}}).encode()\n"
                "os.write(3, struct.pack('>I', len(body)) + body)\nsize = struct.unpack('>I', os.read(3, 4))[0]\n"
                "print(os.read(3, size).decode())")
        reply = json.loads(plain.execute(code).stdout)
        assert reply["ok"] is False and reply["error"]["type"] == "unavailable"


# ---- tools in the agent loop ------------------------------------------------------------

def agent_run(registry: ToolRegistry, script: list[object], question: str = "go") -> tuple[dict[str, object], list[dict[str, object]]]:
    """One agent request, in-process, against a scripted model; returns (response, upstream requests)."""
    from sandlot import Engine
    from sandlot.agent.config import AgentSettings, UpstreamModel
    from sandlot.agent.openai_format import ChatRequest
    from sandlot.agent.service import AgentService
    from sandlot.testing import ScriptedUpstream

    async def go(model: ScriptedUpstream) -> dict[str, object]:
        async with Engine(EngineConfig(preload=(), pool_size=1), tools=registry) as engine:
            service = AgentService(engine, (UpstreamModel(name="m", base_url=model.base_url, action_format="tool_calls"),),
                                   AgentSettings(max_steps=5, max_wall_time=60))
            request = ChatRequest(model="m", messages=[{"role": "user", "content": question}])
            session, _ = await service.open_session(request, None)
            try:
                return await service.complete(request, session, service.upstream_for("m"), kept=False)
            finally:
                await engine.close_session(session.id)
                await service.close()

    with ScriptedUpstream(script) as model:  # type: ignore[arg-type]
        response = asyncio.run(go(model))
        return response, model.requests


def test_the_model_is_told_the_tools_as_python_stubs() -> None:
    from sandlot.testing import Reply
    from sandlot.tools import tool_from_callable

    def lookup(record_id: int, detailed: bool = False) -> dict[str, int]:
        """The record with this id."""
        return {"id": record_id}

    _, requests = agent_run(ToolRegistry([tool_from_callable(lookup)]), [Reply("ok")])
    (python_tool,) = [t for t in requests[0]["tools"] if t["function"]["name"] == "python"]  # type: ignore[index, union-attr]
    description = python_tool["function"]["description"]
    assert "from sandlot.tools import" in description
    assert "def lookup(record_id: int, detailed: bool = False) -> dict[str, int]:" in description
    assert "The record with this id." in description
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["python"]  # type: ignore[index, union-attr]


def test_code_from_the_model_calls_tools_and_only_the_result_goes_back() -> None:
    from sandlot.testing import Reply
    from sandlot.tools import tool_from_callable

    def lookup(record_id: int) -> dict[str, int]:
        """The record with this id."""
        return {"id": record_id, "value": record_id * 3}

    code = "from sandlot.tools import lookup, parallel_map\nprint(max(r['value'] for r in parallel_map(lookup, range(10))))"
    response, requests = agent_run(ToolRegistry([tool_from_callable(lookup)]), [Reply(tool_code=code), Reply("27")])
    (step,) = response["sandlot"]["steps"]  # type: ignore[index]
    assert step["stdout"] == "27\n" and len(step["tool_calls"]) == 10
    observed = requests[1]["messages"][-1]["content"]  # type: ignore[index]
    assert "27" in observed and "value" not in observed  # the records themselves never reach the model


def test_operator_exposed_tools_are_direct_calls_run_on_the_host() -> None:
    from sandlot.testing import Reply
    from sandlot.tools import tool_from_callable

    def lookup(record_id: int) -> dict[str, int]:
        """The record with this id."""
        return {"id": record_id, "value": 99}

    registry = ToolRegistry([tool_from_callable(lookup, expose="both")])
    response, requests = agent_run(registry, [Reply(tool_calls=[("lookup", {"record_id": 4})]), Reply("99")])
    assert sorted(t["function"]["name"] for t in requests[0]["tools"]) == ["lookup", "python"]  # type: ignore[index, union-attr]
    tool_message = requests[1]["messages"][-1]  # type: ignore[index]
    assert tool_message["role"] == "tool" and json.loads(tool_message["content"]) == {"id": 4, "value": 99}
    assert response["sandlot"]["tool_calls"][0]["name"] == "lookup"  # type: ignore[index]
    assert response["choices"][0]["message"]["content"] == "99"  # type: ignore[index]


def test_tools_over_http(weather_api: str) -> None:
    import httpx
    from conftest import running_server

    from sandlot.server import ServerConfig

    config = ServerConfig(engine=EngineConfig(preload=(), pool_size=1))
    with running_server(config, make_registry(weather_api)) as url, httpx.Client(base_url=url) as http:
        result = http.post("/v1/execute", json={"code": "from sandlot.tools import lookup\nlookup(5)['value']"}).json()
        assert result["outputs"][0]["data"]["text/plain"] == "84"
        assert result["tool_calls"][0]["name"] == "lookup" and result["tool_calls"][0]["status"] == "ok"
        limited = http.post("/v1/execute", json={"code": "import sandlot.tools as t\nsorted(t.__all__)",
                                                 "tools": ["weather"]}).json()
        assert limited["outputs"][0]["data"]["text/plain"] == "['ToolError', 'parallel_map', 'weather']"
        assert http.post("/v1/execute", json={"code": "1", "tools": ["nope"]}).status_code == 400
        session = http.post("/v1/sessions", json={"tools": ["lookup"]}).json()
        cell = http.post(f"/v1/sessions/{session['id']}/execute",
                         json={"code": "from sandlot.tools import weather"}).json()
        assert cell["status"] == "error" and cell["error"]["ename"] == "ImportError"
        assert 'sandlot_tool_calls_total{status="ok",tool="lookup"} 1.0' in http.get("/metrics").text


def test_the_docs_example_registers_and_runs() -> None:
    # docs/tools.md, as written: its registry module, then its sandboxed code against it.
    doc = (Path(__file__).resolve().parents[1] / "docs" / "tools.md").read_text()
    module, sandboxed = re.findall(r"```python\n(.*?)```", doc, re.S)[:2]
    namespace: dict[str, object] = {}
    exec(compile(module, "mytools.py", "exec"), namespace)
    registry = namespace["registry"]
    assert isinstance(registry, ToolRegistry) and registry.names == ["get_weather", "lookup_record", "search"]
    db: Any = namespace["DB"]
    with Sandlot(EngineConfig(preload=(), pool_size=1), tools=registry) as engine:
        result = engine.execute(sandboxed)
    assert result.status == "ok", result.stderr
    top = sorted((db[i] for i in range(1, 21)), key=lambda r: r["value"])[-2:]
    assert result.stdout == f"{top}\n"
    assert len(result.tool_calls) == 20
