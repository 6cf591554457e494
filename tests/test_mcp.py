"""The MCP server, driven by the official ``mcp`` client over both transports.

stdio: ``sandlot mcp`` started as a subprocess, as a desktop client starts it.
Streamable HTTP: ``/mcp`` on a real server. Both protocol eras the SDK speaks
run the same scenario: the 2026 one the client picks by itself ("auto") and the
initialize handshake of today's desktop clients ("legacy").
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from conftest import API_KEY, leftovers, running_server
from fastapi import FastAPI
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent
from starlette.testclient import TestClient

from sandlot import EngineConfig, SetupError
from sandlot.server import ServerConfig

TOOLS = {"run_python", "create_session", "run_cell", "run_command", "upload_file", "download_file", "list_files",
         "close_session"}
MODES = ["auto", "legacy"]
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}
STDIO = [sys.executable, "-m", "sandlot.cli", "mcp", "--preload", "matplotlib", "--pool-size", "1", "--log-level", "info"]


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    """A server without keys (loopback), matplotlib preloaded for the plots."""
    with running_server(ServerConfig(engine=EngineConfig(preload=("matplotlib",), pool_size=2))) as url:
        yield url


def texts(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    return await client.call_tool(tool, arguments)


async def ok(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    result = await call(client, tool, **arguments)
    assert not result.is_error, texts(result)
    return result


async def exercise(client: Client) -> None:
    """Everything a model does with the tools, checked."""
    listed = await client.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    run = tools["run_python"]
    assert run.input_schema["required"] == ["code"] and "timeout" in run.input_schema["properties"]
    assert "no network" in (run.description or "") and "print()" in (run.description or "")
    assert tools["upload_file"].input_schema["properties"]["encoding"]["enum"] == ["text", "base64"]

    # One-shot runs: printed text and the last expression's value; nothing carries over.
    first = await ok(client, "run_python", code="print('hello')\ny = 6\ny * 7")
    assert texts(first) == "hello\n\nOut[1]: 42"
    assert first.structured_content is not None
    assert first.structured_content["status"] == "ok" and first.structured_content["stdout"] == "hello\n"
    forgotten = await call(client, "run_python", code="y")
    assert forgotten.is_error and "NameError" in texts(forgotten)
    quiet = await ok(client, "run_python", code="z = 1")
    assert "no output" in texts(quiet)
    slow = await call(client, "run_python", code="import time\ntime.sleep(30)", timeout=0.5)
    assert slow.is_error and slow.structured_content is not None and slow.structured_content["status"] == "timeout"
    assert "TimeoutError: the run exceeded its time limit of 0.5s" in texts(slow)

    # A session keeps state; a figure is an image.
    created = await ok(client, "create_session")
    assert created.structured_content is not None
    sid = created.structured_content["id"]
    assert sid.startswith("ses_") and sid in texts(created)
    plot = await ok(client, "run_cell", session_id=sid, code="import matplotlib.pyplot as plt\nvalue = 21\nplt.plot([1, 2])")
    images = [block for block in plot.content if isinstance(block, ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    assert base64.b64decode(images[0].data).startswith(b"\x89PNG")
    doubled = await ok(client, "run_cell", session_id=sid, code="value * 2")
    assert texts(doubled) == "Out[2]: 42"

    # A shell command runs in the same session, on the same files.
    shell = await ok(client, "run_command", session_id=sid, command="echo hi > shell.txt && cat shell.txt")
    assert texts(shell) == "exit code 0\nstdout:\nhi\n"
    failing = await call(client, "run_command", session_id=sid, command="echo no >&2; exit 4")
    assert failing.is_error and failing.structured_content is not None and failing.structured_content["exit_code"] == 4
    assert "stderr:\nno" in texts(failing)
    await ok(client, "run_command", session_id=sid, command="rm shell.txt")

    # A user-code error is a normal result, flagged.
    failed = await call(client, "run_cell", session_id=sid, code="1 / 0")
    assert failed.is_error and "ZeroDivisionError: division by zero" in texts(failed)
    assert failed.structured_content is not None and failed.structured_content["error"]["ename"] == "ZeroDivisionError"

    # Files: text and base64 in, what code wrote out.
    blob = bytes(range(256))
    await ok(client, "upload_file", session_id=sid, path="data/in.csv", content="a,b\n1,2\n")
    await ok(client, "upload_file", session_id=sid, path="blob.bin", content=base64.b64encode(blob).decode(), encoding="base64")
    read = await ok(client, "run_cell", session_id=sid,
                    code="print(open('data/in.csv').read().splitlines()[1])\nopen('out.txt', 'w').write('done')\n"
                         "print(len(open('blob.bin', 'rb').read()))")
    assert texts(read).startswith("1,2\n256\n")
    listing = await ok(client, "list_files", session_id=sid)
    assert listing.structured_content is not None
    assert {f["path"]: f["size"] for f in listing.structured_content["files"]} == {"blob.bin": 256, "data/in.csv": 8,
                                                                                 "out.txt": 4}
    out = await ok(client, "download_file", session_id=sid, path="out.txt")
    assert texts(out) == "done" and out.structured_content == {"path": "out.txt", "size": 4, "encoding": "text",
                                                              "content": "done"}
    binary = await ok(client, "download_file", session_id=sid, path="blob.bin")
    assert binary.structured_content is not None and binary.structured_content["encoding"] == "base64"
    assert base64.b64decode(binary.structured_content["content"]) == blob
    for bad in ("../etc/passwd", "/etc/passwd", "missing.txt"):
        refused = await call(client, "download_file", session_id=sid, path=bad)
        assert refused.is_error and texts(refused)
    wrong = await call(client, "upload_file", session_id=sid, path="x", content="not base64!", encoding="base64")
    assert wrong.is_error and "base64" in texts(wrong)
    typo = await call(client, "run_cell", session=sid, code="1")
    assert typo.is_error and "invalid arguments" in texts(typo)

    await ok(client, "close_session", session_id=sid)
    gone = await call(client, "run_cell", session_id=sid, code="1")
    assert gone.is_error and "no session" in texts(gone)


# ---- streamable HTTP ----------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_http_tools(mcp_url: str, mode: str) -> None:
    async def main() -> None:
        async with Client(f"{mcp_url}/mcp", mode=mode) as client:
            await exercise(client)

    asyncio.run(main())


def test_http_sessions_close_with_their_mcp_session(mcp_url: str) -> None:
    """The handshake era has MCP sessions: deleting one closes the sandlot sessions it opened."""
    def open_sessions() -> set[str]:
        return {s["id"] for s in httpx.get(f"{mcp_url}/v1/sessions").json()["sessions"]}

    async def main() -> str:
        async with Client(f"{mcp_url}/mcp", mode="legacy") as client:
            created = await ok(client, "create_session")
            assert created.structured_content is not None
            sid: str = created.structured_content["id"]
            assert sid in open_sessions()  # the same key's sessions, whichever door they came in by
        return sid

    sid = asyncio.run(main())
    deadline = time.monotonic() + 10
    while sid in open_sessions():
        assert time.monotonic() < deadline, "the session outlived its MCP session"
        time.sleep(0.05)


def test_http_needs_the_api_key(auth_server_url: str) -> None:
    for auth in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": API_KEY}):
        refused = httpx.post(f"{auth_server_url}/mcp", json=INITIALIZE, headers={**ACCEPT, **auth})
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "unauthorized"
    accepted = httpx.post(f"{auth_server_url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {API_KEY}"})
    assert accepted.status_code == 200
    # An MCP session is usable only with the key that opened it.
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    session = {**ACCEPT, "Mcp-Session-Id": accepted.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
    assert httpx.post(f"{auth_server_url}/mcp", json=listing, headers={**session, "Authorization": "Bearer second-key-abcdef"}
                      ).status_code == 404
    assert httpx.post(f"{auth_server_url}/mcp", json=listing, headers={**session, "Authorization": f"Bearer {API_KEY}"}
                      ).status_code == 200
    assert httpx.delete(f"{auth_server_url}/mcp", headers={**session, "Authorization": f"Bearer {API_KEY}"}).status_code < 300

    async def main() -> None:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer " + API_KEY}, timeout=httpx2.Timeout(30, read=300)) as mine, \
                httpx2.AsyncClient(headers={"Authorization": "Bearer second-key-abcdef"}, timeout=30) as theirs:
            async with Client(streamable_http_client(f"{auth_server_url}/mcp", http_client=mine)) as client:
                assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
                assert texts(await ok(client, "run_python", code="1 + 1")) == "Out[1]: 2"
                created = await ok(client, "create_session")
                assert created.structured_content is not None
                sid = created.structured_content["id"]
                async with Client(streamable_http_client(f"{auth_server_url}/mcp", http_client=theirs)) as other:
                    stolen = await call(other, "run_cell", session_id=sid, code="1")
                    assert stolen.is_error and "no session" in texts(stolen)
                await ok(client, "close_session", session_id=sid)

    asyncio.run(main())


def test_http_on_loopback_answers_only_loopback_names(mcp_url: str) -> None:
    """DNS rebinding: a web page whose name resolves to 127.0.0.1 must not reach a keyless /mcp."""
    port = mcp_url.rsplit(":", 1)[1]
    assert httpx.post(f"{mcp_url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Host": f"evil.example:{port}"}).status_code == 421
    assert httpx.post(f"{mcp_url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Origin": "http://evil.example"}).status_code == 403
    assert httpx.post(f"{mcp_url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Host": f"localhost:{port}"}).status_code == 200


def test_without_the_mcp_package_the_endpoint_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandlot.mcp

    monkeypatch.setattr(sandlot.mcp, "available", lambda: False)
    app = FastAPI()
    endpoint = sandlot.mcp.http_endpoint(state=None)  # type: ignore[arg-type]  # not needed without the package
    endpoint.mount(app)
    with TestClient(app) as http:
        answer = http.post("/mcp", json=INITIALIZE)
    assert answer.status_code == 404 and "pip install 'sandlot[mcp]'" in answer.json()["error"]["message"]
    with pytest.raises(SetupError, match="pip install"):
        sandlot.mcp.run_stdio(EngineConfig())


# ---- stdio ----------------------------------------------------------------------------

def dead_leftovers() -> list[str]:
    """Mounts, cgroups and state directories of engines that are gone (the test servers of
    this process are alive, so their sandbox processes are not counted here)."""
    return [item for item in leftovers() if not item.startswith("process")]


@pytest.mark.parametrize("mode", MODES)
def test_stdio_tools(mode: str) -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        async def main() -> None:
            # The client starts servers with a minimal environment; keep PYTHONPATH, so that the sandlot
            # under test is the one started (not another one installed on the machine).
            env = {**get_default_environment(), **({"PYTHONPATH": path} if (path := os.environ.get("PYTHONPATH")) else {})}
            server = StdioServerParameters(command=STDIO[0], args=STDIO[1:], env=env)
            async with Client(stdio_client(server, errlog=errlog), mode=mode) as client:
                await exercise(client)
                created = await ok(client, "create_session")  # left open: it goes with the client
                assert created.structured_content is not None

        asyncio.run(main())
        errlog.seek(0)
        log = errlog.read()
    assert "serving MCP on stdio" in log, log
    assert "the client disconnected; stopped" in log, log  # stopped by itself, before the client's SIGTERM
    assert dead_leftovers() == []


def test_stdio_cleans_up_on_sigterm() -> None:
    """A client that kills the server instead of closing its stdin: still nothing left behind."""
    server = subprocess.Popen([*STDIO[:4], "--preload", "", "--pool-size", "1"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdin is not None and server.stdout is not None

        def ask(message_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}) + "\n")
            server.stdin.flush()
            reply: dict[str, Any] = json.loads(server.stdout.readline())  # stdout holds nothing but messages
            assert reply["id"] == message_id, reply
            return reply

        ask(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}})
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        created = ask(2, "tools/call", {"name": "create_session", "arguments": {}})["result"]
        sid = created["structuredContent"]["id"]
        ran = ask(3, "tools/call", {"name": "run_cell", "arguments": {"session_id": sid, "code": "x = 1\nx + 1"}})["result"]
        assert ran["content"] == [{"type": "text", "text": "Out[1]: 2"}] and ran["isError"] is False
        server.send_signal(signal.SIGTERM)  # stdin still open
        assert server.wait(15) == 0
        assert server.stdout.read() == ""
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for stream in (server.stdin, server.stdout, server.stderr):
            if stream is not None:
                stream.close()
    assert dead_leftovers() == []


def test_stdio_refuses_bad_options() -> None:
    done = subprocess.run([*STDIO[:4], "--pool-size", "-1"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith("sandlot: invalid setting engine.pool_size") and done.stderr.count("\n") == 1
