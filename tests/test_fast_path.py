"""The hot routes' fast path (server/fast_path.py) answers as FastAPI's own path does, and is taken.

Two real servers from one configuration, one with the fast path and one without (``create_app(...,
fast_path=False)``), get the same requests in the same order: the plain case and every way out of it
(no key, a wrong key, bad JSON, a body that does not validate, another content type, a query string,
an unknown or another key's session, a stream, code or a timeout over the limits, the quota, a
draining server). Each answer must be the other's: the status, the headers that matter, and the body
byte for byte (a run's result up to its id, duration and usage, which no two runs share). And the
fast path's count of the requests it answered must rise for exactly the plain ones, so a fast path
that quietly handed everything to FastAPI fails here.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import TIGHT_LIMITS, serving
from test_server import wait_until

from sandlot import EngineConfig
from sandlot._errors import CapacityError
from sandlot.server import ServerConfig, create_app
from sandlot.server.fast_path import FastPath

KEY = "fast-path-key-0123456789"
OTHER_KEY = "fast-path-other-key-abcdef"
CONFIG = ServerConfig(api_keys=(KEY, OTHER_KEY), max_runs_per_key=1,
                      engine=EngineConfig(preload=(), pool_size=2, limits=TIGHT_LIMITS))
RUN_SPECIFIC = ("id", "duration_ms", "usage")  # no two runs share these
COMPARED_HEADERS = ("content-type", "retry-after", "connection")


@dataclass
class Server:
    url: str
    app: Any
    session: str = ""
    other_session: str = ""

    @property
    def fast_path(self) -> FastPath:
        found = self.app.state.sandlot.extras.get("fast_path")
        assert isinstance(found, FastPath)
        return found

    def taken(self) -> int:
        return self.fast_path.taken if "fast_path" in self.app.state.sandlot.extras else 0


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    """(with the fast path, without it), each with a session of ``KEY``'s and one of ``OTHER_KEY``'s."""
    fast_app, plain_app = create_app(CONFIG), create_app(CONFIG, fast_path=False)
    with serving(fast_app, CONFIG) as fast_url, serving(plain_app, CONFIG) as plain_url:
        pair = Server(fast_url, fast_app), Server(plain_url, plain_app)
        for server in pair:
            server.session = post(server, "/v1/sessions", KEY, None).json()["id"]
            server.other_session = post(server, "/v1/sessions", OTHER_KEY, None).json()["id"]
        assert "fast_path" not in plain_app.state.sandlot.extras
        yield pair


def post(server: Server, path: str, key: str | None, body: bytes | dict[str, Any] | None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    path = path.replace("{session}", server.session).replace("{other}", server.other_session)
    if isinstance(body, dict):
        return httpx.post(server.url + path, json=body, headers=sent, timeout=60)
    return httpx.post(server.url + path, content=body, headers=sent, timeout=60)


def comparable(response: httpx.Response, server: Server) -> tuple[int, dict[str, str | None], Any]:
    """What must be the same from both servers: status, headers, and the body (a result's, up to its run;
    each server's session ids are its own)."""
    headers = {name: response.headers.get(name) for name in COMPARED_HEADERS}
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = []
        for block in response.text.split("\n\n"):
            if block:
                name, data = (line.split(": ", 1)[1] for line in block.split("\n"))
                events.append((name, without_run(json.loads(data))))
        return response.status_code, headers, events
    headers["content-length"] = response.headers.get("content-length")
    if response.status_code == 200:
        headers.pop("content-length")  # a result's length depends on its duration's digits
        return response.status_code, headers, without_run(response.json())
    content = response.content.replace(server.session.encode(), b"{session}")
    return response.status_code, headers, content.replace(server.other_session.encode(), b"{other}")


def without_run(document: Any) -> Any:
    if isinstance(document, dict) and "duration_ms" in document:
        return {key: value for key, value in document.items() if key not in RUN_SPECIFIC}
    return document


JSON = {"Content-Type": "application/json"}
TOO_LONG = "x = 1\n" * (1024 * 1024 // 6 + 1)  # over check_code's 1 MiB
# (label, path, key, body, headers, whether the fast path answers it)
CASES: list[tuple[str, str, str | None, bytes | dict[str, Any] | None, dict[str, str] | None, bool]] = [
    ("execute", "/v1/execute", KEY, {"code": "print(1)"}, None, True),
    ("execute, a charset", "/v1/execute", KEY, b'{"code": "print(2)"}', {"Content-Type": "application/json; charset=utf-8"}, True),
    ("execute, user code fails", "/v1/execute", KEY, {"code": "1/0"}, None, True),
    ("execute, every plain field", "/v1/execute", KEY, {"code": "import os; print(os.environ['A'])", "timeout": 5,
                                                        "env": {"A": "b"}, "stream": False}, None, True),
    ("cell", "/v1/sessions/{session}/execute", KEY, {"code": "x = 41"}, None, True),
    ("cell, again", "/v1/sessions/{session}/execute", KEY, {"code": "x + 1"}, None, True),
    ("execute, no key", "/v1/execute", None, {"code": "print(1)"}, None, False),
    ("execute, a wrong key", "/v1/execute", "not-a-key", {"code": "print(1)"}, None, False),
    ("execute, not bearer", "/v1/execute", None, {"code": "print(1)"}, {"Authorization": f"Basic {KEY}"}, False),
    ("cell, no key", "/v1/sessions/{session}/execute", None, {"code": "1"}, None, False),
    ("execute, bad JSON", "/v1/execute", KEY, b'{"code": "print(1)"', JSON, False),
    ("execute, not UTF-8", "/v1/execute", KEY, b'{"code": "\xff"}', JSON, False),
    ("execute, empty body", "/v1/execute", KEY, b"", JSON, False),
    ("execute, a list", "/v1/execute", KEY, b'["print(1)"]', JSON, False),
    ("execute, a wrong type", "/v1/execute", KEY, {"code": 1}, None, False),
    ("execute, a misspelt field", "/v1/execute", KEY, {"code": "1", "timeoutt": 5}, None, False),
    ("execute, a bad timeout", "/v1/execute", KEY, {"code": "1", "timeout": -1}, None, False),
    ("cell, a bad field", "/v1/sessions/{session}/execute", KEY, {"code": "1", "files": []}, None, False),
    ("execute, text/plain", "/v1/execute", KEY, b'{"code": "print(1)"}', {"Content-Type": "text/plain"}, False),
    ("execute, no content type", "/v1/execute", KEY, b'{"code": "print(1)"}', None, False),
    ("execute, a +json type", "/v1/execute", KEY, b'{"code": "print(3)"}', {"Content-Type": "application/x+json"}, False),
    ("execute, a query string", "/v1/execute?x=1", KEY, {"code": "print(4)"}, None, False),
    ("cell, unknown session", "/v1/sessions/ses_000000000000000000000000/execute", KEY, {"code": "1"}, None, False),
    ("cell, another key's session", "/v1/sessions/{other}/execute", KEY, {"code": "1"}, None, False),
    ("execute, stream", "/v1/execute", KEY, {"code": "print(5)", "stream": True}, None, False),
    ("execute, Accept stream", "/v1/execute", KEY, {"code": "print(6)"}, {"Accept": "text/event-stream"}, False),
    ("cell, stream", "/v1/sessions/{session}/execute", KEY, {"code": "print(x)", "stream": True}, None, False),
    # Refused by the route's own checks, inside the fast path: the error seam's answer.
    ("execute, code over the limit", "/v1/execute", KEY, {"code": TOO_LONG}, None, True),
    ("execute, a timeout over the maximum", "/v1/execute", KEY, {"code": "1", "timeout": 10**6}, None, True),
    ("execute, an unknown environment", "/v1/execute", KEY, {"code": "1", "environment": "nope"}, None, True),
    ("cell, code over the limit", "/v1/sessions/{session}/execute", KEY, {"code": TOO_LONG}, None, True),
    ("cell, a timeout over the maximum", "/v1/sessions/{session}/execute", KEY, {"code": "1", "timeout": 10**6}, None, True),
]


@pytest.mark.parametrize(("label", "path", "key", "body", "headers", "taken"), CASES, ids=[c[0] for c in CASES])
def test_each_answer_is_fastapis_own(servers: tuple[Server, Server], label: str, path: str, key: str | None,
                                     body: bytes | dict[str, Any] | None, headers: dict[str, str] | None,
                                     taken: bool) -> None:
    fast, plain = servers
    post(fast, "/v1/execute", KEY, {"code": "pass"})  # the shapes are learned (the first goes to FastAPI)
    post(fast, "/v1/sessions/{session}/execute", KEY, {"code": "pass"})
    post(plain, "/v1/sessions/{session}/execute", KEY, {"code": "pass"})  # the same cells in both sessions
    before = fast.taken()
    answered = comparable(post(fast, path, key, body, headers), fast)
    assert fast.taken() - before == (1 if taken else 0), f"{label}: the fast path {'missed' if taken else 'took'} it"
    assert answered == comparable(post(plain, path, key, body, headers), plain), label
    assert plain.taken() == 0


def test_a_draining_server_answers_503_as_fastapi_does(servers: tuple[Server, Server]) -> None:
    answers = []
    for server in servers:
        post(server, "/v1/execute", KEY, {"code": "pass"})
        before = server.taken()
        server.app.state.sandlot.draining = True
        try:
            answers.append([comparable(post(server, path, KEY, {"code": "1"}), server)
                            for path in ("/v1/execute", "/v1/sessions/{session}/execute")])
        finally:
            server.app.state.sandlot.draining = False
        assert server.taken() == before
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]] == [503, 503]


