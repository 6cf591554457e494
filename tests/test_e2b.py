"""E2B's own SDKs, unmodified, against a real ``sandlot serve --e2b`` on a loopback port (docs/e2b.md).

The SDKs are the pinned ``e2b`` and ``e2b-code-interpreter`` from PyPI (the ``test`` extra); they are pointed at the
server by the environment a user would set (``E2B_API_URL``, ``E2B_SANDBOX_URL``, ``E2B_API_KEY``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import e2b
import httpx
import pytest
from e2b import CommandExitException, TimeoutException
from e2b_code_interpreter import Sandbox

from sandlot.testing.origin import Origin
from sandlot.testing.serving import ServerProcess

KEY = "e2b_" + "5a" * 20  # sandlot's key, in the form E2B's SDK checks (e2b_ + hex)
OTHER_KEY = "e2b_" + "c3" * 20
PLAIN_KEY = "sandlot-plain-key-0123"  # not E2B's form: the tested SDK versions send it as it is


@contextlib.contextmanager
def e2b_server(*extra: str, env_extra: dict[str, str] | None = None) -> Iterator[str]:
    env = {"SANDLOT_API_KEYS": f"{KEY},{OTHER_KEY},{PLAIN_KEY}", "SANDLOT_POOL_SIZE": "2",
           "SANDLOT_LOG_LEVEL": "warning", **(env_extra or {})}
    server = ServerProcess("--e2b", *extra, env=env, timeout=90)
    server.start()
    try:
        yield server.url
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with e2b_server() as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("E2B_API_URL", url)
        patch.setenv("E2B_SANDBOX_URL", url)
        patch.setenv("E2B_API_KEY", KEY)
        patch.delenv("E2B_DEBUG", raising=False)
        yield url


@pytest.fixture(scope="module")
def sbx(server: str) -> Iterator[Sandbox]:
    sandbox = Sandbox.create()
    try:
        yield sandbox
    finally:
        sandbox.kill()


# ---- the code interpreter -------------------------------------------------------------

def test_run_code_streams_stdout_and_results_to_callbacks(sbx: Sandbox) -> None:
    printed: list[Any] = []
    results: list[Any] = []
    execution = sbx.run_code("print('hello from e2b')\n6 * 7", on_stdout=printed.append, on_result=results.append)
    assert execution.error is None
    assert execution.logs.stdout == ["hello from e2b\n"]
    assert [m.line for m in printed] == ["hello from e2b\n"] and not printed[0].error
    assert abs(printed[0].timestamp / 1e9 - time.time()) < 60  # nanoseconds since the epoch, as the SDK documents
    assert execution.text == "42" and execution.results[0].is_main_result
    assert [r.text for r in results] == ["42"]
    assert execution.execution_count is not None and execution.execution_count >= 1


def test_state_carries_across_calls(sbx: Sandbox) -> None:
    sbx.run_code("counter = 10")
    sbx.run_code("counter += 5")
    assert sbx.run_code("counter").text == "15"


def test_an_exception_is_execution_error(sbx: Sandbox) -> None:
    stderr: list[Any] = []
    execution = sbx.run_code("import sys\nprint('oops', file=sys.stderr)\n{}['missing']", on_stderr=stderr.append)
    assert execution.error is not None
    assert execution.error.name == "KeyError" and execution.error.value == "'missing'"
    assert "KeyError" in execution.error.traceback
    assert execution.logs.stderr == ["oops\n"] and stderr[0].error


def test_a_matplotlib_figure_is_result_png(sbx: Sandbox) -> None:
    execution = sbx.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
    assert execution.error is None
    pngs = [r.png for r in execution.results if r.png]
    assert len(pngs) == 1 and base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert not execution.results[0].is_main_result  # a display, not the cell's value


def test_a_dataframe_is_result_html(sbx: Sandbox) -> None:
    execution = sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    assert execution.error is None
    result = execution.results[0]
    assert result.is_main_result and result.html is not None and "<table" in result.html and result.text is not None
    assert "html" in list(result.formats())


def test_contexts_have_their_own_names(sbx: Sandbox) -> None:
    context = sbx.create_code_context()
    try:
        sbx.run_code("only_here = 'context'", context=context)
        assert sbx.run_code("only_here", context=context).text == "'context'"
        assert sbx.run_code("only_here").error.name == "NameError"  # type: ignore[union-attr]
        assert context.id in [c.id for c in sbx.list_code_contexts()]
        sbx.restart_code_context(context)
        assert sbx.run_code("only_here", context=context).error.name == "NameError"  # type: ignore[union-attr]
    finally:
        sbx.remove_code_context(context)
    assert context.id not in [c.id for c in sbx.list_code_contexts()]


def test_a_run_code_timeout_interrupts_the_cell_and_the_sandbox_goes_on(sbx: Sandbox) -> None:
    with pytest.raises(TimeoutException):
        sbx.run_code("import time\nwhile True: time.sleep(0.05)", timeout=1)
    deadline = time.monotonic() + 30
    while True:  # the interrupt reaches the cell; the next cell runs once it has ended
        execution = sbx.run_code("'still here'", timeout=30)
        if execution.text == "'still here'":
            break
        assert time.monotonic() < deadline


def test_the_execute_stream_is_e2b_ndjson(server: str, sbx: Sandbox) -> None:
    headers = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999", "X-Access-Token": sbx._envd_access_token}
    with httpx.stream("POST", server + "/execute", json={"code": "print('a')\ndisplay(1)\n2"}, headers=headers,
                      timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
        events = [json.loads(line) for line in response.iter_lines() if line]
    kinds = [e["type"] for e in events if e["type"] != "keepalive"]
    assert kinds == ["stdout", "result", "result", "number_of_executions", "end_of_execution"]
    assert events[1] == {"type": "result", "is_main_result": False, "text": "1"}
    assert events[2] == {"type": "result", "is_main_result": True, "text": "2"}


# ---- files ---------------------------------------------------------------------------

def test_files_write_read_list_remove(sbx: Sandbox) -> None:
    info = sbx.files.write("/home/user/notes/hello.txt", "hi there")
    assert info.path == "/home/user/notes/hello.txt"
    assert sbx.files.read("/home/user/notes/hello.txt") == "hi there"
    assert sbx.files.read("notes/hello.txt", format="bytes") == b"hi there"  # relative to /home/user
    assert sbx.run_code("open('/home/user/notes/hello.txt').read()").text == "'hi there'"
    entries = {e.name: e for e in sbx.files.list("/home/user/notes")}
    assert entries["hello.txt"].size == 8 and entries["hello.txt"].type is not None
    assert sbx.files.exists("/home/user/notes/hello.txt")
    assert sbx.files.get_info("/home/user/notes").type.value == "dir"  # type: ignore[union-attr]
    sbx.files.rename("/home/user/notes/hello.txt", "/home/user/notes/moved.txt")
    assert sbx.files.read("/home/user/notes/moved.txt") == "hi there"
    sbx.files.remove("/home/user/notes/moved.txt")
    assert not sbx.files.exists("/home/user/notes/moved.txt")
    assert sbx.files.make_dir("/home/user/made") and not sbx.files.make_dir("/home/user/made")
    sbx.files.remove("/home/user/made")


def test_binary_files_and_multi_file_writes(sbx: Sandbox) -> None:
    blob = bytes(range(256)) * 64
    sbx.files.write_files([{"path": "/home/user/a.bin", "data": blob}, {"path": "/home/user/b.txt", "data": "b"}])
    assert sbx.files.read("/home/user/a.bin", format="bytes") == blob
    assert sbx.run_code("len(open('b.txt').read())").text == "1"
    sbx.files.write("/home/user/zipped.txt", "squeezed " * 1000, gzip=True)  # an octet-stream upload, gzip-encoded
    assert sbx.files.read("zipped.txt") == "squeezed " * 1000


def test_files_outside_the_workspace_are_refused(sbx: Sandbox) -> None:
    with pytest.raises(e2b.InvalidArgumentException):
        sbx.files.write("/etc/evil", "x")
    with pytest.raises(e2b.InvalidArgumentException):
        sbx.files.read("/home/user/../../etc/passwd")
    # A symlink the sandbox made is never followed by the host, which reads and writes the workspace itself.
    sbx.commands.run("ln -sf /etc/shadow /home/user/shadow-link && ln -sfn / /home/user/root-link")
    for path in ("/home/user/shadow-link", "/home/user/root-link/etc/passwd"):
        with pytest.raises((e2b.InvalidArgumentException, e2b.NotFoundException)):
            sbx.files.read(path)
    with pytest.raises((e2b.InvalidArgumentException, e2b.NotFoundException)):
        sbx.files.write("/home/user/root-link/tmp/planted", "x")


# ---- commands ------------------------------------------------------------------------

def test_commands_run_with_exit_codes(sbx: Sandbox) -> None:
    sbx.files.write("/home/user/listed.txt", "x")
    result = sbx.commands.run("echo hi && ls")
    assert result.exit_code == 0 and result.stdout.startswith("hi\n") and "listed.txt" in result.stdout
    with pytest.raises(CommandExitException) as failed:
        sbx.commands.run("echo to-stderr >&2; exit 3")
    assert failed.value.exit_code == 3 and failed.value.stderr == "to-stderr\n"
    assert sbx.commands.run("pwd").stdout.strip() in ("/workspace", "/home/user")
    assert sbx.commands.run("echo $GREETING", envs={"GREETING": "hey"}).stdout == "hey\n"
    assert sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"


def test_streamed_output_and_a_background_command_with_stdin(sbx: Sandbox) -> None:
    lines: list[str] = []
    sbx.commands.run("for i in 1 2 3; do echo line$i; done", on_stdout=lines.append)
    assert "".join(lines) == "line1\nline2\nline3\n"
    handle = sbx.commands.run("read name; echo hello $name", background=True, stdin=True)
    assert handle.pid in [p.pid for p in sbx.commands.list()]
    sbx.commands.send_stdin(handle.pid, "sandlot\n")
    assert handle.wait().stdout == "hello sandlot\n"


def test_a_command_is_killed_on_its_timeout(sbx: Sandbox) -> None:
    with pytest.raises(TimeoutException):
        sbx.commands.run("sleep 30 && touch /home/user/should-not-exist", timeout=1)
    deadline = time.monotonic() + 10
    while sbx.commands.list():
        assert time.monotonic() < deadline, "the timed-out command is still running"
        time.sleep(0.1)
    handle = sbx.commands.run("sleep 30", background=True)
    assert sbx.commands.kill(handle.pid)
    with pytest.raises(CommandExitException):
        handle.wait()
    assert not sbx.files.exists("/home/user/should-not-exist")


def test_shell_hostile_cases_through_e2b(sbx: Sandbox) -> None:
    for target in ("/usr/evil", "/etc/passwd", "/evil", "/home/evil"):
        with pytest.raises(CommandExitException):
            sbx.commands.run(f"echo x > {target}")
    processes = sbx.commands.run("ls /proc | grep -E '^[0-9]+$' | wc -l").stdout
    assert int(processes) < 10  # the sandbox's own pid namespace: a handful, not the host's
    assert "SANDLOT_API_KEYS" not in sbx.commands.run("cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'").stdout
    with contextlib.suppress(CommandExitException, TimeoutException):  # it ends by its timeout or the pids limit
        sbx.commands.run(":(){ :|:& };:; sleep 3", timeout=5)
    assert sbx.commands.run("echo alive").stdout == "alive\n"  # what it forked went with it: the sandbox goes on
    assert sbx.run_code("'interpreter alive'").text == "'interpreter alive'"


def test_pty_is_a_clear_not_implemented(sbx: Sandbox) -> None:
    from e2b.sandbox.commands.command_handle import PtySize

    with pytest.raises(e2b.SandboxException, match="not supported"):
        sbx.pty.create(PtySize(rows=24, cols=80))


# ---- the control plane ---------------------------------------------------------------

def test_metadata_listing_info_timeout_and_connect(server: str) -> None:
    first = Sandbox.create(metadata={"suite": "e2b", "n": "1"}, timeout=120)
    second = Sandbox.create(metadata={"suite": "e2b", "n": "2"})
    try:
        info = first.get_info()
        assert info.sandbox_id == first.sandbox_id and info.metadata == {"suite": "e2b", "n": "1"}
        listed = Sandbox.list(query=e2b.SandboxQuery(metadata={"suite": "e2b"}), limit=1)
        page = listed.next_items()
        assert len(page) == 1 and listed.has_next
        rest = listed.next_items()
        assert {s.sandbox_id for s in page + rest} == {first.sandbox_id, second.sandbox_id}
        only = Sandbox.list(query=e2b.SandboxQuery(metadata={"n": "2"})).next_items()
        assert [s.sandbox_id for s in only] == [second.sandbox_id]
        first.set_timeout(600)
        assert first.get_info().end_at > info.end_at
        again = Sandbox.connect(first.sandbox_id)
        assert again.run_code("'connected'").text == "'connected'"
    finally:
        first.kill()
        second.kill()


def test_kill_and_is_running(server: str) -> None:
    sandbox = Sandbox.create()
    assert sandbox.is_running()
    assert httpx.get(f"{server}/v1/sessions/{sandbox.sandbox_id}",
                     headers={"Authorization": f"Bearer {KEY}"}).status_code == 200  # an E2B sandbox is a session
    sandbox.kill()
    assert not sandbox.is_running()
    assert httpx.get(f"{server}/v1/sessions/{sandbox.sandbox_id}",
                     headers={"Authorization": f"Bearer {KEY}"}).status_code == 404


def test_a_sandbox_dies_at_its_timeout(server: str) -> None:
    sandbox = Sandbox.create(timeout=1)
    deadline = time.monotonic() + 15
    while sandbox.is_running():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_key_of_any_form_works(server: str) -> None:
    sandbox = Sandbox.create(api_key=PLAIN_KEY)
    try:
        assert sandbox.run_code("'plain'").text == "'plain'"
    finally:
        sandbox.kill()


def test_keys_and_tokens_are_checked(server: str, sbx: Sandbox) -> None:
    with pytest.raises(e2b.AuthenticationException):
        Sandbox.create(api_key="e2b_" + "00" * 20)
    with pytest.raises(e2b.NotFoundException):
        Sandbox.connect(sbx.sandbox_id, api_key=OTHER_KEY)  # another key's sandbox is not found
    daemon = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983"}
    assert httpx.get(f"{server}/files", params={"path": "/home/user/x"}, headers=daemon).status_code == 401
    wrong = {**daemon, "X-Access-Token": "nope"}
    assert httpx.get(f"{server}/files", params={"path": "/home/user/x"}, headers=wrong).status_code == 401
    interpreter = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999"}
    assert httpx.post(f"{server}/execute", json={"code": "1"}, headers=interpreter).status_code == 401


@pytest.mark.parametrize("path", ["/sandboxes/x/pause", "/templates", "/volumes"])
def test_out_of_scope_is_501(server: str, path: str) -> None:
    response = httpx.post(server + path, headers={"X-API-KEY": KEY}, json={})
    assert response.status_code == 501 and "not supported" in response.json()["message"]


def test_custom_templates_are_refused(server: str) -> None:
    with pytest.raises(e2b.SandboxException, match="not available"):
        Sandbox.create(template="my-custom-template")


def test_without_e2b_the_routes_do_not_exist() -> None:
    with ServerProcess(env={"SANDLOT_POOL_SIZE": "1", "SANDLOT_LOG_LEVEL": "warning"}, timeout=90) as server:
        assert httpx.post(server.url + "/v2/sandboxes", json={}).status_code == 404


def test_import_sandlot_stays_free_of_e2b() -> None:
    code = ("import sandlot, sandlot.server.app, sys; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('e2b', 'connectrpc') or m.startswith('sandlot.e2b')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2b-js")


def test_the_javascript_sdk(server: str) -> None:
    """@e2b/code-interpreter from npm (tests/e2b-js, installed with `npm ci`) under node's test runner."""
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@e2b", "code-interpreter")):
        if os.environ.get("CI"):
            pytest.fail("tests/e2b-js has no node_modules: run `npm ci --prefix tests/e2b-js`")
        pytest.skip("tests/e2b-js has no node_modules: run `npm ci --prefix tests/e2b-js`")
    env = {**os.environ, "E2B_API_URL": server, "E2B_SANDBOX_URL": server, "E2B_API_KEY": KEY}
    done = subprocess.run(["node", "--test"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# pass 1" in done.stdout and "# fail 0" in done.stdout


def test_the_async_sdk(server: str) -> None:
    from e2b_code_interpreter import AsyncSandbox

    async def flow() -> None:
        sandbox = await AsyncSandbox.create()
        try:
            printed: list[Any] = []
            execution = await sandbox.run_code("print('async')\n3 * 3", on_stdout=printed.append)
            assert execution.text == "9" and [m.line for m in printed] == ["async\n"]
            await sandbox.files.write("/home/user/async.txt", "from asyncio")
            assert await sandbox.files.read("/home/user/async.txt") == "from asyncio"
            assert (await sandbox.commands.run("cat async.txt")).stdout == "from asyncio"
        finally:
            await sandbox.kill()
        assert not await sandbox.is_running()

    asyncio.run(flow())


def test_network_options_are_sandlots_egress_honoured_or_refused(server: str, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """E2B's `allow_internet_access` and `network` on Sandbox.create, against a server whose operator allows one
    local origin (docs/e2b.md, "Network"); the module's server allows no egress at all."""
    with pytest.raises(e2b.SandboxException, match="operator allows no egress"):
        Sandbox.create(allow_internet_access=True)
    with Origin() as origin, Origin() as other:
        allowed = f"127.0.0.1:{origin.port}"
        fetch = (f"import urllib.request as u\nout = []\nfor p in ({origin.port}, {other.port}):\n"
                 f"    try: out.append(u.urlopen(f'http://127.0.0.1:{{p}}/e2b', timeout=10).status)\n"
                 f"    except OSError as e: out.append(getattr(e, 'code', None) or type(getattr(e, 'reason', e)).__name__)\n"
                 f"out")
        with e2b_server("--egress-allow", allowed, env_extra={"SANDLOT_CACHE_DIR": str(tmp_path),
                                                              "SANDLOT_EGRESS_WHEEL_CACHE": "false"}) as url:
            for name in ("E2B_API_URL", "E2B_SANDBOX_URL"):
                monkeypatch.setenv(name, url)
            monkeypatch.setenv("E2B_API_KEY", KEY)
            listed = Sandbox.create(network={"allow_out": [allowed], "deny_out": [e2b.ALL_TRAFFIC]})
            try:
                assert listed.run_code(fetch).text == "[200, 403]"  # the other port is not on the list
                assert httpx.get(f"{url}/v1/sessions/{listed.sandbox_id}",
                                 headers={"Authorization": f"Bearer {KEY}"}).json()["network"] == \
                    {"allow": [allowed], "dropped": []}
                command = listed.commands.run(f"python3 -c \"import urllib.request as u; "
                                              f"print(u.urlopen('http://127.0.0.1:{origin.port}/cmd').read())\"")
                assert command.stdout == "b'ok'\n"
            finally:
                listed.kill()
            everything = Sandbox.create(allow_internet_access=True)
            try:
                assert everything.run_code(fetch).text == "[200, 403]"
            finally:
                everything.kill()
            for closed in (Sandbox.create(), Sandbox.create(allow_internet_access=False),
                           Sandbox.create(allow_internet_access=True, network={"deny_out": [e2b.ALL_TRAFFIC]})):
                try:  # no network: no proxy and no TCP sockets
                    assert closed.run_code(fetch).text == "['PermissionError', 'PermissionError']"
                finally:
                    closed.kill()
            assert len([seen for seen in other.requests if seen.path == "/e2b"]) == 0
            with pytest.raises(e2b.SandboxException, match="beyond what this server allows"):
                Sandbox.create(network={"allow_out": [f"127.0.0.1:{other.port}"]})
            with pytest.raises(e2b.SandboxException, match="deny rules other than all traffic"):
                Sandbox.create(network={"deny_out": ["10.0.0.0/8"]})
            with pytest.raises(e2b.SandboxException, match="attaches credentials"):
                Sandbox.create(network={"allow_out": [allowed],
                                        "rules": {allowed: [{"transform": {"headers": {"X-Key": "v"}}}]}})
            update = httpx.put(f"{url}/sandboxes/x/network", headers={"X-API-KEY": KEY}, json={})
            assert update.status_code == 501


def test_degraded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without namespaces (Landlock): no /home/user alias in the sandbox, but the SDK's own calls work."""
    with e2b_server("--isolation", "landlock", "--preload", "") as url:
        monkeypatch.setenv("E2B_API_URL", url)
        monkeypatch.setenv("E2B_SANDBOX_URL", url)
        monkeypatch.setenv("E2B_API_KEY", KEY)
        sandbox = Sandbox.create()
        try:
            assert sandbox.run_code("6 * 7").text == "42"
            sandbox.files.write("/home/user/d/degraded.txt", "landlock")
            assert sandbox.files.read("d/degraded.txt") == "landlock"
            assert [e.name for e in sandbox.files.list("/home/user/d")] == ["degraded.txt"]
            assert sandbox.commands.run("cat d/degraded.txt").stdout == "landlock"
            with pytest.raises(CommandExitException):
                sandbox.commands.run("echo x > /usr/evil")
        finally:
            sandbox.kill()


def test_without_the_extra_e2b_is_a_setup_error() -> None:
    code = ("import sys; sys.modules['connectrpc'] = None  # as if the e2b extra were not installed\n"
            "from sandlot import SetupError\nfrom sandlot.server.app import create_app\n"
            "from sandlot.server.config import ServerConfig\n"
            "try:\n    create_app(ServerConfig(e2b=True))\nexcept SetupError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'sandlot[e2b]'" in out


# ---- the reviewer's attacks (raw httpx: the SDKs cannot send them) ---------------------

def _daemon(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [("E2b-Sandbox-Id", sandbox.sandbox_id), ("E2b-Sandbox-Port", "49983"),
            ("X-Access-Token", sandbox._envd_access_token or "")]


def test_a_repeated_sandbox_header_cannot_reach_another_sandbox(server: str, sbx: Sandbox) -> None:
    victim = Sandbox.create(api_key=OTHER_KEY)
    try:
        victim.files.write("/home/user/victim-secret.txt", "secret")
        mine = _daemon(sbx)
        for name, value in (("E2b-Sandbox-Id", victim.sandbox_id), ("E2b-Sandbox-Port", "49983"),
                            ("X-Access-Token", "x")):
            headers = [(name, value), *mine, ("Content-Type", "application/json")]
            listed = httpx.post(f"{server}/filesystem.Filesystem/ListDir", json={"path": "/home/user"},
                                headers=headers)
            assert listed.status_code == 400, (name, listed.text)
            assert "victim-secret" not in listed.text
        own = httpx.post(f"{server}/filesystem.Filesystem/ListDir", json={"path": "/home/user"},
                         headers=[*mine, ("Content-Type", "application/json")])
        assert own.status_code == 200 and "victim-secret" not in own.text
    finally:
        victim.kill()


def test_context_calls_need_a_token_and_are_capped(server: str, sbx: Sandbox) -> None:
    from e2b_code_interpreter.constants import JUPYTER_PORT

    bare = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": str(JUPYTER_PORT)}
    assert sbx.traffic_access_token  # handed out at create, as E2B's API does
    assert httpx.get(f"{server}/contexts", headers=bare).status_code == 401
    assert httpx.post(f"{server}/contexts", json={}, headers=bare).status_code == 401
    wrong = {**bare, "E2B-Traffic-Access-Token": "nope"}
    assert httpx.get(f"{server}/contexts", headers=wrong).status_code == 401
    default = {"id": "default"}
    assert httpx.delete(f"{server}/contexts/{default['id']}", headers=bare).status_code == 401
    traffic = {**bare, "E2B-Traffic-Access-Token": sbx.traffic_access_token}
    assert httpx.get(f"{server}/contexts", headers=traffic).status_code == 200
    made = []
    try:
        while True:
            response = httpx.post(f"{server}/contexts", json={}, headers=traffic, timeout=60)
            if response.status_code != 200:
                break
            made.append(response.json()["id"])
            assert len(made) < 64, "contexts are not capped"
        assert response.status_code == 429 and len(made) == 15  # 16 with the default one
    finally:
        for context_id in made:
            httpx.delete(f"{server}/contexts/{context_id}", headers=traffic, timeout=60)


def test_a_context_that_cannot_reach_its_cwd_is_not_left_behind(server: str, sbx: Sandbox) -> None:
    before = {c.id for c in sbx.list_code_contexts()}
    with pytest.raises(e2b.SandboxException):  # a context is a session of its own: only a name too long fails there
        sbx.create_code_context(cwd="/home/user/" + "x" * 300)
    assert {c.id for c in sbx.list_code_contexts()} == before


def test_files_are_capped_at_the_servers_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    limit = 64 * 1024
    with e2b_server(env_extra={"SANDLOT_MAX_FILE_BYTES": str(limit)}) as url:
        monkeypatch.setenv("E2B_API_URL", url)
        monkeypatch.setenv("E2B_SANDBOX_URL", url)
        monkeypatch.setenv("E2B_API_KEY", KEY)
        sandbox = Sandbox.create()
        try:
            daemon = dict(_daemon(sandbox))
            files = f"{url}/files"
            fits = httpx.post(files, params={"path": "/home/user/fits"}, content=b"x" * limit,
                              headers={**daemon, "Content-Type": "application/octet-stream"})
            assert fits.status_code == 200
            over = httpx.post(files, params={"path": "/home/user/over"}, content=b"x" * (limit + 1),
                              headers={**daemon, "Content-Type": "application/octet-stream"})
            assert over.status_code == 413
            bomb = httpx.post(files, params={"path": "/home/user/bomb"}, content=gzip.compress(b"\0" * (4 * limit)),
                              headers={**daemon, "Content-Type": "application/octet-stream",
                                       "Content-Encoding": "gzip"})
            assert bomb.status_code == 413
            multipart = httpx.post(files, params={"path": "/home/user/parted"}, headers=daemon,
                                   files={"file": ("parted", b"y" * (limit + 1))})
            assert multipart.status_code in (400, 413)
            assert not sandbox.files.exists("/home/user/over") and not sandbox.files.exists("/home/user/parted")
            sandbox.commands.run(f"head -c {limit + 1} /dev/zero > /home/user/big")
            assert httpx.get(files, params={"path": "/home/user/big"}, headers=daemon).status_code == 413
            assert httpx.get(files, params={"path": "/home/user/fits"}, headers=daemon).content == b"x" * limit
        finally:
            sandbox.kill()


def test_a_disconnected_background_command_keeps_running(sbx: Sandbox) -> None:
    handle = sbx.commands.run("sleep 30", background=True)
    try:
        handle.disconnect()  # E2B: "the command keeps running"
        time.sleep(3)  # the server hears the stream is gone at its next keepalive (1 s)
        assert handle.pid in [p.pid for p in sbx.commands.list()]
    finally:
        sbx.commands.kill(handle.pid)


def test_timeouts_are_finite_and_capped(server: str, sbx: Sandbox) -> None:
    api = {"X-API-KEY": KEY, "Content-Type": "application/json"}
    for raw in ('{"timeout": NaN}', '{"timeout": Infinity}', '{"timeout": -Infinity}', '{"timeout": 1e300}',
                '{"timeout": 0}'):
        assert httpx.post(f"{server}/sandboxes", content=raw, headers=api).status_code == 400, raw
        assert httpx.post(f"{server}/sandboxes/{sbx.sandbox_id}/timeout", content=raw,
                          headers=api).status_code == 400, raw
        assert httpx.post(f"{server}/sandboxes/{sbx.sandbox_id}/connect", content=raw,
                          headers=api).status_code == 400, raw
    assert sbx.is_running()


def test_environments_follow_sandlots_rule(server: str, sbx: Sandbox) -> None:
    api = {"X-API-KEY": KEY}
    for env in ({"A=B": "x"}, {"": "x"}, {"X": "a\0b"}, {"X\0": "b"}, {"X": "\ud800"}):
        response = httpx.post(f"{server}/sandboxes", content=json.dumps({"envVars": env}),
                              headers={**api, "Content-Type": "application/json"})
        assert response.status_code == 400, (env, response.text)
        if "\ud800" not in env.values():  # the SDK cannot send a lone surrogate itself
            with pytest.raises(e2b.InvalidArgumentException):
                sbx.commands.run("true", envs=env)
    assert sbx.commands.run("echo fine").stdout == "fine\n"


def test_metrics_is_501_and_metadata_round_trips(server: str) -> None:
    response = httpx.get(f"{server}/sandboxes/metrics", headers={"X-API-KEY": KEY})
    assert response.status_code == 501 and "not supported" in response.json()["message"]
    sandbox = Sandbox.create(metadata={"pct": "%41 & b=c"})
    try:
        found = Sandbox.list(query=e2b.SandboxQuery(metadata={"pct": "%41 & b=c"})).next_items()
        assert [s.sandbox_id for s in found] == [sandbox.sandbox_id]
    finally:
        sandbox.kill()


def test_runs_through_e2b_count_against_the_keys_run_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    with e2b_server(env_extra={"SANDLOT_MAX_RUNS_PER_KEY": "1"}) as url:
        monkeypatch.setenv("E2B_API_URL", url)
        monkeypatch.setenv("E2B_SANDBOX_URL", url)
        monkeypatch.setenv("E2B_API_KEY", KEY)
        sandbox = Sandbox.create()
        try:
            headers = {"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": "49999",
                       "X-Access-Token": sandbox._envd_access_token or ""}
            with httpx.stream("POST", url + "/execute", json={"code": "import time; time.sleep(4)"}, headers=headers,
                              timeout=60) as running:
                assert running.status_code == 200
                time.sleep(0.5)  # the cell holds the key's one run slot now
                assert httpx.post(url + "/execute", json={"code": "1"}, headers=headers).status_code == 429
                with pytest.raises(e2b.SandboxException):
                    sandbox.commands.run("echo not now")
                assert httpx.post(url + "/v1/sessions/" + sandbox.sandbox_id + "/commands", json={"cmd": "true"},
                                  headers={"Authorization": f"Bearer {KEY}"}).status_code == 429
                list(running.iter_lines())
            assert sandbox.commands.run("echo now").stdout == "now\n"  # released with the stream
            assert sandbox.run_code("2").text == "2"
        finally:
            sandbox.kill()


def test_a_listing_over_the_output_limit_is_an_error_not_a_partial_answer(sbx: Sandbox) -> None:
    made = sbx.run_code("import os\nos.makedirs('many', exist_ok=True)\n"
                        "for i in range(6000): open(f'many/{i:05d}' + 'n' * 180, 'w').close()\nlen(os.listdir('many'))")
    assert made.text == "6000"
    try:
        with pytest.raises(e2b.SandboxException, match="output limit"):
            sbx.files.list("/home/user/many")
    finally:
        sbx.commands.run("rm -rf /home/user/many")


def test_a_client_that_never_reads_a_flood_loses_its_stream_not_the_servers_memory(sbx: Sandbox) -> None:
    # The sync SDK reads a background command's stream only in wait(): until then nothing is read at all.
    handle = sbx.commands.run("head -c 96000000 /dev/zero | tr '\\0' x; echo done > /home/user/flooded", background=True)
    try:
        deadline = time.monotonic() + 120
        while not sbx.files.exists("/home/user/flooded"):  # the command goes on although its client fell behind
            assert time.monotonic() < deadline, "the flooding command did not finish"
            time.sleep(0.5)
        with pytest.raises(e2b.SandboxException, match="behind"):
            handle.wait()
    finally:
        with contextlib.suppress(Exception):
            sbx.commands.kill(handle.pid)
        sbx.files.remove("/home/user/flooded")
