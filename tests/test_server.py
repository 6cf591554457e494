"""The HTTP API, black-box: a real server on a loopback port, a real client (httpx), API.md as the oracle.

Every route, every documented error status with the contract's error body, streaming and
its cancellation on disconnect, batch order and parallelism, the files API's confinement,
and the order of concurrent calls to one session.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nbformat
import pytest
from conftest import API_KEY, TIGHT_LIMITS, running_server

from sandlot import EngineConfig, Sandlot
from sandlot.server import ServerConfig

OTHER_KEY = "second-key-abcdef"
JSON = {"Content-Type": "application/json"}
RESULT_KEYS = {"id", "status", "stdout", "stderr", "outputs", "error", "execution_count", "duration_ms", "usage",
               "truncated"}
MAX_FILE = 2048
MAX_REQUEST = 4096


# ---- helpers -------------------------------------------------------------------------

def assert_error(response: httpx.Response, status: int, error_type: str) -> str:
    """The contract's error body, exactly: {"error": {"type", "message"}}; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["message", "type"]
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


def assert_result(body: dict[str, Any], status: str = "ok") -> dict[str, Any]:
    """An execution result as API.md describes it."""
    assert RESULT_KEYS <= set(body), body
    assert body["status"] == status, body
    assert body["id"].startswith("exe_")
    assert isinstance(body["outputs"], list)
    assert set(body["usage"]) >= {"cpu_ms", "peak_memory_bytes"}
    assert body["duration_ms"] >= 0
    return body


def sse_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """Parse Server-Sent Events as they arrive: (event name, decoded JSON data)."""
    name: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].strip())
        elif line == "" and name is not None:
            yield name, json.loads("\n".join(data))
            name, data = None, []