def test_the_quota_is_429_with_retry_after_on_both_paths(servers: tuple[Server, Server]) -> None:
    answers = []
    for server in servers:
        post(server, "/v1/execute", KEY, {"code": "pass"})
        slow = threading.Thread(target=post, args=(server, "/v1/execute", KEY, {"code": "import time; time.sleep(2)"}))
        slow.start()
        try:
            assert wait_until(functools.partial(quota_is_full, server), 10), "the slow run never started"
            before = server.taken()
            answers.append(comparable(post(server, "/v1/execute", KEY, {"code": "1"}), server))
            assert server.taken() - before == (1 if server is servers[0] else 0)
        finally:
            slow.join(30)
    assert answers[0] == answers[1]
    assert answers[0][0] == 429 and answers[0][1]["retry-after"] == "1"


def quota_is_full(server: Server) -> bool:
    state = server.app.state.sandlot
    try:
        state.quotas.check_run(state.auth.principal(f"Bearer {KEY}"))
    except CapacityError:
        return True
    return False


def test_the_metric_and_the_log_line_are_the_routes(servers: tuple[Server, Server]) -> None:
    fast, _ = servers
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    request_log = logging.getLogger("sandlot.request")
    level = request_log.level
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    try:
        counts = {}
        for template in ("/v1/execute", "/v1/sessions/{session_id}/execute"):
            counts[template] = requests_metric(fast, template)
        before = fast.taken()
        assert post(fast, "/v1/execute", KEY, {"code": "print(1)"}).status_code == 200
        assert post(fast, "/v1/sessions/{session}/execute", KEY, {"code": "1"}).status_code == 200
        assert fast.taken() - before == 2
        # The guard records a request once its answer is sent: the client may read it first.
        for template, count in counts.items():
            assert wait_until(lambda t=template, c=count: requests_metric(fast, t) == c + 1, 5), template
        assert wait_until(lambda: len(posts(records)) == 2, 5), posts(records)
    finally:
        request_log.removeHandler(handler)
        request_log.setLevel(level)
    lines = posts(records)
    principal = fast.app.state.sandlot.auth.principal(f"Bearer {KEY}")
    assert [(line["path"], line["status"], line["principal"]) for line in lines] == [
        ("/v1/execute", 200, principal), (f"/v1/sessions/{fast.session}/execute", 200, principal)]


def posts(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [fields for r in records if (fields := getattr(r, "fields", {})).get("method") == "POST"]


def requests_metric(server: Server, route: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    wanted = f'sandlot_http_requests_total{{method="POST",route="{route}",status="200"}} '
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line[len(wanted):])
    return 0.0


def test_a_shape_is_taken_once_fastapi_has_routed_it_to_the_route() -> None:
    app = create_app(CONFIG)
    with serving(app, CONFIG) as url:
        server = Server(url, app)
        assert post(server, "/v1/execute", KEY, {"code": "print(1)"}).status_code == 200
        assert server.fast_path.taken == 0 and set(server.fast_path.routes) == {"execute"}
        assert post(server, "/v1/execute", KEY, {"code": "print(1)"}).status_code == 200
        assert server.fast_path.taken == 1
        # A refused request teaches the shape too: the router chose the route before the key was checked.
        server.session = post(server, "/v1/sessions", KEY, None).json()["id"]
        assert post(server, "/v1/sessions/{session}/execute", None, {"code": "1"}).status_code == 401
        assert set(server.fast_path.routes) == {"execute", "cell"}
        assert post(server, "/v1/sessions/{session}/execute", KEY, {"code": "1"}).status_code == 200
        assert server.fast_path.taken == 2