def raw_request(base_url: str, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send ``target`` exactly as written (no client-side normalisation of ``..``)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request(method, target, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def read_notebook(text: str) -> Any:
    """Parse and validate an .ipynb as nbformat 4."""
    notebook = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    nbformat.validate(notebook)
    return notebook


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def metric_value(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ---- fixtures ------------------------------------------------------------------------

@pytest.fixture
def client(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as c:
        yield c


@pytest.fixture
def session(client: httpx.Client) -> Iterator[str]:
    created = client.post("/v1/sessions")
    assert created.status_code == 201, created.text
    session_id: str = created.json()["id"]
    yield session_id
    client.delete(f"/v1/sessions/{session_id}")


@pytest.fixture(scope="module")
def small_server_url() -> Iterator[str]:
    """A server of this module's own: small request and file limits, one warm sandbox, nothing preloaded."""
    config = ServerConfig(max_file_bytes=MAX_FILE, max_request_bytes=MAX_REQUEST, max_sessions_per_key=4,
                          engine=EngineConfig(preload=(), pool_size=1, limits=TIGHT_LIMITS))
    with running_server(config) as url:
        yield url


@pytest.fixture
def small(small_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_server_url, timeout=60) as c:
        yield c
        for listed in c.get("/v1/sessions").json()["sessions"]:
            c.delete(f"/v1/sessions/{listed['id']}")


@pytest.fixture
def authed(auth_server_url: str) -> Iterator[Callable[[str], httpx.Client]]:
    """Clients for the keyed server; every session they made is deleted afterwards (quotas are per key)."""
    clients: list[httpx.Client] = []

    def make(key: str) -> httpx.Client:
        c = httpx.Client(base_url=auth_server_url, timeout=60, headers={"Authorization": f"Bearer {key}"})
        clients.append(c)
        return c

    yield make
    for c in clients:
        for listed in c.get("/v1/sessions").json()["sessions"]:
            c.delete(f"/v1/sessions/{listed['id']}")
        c.close()


# ---- stateless execute ---------------------------------------------------------------

def test_execute_returns_a_full_result(client: httpx.Client) -> None:
    response = client.post("/v1/execute", json={"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7"})
    assert response.status_code == 200
    body = assert_result(response.json())
    assert (body["stdout"], body["stderr"], body["error"], body["execution_count"]) == ("out\n", "err\n", None, 1)
    assert body["outputs"][-1] == {"output_type": "execute_result", "execution_count": 1,
                                   "data": {"text/plain": "42"}, "metadata": {}}
    assert {"output_type": "stream", "name": "stdout", "text": "out\n"} in body["outputs"]


# Text a JSON encoder must escape or keep as UTF-8, a rich output and an error: the server writes the
# result's JSON straight from the model (server/responses.py), and it must be the engine's result exactly.
AWKWARD_TEXT = "caf\u00e9 \u2603 \U0001f600 \u2028 tab\t quote\" back\\ nul\x00 esc\x1b"
AWKWARD_CODE = f"import sys\nprint({AWKWARD_TEXT!r})\nprint('\u00fc', file=sys.stderr)\n{{'k\u00e9y': [1, 2.5, None, True, 1e-7]}}"
VOLATILE = ("id", "duration_ms", "usage")


def test_a_result_over_http_is_the_engines_result(client: httpx.Client, sl: Sandlot) -> None:
    for code in (AWKWARD_CODE, AWKWARD_CODE + "\nraise ValueError('na\u00efve \u2603')"):
        response = client.post("/v1/execute", json={"code": code})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        served = json.loads(response.content.decode("utf-8"))
        local = sl.execute(code).model_dump(mode="json")
        for key in VOLATILE:
            del served[key], local[key]
        assert served == local
        assert served["stdout"] == AWKWARD_TEXT + "\n"


def test_execute_places_files_and_env_and_keeps_no_state(client: httpx.Client) -> None:
    payload = bytes(range(256))
    response = client.post("/v1/execute", json={
        "code": "import os\nprint(open('data/blob.bin', 'rb').read() == bytes(range(256)), os.environ['GREETING'])\nx = 1",
        "files": [{"path": "data/blob.bin", "content": base64.b64encode(payload).decode()}],
        "env": {"GREETING": "hello"}, "timeout": 10})
    assert assert_result(response.json())["stdout"] == "True hello\n"
    again = client.post("/v1/execute", json={"code": "import os\nprint(os.path.exists('data/blob.bin'))\nx"}).json()
    assert_result(again, "error")
    assert again["stdout"] == "False\n"
    assert again["error"]["ename"] == "NameError"


def test_user_code_failure_is_data_not_an_http_error(client: httpx.Client) -> None:
    response = client.post("/v1/execute", json={"code": "raise ValueError('nope')"})
    assert response.status_code == 200
    body = assert_result(response.json(), "error")
    assert (body["error"]["ename"], body["error"]["evalue"]) == ("ValueError", "nope")
    assert body["outputs"][-1]["output_type"] == "error"


def test_a_run_over_its_timeout_is_a_timeout_result(small: httpx.Client) -> None:
    response = small.post("/v1/execute", json={"code": "import time\ntime.sleep(30)", "timeout": 0.5})
    assert response.status_code == 200
    assert_result(response.json(), "timeout")


# ---- invalid requests: 400 -----------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"code": "1",}',
    b"",
    b"[" * 5000 + b"]" * 5000,
], ids=["garbage", "trailing-comma", "empty", "deeply-nested"])
def test_invalid_json_is_400(client: httpx.Client, body: bytes) -> None:
    assert_error(client.post("/v1/execute", content=body, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("payload", [
    {},
    {"timeout": 5},
    {"code": None},
    {"code": 1},
    {"code": ["print(1)"]},
    {"code": "1", "timeout": "5"},
    {"code": "1", "timeout": [1]},
    {"code": "1", "env": ["A=1"]},
    {"code": "1", "env": {"A": 1}},
    {"code": "1", "files": {"a": "b"}},
    {"code": "1", "files": [{"path": "a"}]},
    {"code": "1", "files": [{"path": "a", "content": "not base64!"}]},
    {"code": "1", "stream": "yes please"},
], ids=lambda p: json.dumps(p))
def test_missing_code_or_wrong_types_are_400(client: httpx.Client, payload: dict[str, Any]) -> None:
    assert_error(client.post("/v1/execute", json=payload), 400, "invalid_request")


@pytest.mark.parametrize("raw_timeout", [b"-1", b"0", b"1e308", b"1e999", b"NaN", b"Infinity", b"-Infinity"])
def test_negative_absurd_or_non_finite_timeouts_are_400(client: httpx.Client, raw_timeout: bytes) -> None:
    body = b'{"code": "1", "timeout": ' + raw_timeout + b"}"
    assert_error(client.post("/v1/execute", content=body, headers=JSON), 400, "invalid_request")
    session_body = b'{"timeout": ' + raw_timeout + b"}"
    assert_error(client.post("/v1/sessions", content=session_body, headers=JSON), 400, "invalid_request")


def test_bad_timeouts_in_a_session_cell_are_400(client: httpx.Client, session: str) -> None:
    for timeout in (-1, 0, 1e308):
        assert_error(client.post(f"/v1/sessions/{session}/execute", json={"code": "1", "timeout": timeout}),
                     400, "invalid_request")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/plain; note=json"])
def test_json_bodies_need_a_json_content_type(client: httpx.Client, content_type: str | None) -> None:
    """Strict on purpose: a browser page may send these cross-origin without a preflight."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/execute", content=b'{"code": "print(1)"}', headers=headers)
    assert_error(response, 400, "invalid_request")
    session_id = client.post("/v1/sessions").json()["id"]
    try:
        cell = client.post(f"/v1/sessions/{session_id}/execute", content=b'{"code": "1"}', headers=headers)
        assert_error(cell, 400, "invalid_request")
        created = client.post("/v1/sessions", content=b'{"timeout": 5}', headers=headers)
        assert_error(created, 400, "invalid_request")
        batch = client.post("/v1/batch", content=b'{"items": [{"code": "1"}]}', headers=headers)
        assert_error(batch, 400, "invalid_request")
    finally:
        client.delete(f"/v1/sessions/{session_id}")


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.sandlot+json"):
        response = client.post("/v1/execute", content=b'{"code": "print(1)"}', headers={"Content-Type": content_type})
        assert assert_result(response.json())["stdout"] == "1\n"


@pytest.mark.parametrize("raw", [
    b'{"code": "\\ud800"}',
    b'{"code": "1", "env": {"A": "\\udfff"}}',
    b'{"code": "1", "files": [{"path": "\\ud800", "content": ""}]}',
    b'{"code": "1", "env": {"A=B": "x"}}',
    b'{"code": "1", "env": {"": "x"}}',
    b'{"code": "1", "env": {"A\\u0000": "x"}}',
    b'{"code": "1", "env": {"A": "x\\u0000y"}}',
], ids=["surrogate-code", "surrogate-env", "surrogate-path", "env-equals", "env-empty", "env-nul-name", "env-nul-value"])
def test_text_no_interpreter_could_take_is_400(client: httpx.Client, raw: bytes) -> None:
    assert_error(client.post("/v1/execute", content=raw, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/cron.d/x", "a/../../b", ""])
def test_execute_refuses_files_that_leave_the_workspace(client: httpx.Client, path: str) -> None:
    response = client.post("/v1/execute", json={"code": "1", "files": [{"path": path, "content": ""}]})
    assert_error(response, 400, "invalid_request")


def test_unknown_routes_and_methods_use_the_error_body(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.patch("/v1/execute"), 405, "method_not_allowed")


# ---- too large: 413 ------------------------------------------------------------------

def test_code_over_one_mib_is_413(client: httpx.Client) -> None:
    code = "#" * ((1 << 20) + 1)
    assert_error(client.post("/v1/execute", json={"code": code}), 413, "too_large")
    assert_error(client.post("/v1/execute", json={"code": code, "stream": True}), 413, "too_large")
    assert_error(client.post("/v1/batch", json={"items": [{"code": "1"}, {"code": code}]}), 413, "too_large")


def test_code_of_exactly_one_mib_runs(client: httpx.Client) -> None:
    code = "x = 1" + " " * ((1 << 20) - 5)
    assert assert_result(client.post("/v1/execute", json={"code": code}).json())["status"] == "ok"


def test_code_over_the_limit_in_a_session_is_413(client: httpx.Client, session: str) -> None:
    code = "#" * ((1 << 20) + 1)
    assert_error(client.post(f"/v1/sessions/{session}/execute", json={"code": code}), 413, "too_large")


def test_request_bodies_over_the_limit_are_413(small: httpx.Client) -> None:
    big = {"code": "#" * (MAX_REQUEST + 10)}
    assert_error(small.post("/v1/execute", json=big), 413, "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        yield b'{"code": "'
        for _ in range(MAX_REQUEST // 512 + 2):
            yield b"#" * 512
        yield b'"}'

    assert_error(small.post("/v1/execute", content=chunks(), headers=JSON), 413, "too_large")


def test_uploads_over_the_limits_are_413(small: httpx.Client) -> None:
    session_id = small.post("/v1/sessions").json()["id"]
    url = f"/v1/sessions/{session_id}/files/big.bin"
    assert small.put(url, content=b"x" * MAX_FILE).status_code == 201
    assert_error(small.put(url, content=b"x" * (MAX_FILE + 1)), 413, "too_large")   # the file limit
    assert_error(small.put(url, content=b"x" * (MAX_REQUEST + 1)), 413, "too_large")  # the request limit

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_REQUEST // 512 + 2):
            yield b"y" * 512

    assert_error(small.put(url, content=chunks()), 413, "too_large")
    assert small.get(url).content == b"x" * MAX_FILE  # what was refused never landed
    inline = base64.b64encode(b"z" * (MAX_FILE + 1)).decode()
    assert inline and len(inline) < MAX_REQUEST
    refused = small.post("/v1/execute", json={"code": "1", "files": [{"path": "z", "content": inline}]})
    assert_error(refused, 413, "too_large")  # a file sent inline is an upload too


def test_downloads_over_the_file_limit_are_413(small: httpx.Client) -> None:
    session_id = small.post("/v1/sessions").json()["id"]
    made = small.post(f"/v1/sessions/{session_id}/execute", json={"code": f"open('big', 'wb').write(b'x' * {MAX_FILE + 1})"})
    assert made.json()["status"] == "ok"
    assert_error(small.get(f"/v1/sessions/{session_id}/files/big"), 413, "too_large")


# ---- auth: 401, and 404 across keys ------------------------------------------------

AUTH_ROUTES = [
    ("POST", "/v1/execute", {"code": "1"}),
    ("POST", "/v1/batch", {"items": [{"code": "1"}]}),
    ("POST", "/v1/sessions", None),
    ("GET", "/v1/sessions", None),
    ("GET", "/v1/sessions/ses_x", None),
    ("DELETE", "/v1/sessions/ses_x", None),
    ("POST", "/v1/sessions/ses_x/execute", {"code": "1"}),
    ("POST", "/v1/sessions/ses_x/interrupt", None),
    ("GET", "/v1/sessions/ses_x/files", None),
    ("PUT", "/v1/sessions/ses_x/files/a", None),
    ("GET", "/v1/sessions/ses_x/files/a", None),
    ("DELETE", "/v1/sessions/ses_x/files/a", None),
    ("GET", "/v1/sessions/ses_x/notebook", None),
]


@pytest.mark.parametrize(("method", "path", "payload"), AUTH_ROUTES, ids=[f"{m} {p}" for m, p, _ in AUTH_ROUTES])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Basic {API_KEY}", "Bearer", API_KEY,
                                           f"Bearer {API_KEY}x"], ids=["none", "wrong", "basic", "empty", "no-scheme",
                                                                        "prefix"])
def test_every_v1_route_needs_a_valid_key(auth_server_url: str, method: str, path: str, payload: Any,
                                          authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(method, auth_server_url + path, json=payload, headers=headers, timeout=30)
    assert_error(response, 401, "unauthorized")


def test_healthz_and_metrics_are_open_without_a_key(auth_server_url: str) -> None:
    health = httpx.get(f"{auth_server_url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(f"{auth_server_url}/metrics").status_code == 200


def test_a_valid_key_is_accepted(authed: Callable[[str], httpx.Client]) -> None:
    for key in (API_KEY, OTHER_KEY):
        assert assert_result(authed(key).post("/v1/execute", json={"code": "print(2)"}).json())["stdout"] == "2\n"


def test_another_keys_session_is_not_found(authed: Callable[[str], httpx.Client]) -> None:
    owner, stranger = authed(API_KEY), authed(OTHER_KEY)
    session_id = owner.post("/v1/sessions").json()["id"]
    owner.put(f"/v1/sessions/{session_id}/files/secret.txt", content=b"mine")
    base = f"/v1/sessions/{session_id}"
    attempts = [
        stranger.get(base), stranger.post(f"{base}/execute", json={"code": "1"}),
        stranger.post(f"{base}/interrupt"), stranger.get(f"{base}/files"),
        stranger.get(f"{base}/files/secret.txt"), stranger.put(f"{base}/files/x", content=b"x"),
        stranger.delete(f"{base}/files/secret.txt"), stranger.get(f"{base}/notebook"),
        stranger.post("/v1/batch", json={"items": [{"code": "1", "session_id": session_id}]}),
        stranger.delete(base),
    ]
    for response in attempts:
        assert_error(response, 404, "not_found")  # 404, not 403: another key's session is not there for you
    assert stranger.get("/v1/sessions").json() == {"sessions": []}
    assert [s["id"] for s in owner.get("/v1/sessions").json()["sessions"]] == [session_id]
    assert owner.get(f"{base}/files/secret.txt").content == b"mine"


# ---- quotas: 429 ---------------------------------------------------------------------

def test_the_session_quota_is_429_with_retry_after(authed: Callable[[str], httpx.Client]) -> None:
    c = authed(API_KEY)
    ids = [c.post("/v1/sessions").json()["id"] for _ in range(3)]
    refused = c.post("/v1/sessions")
    assert_error(refused, 429, "capacity")
    assert int(refused.headers["Retry-After"]) >= 1
    assert authed(OTHER_KEY).post("/v1/sessions").status_code == 201  # the quota is per key
    assert c.delete(f"/v1/sessions/{ids[0]}").status_code == 204
    assert c.post("/v1/sessions").status_code == 201  # a closed session frees its place


def test_concurrent_session_creations_cannot_overrun_the_quota(authed: Callable[[str], httpx.Client],
                                                               auth_server_url: str) -> None:
    """Creating a session can wait for a sandbox to start; requests arriving meanwhile still count."""
    statuses: list[int] = []

    def create() -> None:
        with httpx.Client(base_url=auth_server_url, timeout=60, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
            statuses.append(c.post("/v1/sessions").status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201] * 3 + [429] * 5
    assert len(authed(API_KEY).get("/v1/sessions").json()["sessions"]) == 3


def test_the_runs_in_flight_quota_is_429_with_retry_after(authed: Callable[[str], httpx.Client]) -> None:
    c = authed(API_KEY)
    code = "print('started', flush=True)\nimport time\ntime.sleep(20)"
    streams = []
    events = []  # held: a dropped event iterator closes its connection, which cancels the run
    try:
        for _ in range(4):
            stream = c.stream("POST", "/v1/execute", json={"code": code, "stream": True})
            response = stream.__enter__()
            streams.append(stream)
            events.append(sse_events(response))
            assert next(events[-1])[0] == "stdout"  # it is running
        for refused in (c.post("/v1/execute", json={"code": "1"}),
                        c.post("/v1/execute", json={"code": "1", "stream": True})):
            assert_error(refused, 429, "capacity")
            assert int(refused.headers["Retry-After"]) >= 1
        assert authed(OTHER_KEY).post("/v1/execute", json={"code": "1"}).status_code == 200
    finally:
        for stream in streams:
            stream.__exit__(None, None, None)
    assert wait_until(lambda: c.post("/v1/execute", json={"code": "1"}).status_code == 200, 10)


# ---- sessions ------------------------------------------------------------------------

def test_session_lifecycle(client: httpx.Client) -> None:
    created = client.post("/v1/sessions")
    assert created.status_code == 201
    info = created.json()
    assert set(info) == {"id", "created_at", "expires_at", "execution_count", "state", "last_active_at", "environment"}
    assert info["state"] == "running" and info["environment"] == "default"
    assert info["id"].startswith("ses_") and info["execution_count"] == 0
    assert datetime.fromisoformat(info["expires_at"]) > datetime.fromisoformat(info["created_at"])
    session_id = info["id"]
    assert session_id in [s["id"] for s in client.get("/v1/sessions").json()["sessions"]]
    assert client.post(f"/v1/sessions/{session_id}/execute", json={"code": "x = 41"}).json()["status"] == "ok"
    result = assert_result(client.post(f"/v1/sessions/{session_id}/execute", json={"code": "x + 1"}).json())
    assert (result["execution_count"], result["outputs"][-1]["data"]["text/plain"]) == (2, "42")
    got = client.get(f"/v1/sessions/{session_id}").json()
    assert (got["id"], got["execution_count"]) == (session_id, 2)
    assert client.delete(f"/v1/sessions/{session_id}").status_code == 204
    assert_error(client.get(f"/v1/sessions/{session_id}"), 404, "not_found")
    assert_error(client.delete(f"/v1/sessions/{session_id}"), 404, "not_found")
    assert_error(client.post(f"/v1/sessions/{session_id}/execute", json={"code": "1"}), 404, "not_found")
    assert session_id not in [s["id"] for s in client.get("/v1/sessions").json()["sessions"]]


def test_session_options_apply(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={"timeout": 1, "idle_timeout": 120, "env": {"MODE": "test"}})
    assert created.status_code == 201
    session_id = created.json()["id"]
    try:
        expires = datetime.fromisoformat(created.json()["expires_at"]) - datetime.fromisoformat(created.json()["created_at"])
        assert 100 < expires.total_seconds() <= 121
        env = client.post(f"/v1/sessions/{session_id}/execute", json={"code": "import os\nos.environ['MODE']"}).json()
        assert env["outputs"][-1]["data"]["text/plain"] == "'test'"
        slow = client.post(f"/v1/sessions/{session_id}/execute", json={"code": "import time\ntime.sleep(10)"}).json()
        assert slow["status"] == "timeout"
        after = client.post(f"/v1/sessions/{session_id}/execute", json={"code": "print('alive')"}).json()
        assert after["stdout"] == "alive\n"  # an interruptible timeout keeps the session
    finally:
        client.delete(f"/v1/sessions/{session_id}")


@pytest.mark.parametrize("session_id", ["ses_000000000000000000000000", "nope", "%2e%2e", "ses_%00"])
def test_unknown_sessions_are_404_everywhere(client: httpx.Client, session_id: str) -> None:
    base = f"/v1/sessions/{session_id}"
    for response in (client.get(base), client.delete(base), client.post(f"{base}/execute", json={"code": "1"}),
                     client.post(f"{base}/interrupt"), client.get(f"{base}/files"), client.get(f"{base}/files/a"),
                     client.put(f"{base}/files/a", content=b"a"), client.delete(f"{base}/files/a"),
                     client.get(f"{base}/notebook"),
                     client.post("/v1/batch", json={"items": [{"code": "1", "session_id": session_id}]})):
        assert_error(response, 404, "not_found")


def test_interrupt_stops_the_running_cell_and_keeps_the_session(client: httpx.Client, session: str) -> None:
    assert client.post(f"/v1/sessions/{session}/interrupt").status_code == 204  # idle: nothing to stop, still 204
    client.post(f"/v1/sessions/{session}/execute", json={"code": "kept = 'yes'"})
    outcome: dict[str, Any] = {}

    def run() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            started = time.monotonic()
            outcome["body"] = c.post(f"/v1/sessions/{session}/execute",
                                     json={"code": "import time\nwhile True:\n    time.sleep(0.05)"}).json()
            outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.0)
    assert client.post(f"/v1/sessions/{session}/interrupt").status_code == 204
    thread.join(20)
    assert not thread.is_alive()
    assert outcome["body"]["status"] == "error"
    assert outcome["body"]["error"]["ename"] == "KeyboardInterrupt"
    assert outcome["seconds"] < 10
    assert client.post(f"/v1/sessions/{session}/execute", json={"code": "kept"}).json()["outputs"][-1]["data"] == \
        {"text/plain": "'yes'"}


def test_concurrent_calls_to_one_session_run_in_arrival_order(client: httpx.Client, session: str) -> None:
    client.post(f"/v1/sessions/{session}/execute", json={"code": "order = []"})
    results: dict[int, dict[str, Any]] = {}

    def call(i: int) -> None:
        code = f"import time\ntime.sleep({0.8 if i == 0 else 0.05})\norder.append({i})"
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            results[i] = c.post(f"/v1/sessions/{session}/execute", json={"code": code}).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
        time.sleep(0.15)  # arrival order is start order
    for thread in threads:
        thread.join(60)
    assert all(results[i]["status"] == "ok" for i in range(5))
    assert [results[i]["execution_count"] for i in range(5)] == [2, 3, 4, 5, 6]
    final = client.post(f"/v1/sessions/{session}/execute", json={"code": "order"}).json()
    assert final["outputs"][-1]["data"]["text/plain"] == "[0, 1, 2, 3, 4]"


def test_a_call_waiting_on_a_deleted_session_gets_404(client: httpx.Client, server_url: str) -> None:
    session_id = client.post("/v1/sessions").json()["id"]
    results: dict[int, httpx.Response] = {}

    def call(i: int, code: str) -> None:
        with httpx.Client(base_url=server_url, timeout=60) as c:
            results[i] = c.post(f"/v1/sessions/{session_id}/execute", json={"code": code})

    threads = [threading.Thread(target=call, args=(0, "import time\ntime.sleep(10)")),
               threading.Thread(target=call, args=(1, "1"))]
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    assert client.delete(f"/v1/sessions/{session_id}").status_code == 204
    for thread in threads:
        thread.join(30)
    assert results[0].status_code == 200 and results[0].json()["status"] == "killed"  # the running cell died with it
    assert_error(results[1], 404, "not_found")  # the waiting one finds no session, not a conflict


# ---- files ---------------------------------------------------------------------------

def test_files_round_trip(client: httpx.Client, session: str) -> None:
    base = f"/v1/sessions/{session}/files"
    blob = bytes(range(256)) * 4
    put = client.put(f"{base}/dir/sub/blob.bin", content=blob)
    assert put.status_code == 201
    assert client.put(f"{base}/notes.txt", content=b"hello").status_code == 201
    got = client.get(f"{base}/dir/sub/blob.bin")
    assert got.status_code == 200 and got.content == blob
    assert got.headers["content-type"] == "application/octet-stream"
    listing = client.get(base).json()["files"]
    assert [(f["path"], f["size"]) for f in listing] == [("dir/sub/blob.bin", 1024), ("notes.txt", 5)]
    assert all(datetime.fromisoformat(f["modified_at"]) for f in listing)
    seen = client.post(f"/v1/sessions/{session}/execute",
                       json={"code": "print(open('notes.txt').read())\nopen('made.txt', 'w').write('by code')"}).json()
    assert seen["stdout"] == "hello\n"
    assert client.get(f"{base}/made.txt").content == b"by code"
    assert client.put(f"{base}/notes.txt", content=b"").status_code == 201  # overwrite, to empty
    assert client.get(f"{base}/notes.txt").content == b""
    assert client.delete(f"{base}/notes.txt").status_code == 204
    assert_error(client.get(f"{base}/notes.txt"), 404, "not_found")
    assert_error(client.delete(f"{base}/notes.txt"), 404, "not_found")
    assert_error(client.get(f"{base}/no/such/file"), 404, "not_found")
    assert "notes.txt" not in [f["path"] for f in client.get(base).json()["files"]]


def test_files_survive_a_killed_interpreter(client: httpx.Client, session: str) -> None:
    base = f"/v1/sessions/{session}/files"
    client.put(f"{base}/keep.txt", content=b"kept")
    killed = client.post(f"/v1/sessions/{session}/execute", json={"code": "import os\nos._exit(3)"})
    assert killed.status_code == 200 and killed.json()["status"] == "killed"
    after = client.post(f"/v1/sessions/{session}/execute", json={"code": "print(open('keep.txt').read())"}).json()
    assert (after["stdout"], after["restarted"]) == ("kept\n", True)


@pytest.mark.parametrize("target", [
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "..%2F..%2Fetc%2Fpasswd",
    "a/%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e",
    "../../etc/passwd",
    "a/../../etc/passwd",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "%00",
    "a%00b",
], ids=lambda t: t)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_paths_that_leave_the_workspace_are_400(server_url: str, session: str, target: str, method: str) -> None:
    status, body = raw_request(server_url, method, f"/v1/sessions/{session}/files/{target}",
                               body=b"pwned" if method == "PUT" else None)
    assert status == 400, body
    assert json.loads(body)["error"]["type"] == "invalid_request"


def test_httpx_encoded_traversal_is_400(client: httpx.Client, server_url: str, session: str) -> None:
    for target in ("%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd", "%2Fetc%2Fpasswd"):
        url = httpx.URL(f"{server_url}/v1/sessions/{session}/files/{target}")
        assert target in str(url.raw_path, "ascii")  # sent as written
        assert_error(client.get(url), 400, "invalid_request")
        assert_error(client.put(url, content=b"pwned"), 400, "invalid_request")


def test_symlinks_planted_by_the_sandbox_are_not_followed(client: httpx.Client, session: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"host data")
    code = (f"import os\nos.symlink('/etc/passwd', 'passwd')\nos.symlink({str(victim)!r}, 'victim')\n"
            f"os.symlink({str(tmp_path)!r}, 'hostdir')\nos.symlink('/etc', 'etc')")
    assert client.post(f"/v1/sessions/{session}/execute", json={"code": code}).json()["status"] == "ok"
    base = f"/v1/sessions/{session}/files"
    for path in ("passwd", "victim", "etc/passwd", "hostdir/victim.txt"):
        refused = client.get(f"{base}/{path}")
        assert_error(refused, 400, "invalid_request")
        assert b"root:" not in refused.content and b"host data" not in refused.content
    for path in ("victim", "hostdir/victim.txt", "hostdir/new.txt"):
        assert_error(client.put(f"{base}/{path}", content=b"pwned"), 400, "invalid_request")
    assert victim.read_bytes() == b"host data"
    assert not (tmp_path / "new.txt").exists()
    assert client.get(base).json()["files"] == []  # links are not files
    assert client.delete(f"{base}/victim").status_code == 204  # removes the link itself, never its target
    assert victim.read_bytes() == b"host data"
    assert_error(client.delete(f"{base}/hostdir/victim.txt"), 400, "invalid_request")
    assert victim.exists()


def test_special_files_and_directories_are_400(client: httpx.Client, session: str) -> None:
    code = "import os\nos.mkfifo('fifo')\nos.makedirs('d/e')"
    assert client.post(f"/v1/sessions/{session}/execute", json={"code": code}).json()["status"] == "ok"
    base = f"/v1/sessions/{session}/files"
    for response in (client.get(f"{base}/fifo"), client.put(f"{base}/fifo", content=b"x"), client.get(f"{base}/d"),
                     client.delete(f"{base}/d"), client.put(f"{base}/d", content=b"x"), client.get(f"{base}/"),
                     client.put(f"{base}/{'n' * 300}", content=b"x")):
        assert_error(response, 400, "invalid_request")


# ---- notebook ------------------------------------------------------------------------

def test_notebook_is_valid_nbformat_4(client: httpx.Client, session: str) -> None:
    cells = ["print('hello')", "21 * 2", "raise KeyError('k')",
             "from IPython.display import display\ndisplay(3)" , "import sys\nprint('e', file=sys.stderr)"]
    for code in cells:
        assert client.post(f"/v1/sessions/{session}/execute", json={"code": code}).status_code == 200
    response = client.get(f"/v1/sessions/{session}/notebook")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ipynb+json")
    notebook = read_notebook(response.text)
    assert [cell.source for cell in notebook.cells] == cells
    assert [cell.execution_count for cell in notebook.cells] == [1, 2, 3, 4, 5]
    assert notebook.cells[1].outputs[0]["data"]["text/plain"] == "42"
    assert notebook.cells[2].outputs[-1]["output_type"] == "error"


def test_an_empty_sessions_notebook_is_valid(client: httpx.Client, session: str) -> None:
    notebook = read_notebook(client.get(f"/v1/sessions/{session}/notebook").text)
    assert notebook.cells == []


# ---- batch ---------------------------------------------------------------------------

def test_batch_items_run_in_parallel_and_come_back_in_item_order(client: httpx.Client) -> None:
    assert wait_until(lambda: client.get("/healthz").json()["pool_ready"] >= 4, 30)
    items = [{"code": f"import time\ntime.sleep({1.0 + (3 - i) * 0.1})\nprint({i})"} for i in range(4)]
    started = time.monotonic()
    response = client.post("/v1/batch", json={"items": items})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    results = response.json()["results"]
    assert [assert_result(r)["stdout"] for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    assert elapsed < 2.5, f"4 one-second items took {elapsed:.1f}s: not in parallel"


def test_batch_items_for_one_session_run_in_order(client: httpx.Client, session: str) -> None:
    other = client.post("/v1/sessions").json()["id"]
    try:
        items: list[dict[str, Any]] = [{"code": "seen = []", "session_id": session}, {"code": "seen = []", "session_id": other}]
        for i in range(6):
            items.append({"code": f"import time\ntime.sleep({0.05 * (6 - i)})\nseen.append({i})", "session_id": session})
            items.append({"code": f"seen.append({i})", "session_id": other})
            items.append({"code": f"print({i})"})
        items += [{"code": "seen", "session_id": session}, {"code": "seen", "session_id": other}]
        results = client.post("/v1/batch", json={"items": items}).json()["results"]
        assert len(results) == len(items)
        assert results[-2]["outputs"][-1]["data"]["text/plain"] == "[0, 1, 2, 3, 4, 5]"
        assert results[-1]["outputs"][-1]["data"]["text/plain"] == "[0, 1, 2, 3, 4, 5]"
        assert [r["stdout"] for r in results[4::3]] == [f"{i}\n" for i in range(6)]
        assert [r["execution_count"] for r in results[2:-2:3]] == [2, 3, 4, 5, 6, 7]
    finally:
        client.delete(f"/v1/sessions/{other}")


@pytest.mark.parametrize("payload", [
    {}, {"items": []}, {"items": "print(1)"}, {"items": [{"session_id": "ses_x"}]}, {"items": [{"code": 5}]},
    {"items": [{"code": "1", "timeout": -1}]}, {"items": [{"code": "1", "timeout": 1e308}]},
], ids=lambda p: json.dumps(p))
def test_invalid_batches_are_400(client: httpx.Client, payload: dict[str, Any]) -> None:
    assert_error(client.post("/v1/batch", json=payload), 400, "invalid_request")


def test_a_bad_item_refuses_the_batch_before_anything_runs(client: httpx.Client, session: str) -> None:
    items = [{"code": "ran = True", "session_id": session}, {"code": "1", "timeout": 1e308}]
    assert_error(client.post("/v1/batch", json={"items": items}), 400, "invalid_request")
    check = client.post(f"/v1/sessions/{session}/execute", json={"code": "'ran' in globals()"}).json()
    assert check["outputs"][-1]["data"]["text/plain"] == "False"


def test_a_streamed_batch_sends_each_result_in_item_order_as_soon_as_those_before_it_are_in(
        client: httpx.Client, session: str) -> None:
    """``result`` events in item order, each leaving once it and every item before it are in: the first (quick)
    one arrives while a slow one still runs; the quick items behind the slow one wait for it; ``done`` is the
    batch's whole answer."""
    assert wait_until(lambda: client.get("/healthz").json()["pool_ready"] >= 3, 30)
    items: list[dict[str, Any]] = [{"code": "print(0)"}, {"code": "import time\ntime.sleep(3)\nprint(1)"},
                                   {"code": "print(2)"}, {"code": "x = 3\nx", "session_id": session}]
    started = time.monotonic()
    arrivals = []
    with client.stream("POST", "/v1/batch", json={"items": items, "stream": True}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = []
        for event in sse_events(response):
            arrivals.append(time.monotonic() - started)
            events.append(event)
    assert [name for name, _ in events] == ["result"] * 4 + ["done"]
    assert [data["index"] for _, data in events[:4]] == [0, 1, 2, 3]
    assert [assert_result(data["result"])["stdout"] for _, data in events[:3]] == ["0\n", "1\n", "2\n"]
    assert events[3][1]["result"]["outputs"][-1]["data"]["text/plain"] == "3"
    assert arrivals[0] < 2.0 <= 3.0 <= arrivals[1], arrivals  # streamed, not held for the slow item
    assert events[4][1]["results"] == [data["result"] for _, data in events[:4]]


def test_a_streamed_batch_ends_with_the_error_of_an_item_that_failed(client: httpx.Client) -> None:
    """The session of a chain is deleted while the batch runs: its next cell fails (404), the stream gives the
    results before it and ends with that error, no ``done``."""
    doomed = client.post("/v1/sessions").json()["id"]
    items = [{"code": "print(0)"}, {"code": "import time\ntime.sleep(1.5)", "session_id": doomed},
             {"code": "print(2)", "session_id": doomed}]
    with client.stream("POST", "/v1/batch", json={"items": items, "stream": True}) as response:
        events = []
        for event in sse_events(response):
            events.append(event)
            if event[0] == "result" and event[1]["index"] == 0:
                assert client.delete(f"/v1/sessions/{doomed}").status_code == 204
    assert events[0][0] == "result" and events[-1][0] == "error", events
    assert events[-1][1]["error"]["type"] == "not_found"
    assert "done" not in [name for name, _ in events]


def test_batches_over_the_item_limit_are_400(client: httpx.Client) -> None:
    assert_error(client.post("/v1/batch", json={"items": [{"code": "1"}] * 65}), 400, "invalid_request")


# ---- streaming -----------------------------------------------------------------------

def test_streaming_sends_stdout_then_output_then_done(client: httpx.Client) -> None:
    code = "print('first', flush=True)\nimport time\ntime.sleep(0.2)\n'value'"
    with client.stream("POST", "/v1/execute", json={"code": code, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    assert [name for name, _ in events] == ["stdout", "output", "done"]
    assert events[0][1] == {"name": "stdout", "text": "first\n"}
    assert events[1][1]["output_type"] == "execute_result"
    done = assert_result(events[-1][1])
    assert done["stdout"] == "first\n"
    assert done["outputs"][-1] == events[1][1]  # done carries the complete result


def test_accept_event_stream_also_streams(client: httpx.Client, session: str) -> None:
    headers = {"Accept": "text/event-stream"}
    with client.stream("POST", "/v1/execute", json={"code": "print(1)"}, headers=headers) as response:
        assert [name for name, _ in sse_events(response)] == ["stdout", "done"]
    with client.stream("POST", f"/v1/sessions/{session}/execute", json={"code": "import sys\nprint(2, file=sys.stderr)"},
                       headers=headers) as response:
        events = list(sse_events(response))
    assert [name for name, _ in events] == ["stderr", "done"]
    assert events[-1][1]["stderr"] == "2\n" and events[-1][1]["execution_count"] == 1


def test_a_failing_cell_streams_an_error_event_then_done(client: httpx.Client, session: str) -> None:
    with client.stream("POST", f"/v1/sessions/{session}/execute", json={"code": "1/0", "stream": True}) as response:
        events = list(sse_events(response))
    assert [name for name, _ in events] == ["error", "done"]
    assert events[0][1]["ename"] == "ZeroDivisionError"
    assert assert_result(events[1][1], "error")["error"]["ename"] == "ZeroDivisionError"


def test_streaming_requests_are_validated_before_the_stream(client: httpx.Client, session: str) -> None:
    assert_error(client.post("/v1/execute", json={"code": "1", "timeout": 1e308, "stream": True}), 400, "invalid_request")
    assert_error(client.post(f"/v1/sessions/{session}/execute", json={"code": "1", "timeout": 1e308, "stream": True}),
                 400, "invalid_request")
    assert_error(client.post("/v1/execute", json={"code": "1", "stream": 3}), 400, "invalid_request")


def health(c: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = c.get("/healthz").json()
    return body


def idle(h: dict[str, Any]) -> bool:
    """No sandbox busy with a run: every live sandbox is warm in the pool or belongs to a session."""
    return bool(h["sandboxes_alive"] == h["pool_ready"] + h["sessions"])


def test_a_client_that_disconnects_cancels_a_one_shot_run(small: httpx.Client) -> None:
    assert wait_until(lambda: idle(health(small)), 15)
    code = "print('started', flush=True)\nimport time\ntime.sleep(30)"
    with small.stream("POST", "/v1/execute", json={"code": code, "stream": True}) as response:
        events = sse_events(response)  # held: dropping it would close the connection early
        assert next(events) == ("stdout", {"name": "stdout", "text": "started\n"})
        time.sleep(0.3)
        busy = health(small)
        assert not idle(busy), busy  # the run is going on
    started = time.monotonic()
    assert wait_until(lambda: idle(health(small)), 5), health(small)
    assert time.monotonic() - started < 5


def test_a_client_that_disconnects_interrupts_a_session_cell(small: httpx.Client) -> None:
    session_id = small.post("/v1/sessions").json()["id"]
    small.post(f"/v1/sessions/{session_id}/execute", json={"code": "kept = 1"})
    code = "print('started', flush=True)\nimport time\ntime.sleep(30)"
    with small.stream("POST", f"/v1/sessions/{session_id}/execute", json={"code": code, "stream": True}) as response:
        events = sse_events(response)
        assert next(events)[0] == "stdout"
        time.sleep(0.3)
        assert small.get(f"/v1/sessions/{session_id}").json()["execution_count"] == 2
    started = time.monotonic()
    after = small.post(f"/v1/sessions/{session_id}/execute", json={"code": "kept + 1"}).json()
    assert time.monotonic() - started < 5  # the 30 s cell did not hold the session
    assert after["outputs"][-1]["data"]["text/plain"] == "2"  # interrupted, not killed: state kept
    assert after["restarted"] is False


def test_a_queued_call_that_disconnects_neither_runs_nor_interrupts_the_running_cell(small: httpx.Client,
                                                                                     small_server_url: str) -> None:
    session_id = small.post("/v1/sessions").json()["id"]
    outcome: dict[str, Any] = {}

    def first() -> None:
        with httpx.Client(base_url=small_server_url, timeout=60) as c:
            code = "import time\ntime.sleep(1.5)\n'first done'"
            outcome["first"] = c.post(f"/v1/sessions/{session_id}/execute", json={"code": code}).json()

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.3)
    with httpx.Client(base_url=small_server_url, timeout=60) as other, \
            other.stream("POST", f"/v1/sessions/{session_id}/execute", json={"code": "queued_ran = True", "stream": True}):
        time.sleep(0.3)  # waiting for its turn; then the client goes away
    thread.join(30)
    assert outcome["first"]["status"] == "ok", outcome["first"]  # not interrupted on the other client's behalf
    assert outcome["first"]["outputs"][-1]["data"]["text/plain"] == "'first done'"
    time.sleep(0.3)
    check = small.post(f"/v1/sessions/{session_id}/execute", json={"code": "'queued_ran' in globals()"}).json()
    assert check["outputs"][-1]["data"]["text/plain"] == "False"  # nobody was listening: it never ran
    assert check["execution_count"] == 2


# ---- operations ----------------------------------------------------------------------

def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {"sandboxes_alive", "sessions", "pool_ready", "isolation", "version"} <= set(body)


def test_metrics_are_prometheus_text_with_request_counts(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    for _ in range(3):
        client.get("/healthz")
    client.post("/v1/execute", json={"code": "1"})
    client.post("/v1/execute", json={})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in ("sandlot_http_requests_total", "sandlot_http_request_duration_seconds_bucket", "sandlot_runs_total",
                 "sandlot_pool_ready", "sandlot_sandboxes_alive", "sandlot_sessions_alive"):
        assert f"\n{name}" in text, name
    def count(t: str, method: str, route: str, status: str) -> float:
        return metric_value(t, "sandlot_http_requests_total", method=method, route=route, status=status)
    assert count(text, "GET", "/healthz", "200") >= count(before, "GET", "/healthz", "200") + 3
    assert count(text, "POST", "/v1/execute", "200") >= count(before, "POST", "/v1/execute", "200") + 1
    assert count(text, "POST", "/v1/execute", "400") >= count(before, "POST", "/v1/execute", "400") + 1


def test_made_up_methods_do_not_grow_the_metrics(client: httpx.Client) -> None:
    for method in ("FROB", "XYZZY", "PLUGH"):
        assert_error(client.request(method, "/v1/execute"), 405, "method_not_allowed")
    text = client.get("/metrics").text
    assert "FROB" not in text and "XYZZY" not in text
    assert metric_value(text, "sandlot_http_requests_total", method="other", route="/v1/execute", status="405") >= 3


def raw_exchange(server_url: str, request: bytes) -> str:
    """Send ``request`` as bytes on a fresh connection; what comes back until the server closes it."""
    parts = urlsplit(server_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


def contract_error_in(answer: str, status: int, error_type: str) -> None:
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} "), answer
    assert "content-type: application/json" in head.lower(), answer
    assert json.loads(body)["error"]["type"] == error_type, answer


@pytest.mark.parametrize("request_bytes", [b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",  # no colon
                                           b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
                                           b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n"])
def test_a_request_that_is_not_http_gets_the_error_body(server_url: str, request_bytes: bytes) -> None:
    contract_error_in(raw_exchange(server_url, request_bytes), 400, "invalid_request")


def test_headers_over_the_cap_are_400_with_the_error_body(server_url: str) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    contract_error_in(raw_exchange(server_url, request), 400, "invalid_request")


def test_a_method_the_fast_parser_does_not_know_reaches_the_app_on_a_kept_connection(server_url: str) -> None:
    """llhttp refuses methods outside its list; the connection goes on in h11, and the app answers 405."""
    answer = raw_exchange(server_url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".replace(b"GET", b"FROB")
                          .replace(b"/healthz", b"/v1/execute").replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    contract_error_in(answer, 405, "method_not_allowed")
    with httpx.Client(base_url=server_url, timeout=10) as client:  # one connection: a GET, then made-up methods
        assert client.get("/healthz").status_code == 200
        assert_error(client.request("BREW", "/v1/execute"), 405, "method_not_allowed")
        assert client.get("/healthz").status_code == 200


def test_openapi_describes_the_routes(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [("/v1/execute", "post"), ("/v1/batch", "post"), ("/v1/sessions", "post"),
                         ("/v1/sessions", "get"), ("/v1/sessions/{session_id}", "get"),
                         ("/v1/sessions/{session_id}", "delete"), ("/v1/sessions/{session_id}/execute", "post"),
                         ("/v1/sessions/{session_id}/interrupt", "post"), ("/v1/sessions/{session_id}/files", "get"),
                         ("/v1/sessions/{session_id}/files/{path}", "put"),
                         ("/v1/sessions/{session_id}/files/{path}", "get"),
                         ("/v1/sessions/{session_id}/files/{path}", "delete"),
                         ("/v1/sessions/{session_id}/notebook", "get"), ("/healthz", "get"), ("/metrics", "get")]:
        assert method in paths[path], (path, method)
    for path_item in paths.values():
        for operation in path_item.values():
            assert "422" not in operation["responses"]


# ---- live figures of a session -----------------------------------------------------------

def test_session_metrics_show_what_a_running_cell_uses(client: httpx.Client, server_url: str) -> None:
    session_id = client.post("/v1/sessions").json()["id"]
    code = "import time\nx = bytearray(64 << 20)\nopen('f.bin', 'wb').write(b'0' * (1 << 20))\ntime.sleep(2)"
    worker = threading.Thread(target=lambda: httpx.post(f"{server_url}/v1/sessions/{session_id}/execute",
                                                        json={"code": code}, timeout=30))
    worker.start()
    try:
        time.sleep(1.2)
        during = client.get(f"/v1/sessions/{session_id}/metrics").json()
        assert during["running"] is True and during["interpreter"] is True, during
        assert during["memory_bytes"] >= 64 << 20 and during["pids"] >= 1 and during["cpu_ms"] > 0, during
        assert during["workspace_bytes"] >= 1 << 20, during
    finally:
        worker.join(30)
    after = client.get(f"/v1/sessions/{session_id}/metrics").json()
    assert after["running"] is False and after["peak_memory_bytes"] >= 64 << 20, after
    assert client.get("/v1/sessions/ses_nope/metrics").status_code == 404
    client.delete(f"/v1/sessions/{session_id}")
