"""Tracing with OpenTelemetry, end to end: a real server exports to a real OTLP/HTTP receiver.

The server runs as ``sandlot serve`` in a process of its own, configured only by the
standard ``OTEL_*`` variables, with the scripted model (``sandlot.testing.upstream``) as its
upstream and an HTTP host tool on a loopback service of the test's. The receiver
(``sandlot.testing.otlp``) decodes the OTLP protobuf with ``opentelemetry-proto``; the tests
check the spans' names, attributes and links: one trace, each span's parent the right one,
and the trace context sent on to the model and to the tool.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandlot import tracing
from sandlot.testing.otlp import OtlpReceiver, ReceivedSpan
from sandlot.testing.serving import ServerProcess
from sandlot.testing.upstream import Reply, ScriptedUpstream

TESTS = os.path.dirname(os.path.abspath(__file__))
CODE_WITH_TOOL = "from sandlot.tools import lookup\nprint(lookup(key='abc')['value'])"


class ToolService:
    """The host tool's HTTP service: answers ``GET /lookup/<key>``, keeps each request's headers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                service.headers.append({k.lower(): v for k, v in self.headers.items()})
                key = self.path.rsplit("/", 1)[-1]
                body = json.dumps({"key": key, "value": len(key)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Traced:
    url: str
    receiver: OtlpReceiver
    upstream: ScriptedUpstream
    tools: ToolService


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    """One traced ``sandlot serve`` for the module, with its receiver, scripted model and tool service."""
    tools = ToolService()
    with OtlpReceiver() as receiver, ScriptedUpstream([]) as upstream:
        env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "sandlot-trace-test",
                    "OTEL_BSP_SCHEDULE_DELAY": "50", "TRACE_TOOL_URL": tools.url,
                    "PYTHONPATH": os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)})
        server = ServerProcess("--pool-size", "2", "--preload", "", "--log-level", "warning",
                               "--model-url", upstream.base_url, "--model", "m", "--action-format", "tool_calls",
                               "--tools", "tracing_tools:registry", env=env, inherit_env=False, timeout=60,
                               log=tmp_path_factory.mktemp("traced") / "server.log")
        server.start()
        try:
            yield Traced(server.url, receiver, upstream, tools)
        finally:
            assert server.stop(grace=30) == 0
            tools.close()


def trace_of(receiver: OtlpReceiver, root_name: str, trace_id: str | None = None) -> list[ReceivedSpan]:
    """The spans of the trace whose server span is ``root_name`` (the one in ``trace_id``, if given), once
    that span (it ends last) and everything it holds has arrived."""
    def root(spans: list[ReceivedSpan]) -> ReceivedSpan | None:
        return next((s for s in spans if s.name == root_name and trace_id in (None, s.trace_id)), None)

    spans = receiver.wait_for(lambda spans: root(spans) is not None)
    found = root(spans)
    assert found is not None
    time.sleep(0.3)  # the batch that holds the root may be followed by one with a straggler
    return [s for s in receiver.spans if s.trace_id == found.trace_id]


def only(spans: list[ReceivedSpan], name: str, parent: ReceivedSpan | None = None) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name and (parent is None or s.parent_span_id == parent.span_id)]


def traceparent(headers: dict[str, str]) -> tuple[str, str]:
    """(trace id, parent span id) of a W3C traceparent header."""
    version, trace_id, parent_id, _flags = headers["traceparent"].split("-")
    assert version == "00"
    return trace_id, parent_id


def test_an_agent_request_with_two_code_steps_and_tool_calls_is_one_linked_trace(traced: Traced) -> None:
    traced.upstream.script[:] = [Reply(tool_code=[CODE_WITH_TOOL, "print(6 * 7)"]),
                                 Reply(tool_calls=[("lookup", {"key": "de"})]),
                                 Reply("It is 42.")]
    traced.upstream.requests.clear()
    traced.upstream.headers.clear()
    traced.tools.headers.clear()
    response = httpx.post(traced.url + "/v1/chat/completions", timeout=60,
                          json={"model": "m", "messages": [{"role": "user", "content": "What is 6 times 7?"}]})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "It is 42."

    spans = trace_of(traced.receiver, "POST /v1/chat/completions")
    by_id = {s.span_id: s for s in spans}
    [http] = only(spans, "POST /v1/chat/completions")
    assert http.parent_span_id == "" and http.kind == "server"  # no traceparent sent: the request is the root
    assert http.attributes["http.route"] == "/v1/chat/completions" and http.attributes["http.response.status_code"] == 200
    assert http.resource["service.name"] == "sandlot-trace-test"
    [agent] = only(spans, "sandlot.agent", http)
    assert agent.attributes["sandlot.agent.stop_reason"] == "answer" and agent.attributes["sandlot.agent.steps"] == 2
    assert agent.attributes["sandlot.agent.model_calls"] == 3

    turns = sorted(only(spans, "sandlot.agent.turn", agent), key=lambda s: s.start_ns)
    assert [t.attributes["sandlot.turn.number"] for t in turns] == [1, 2, 3]
    usages = list(traced.upstream.usages)
    for turn, usage, headers in zip(turns, usages, traced.upstream.headers, strict=True):
        [chat] = only(spans, "chat m", turn)  # one upstream call per turn
        assert chat.kind == "client" and chat.attributes["gen_ai.request.model"] == "m"
        assert chat.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
        assert chat.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
        assert traceparent(headers) == (http.trace_id, chat.span_id)  # the model's server can join the trace

    # Turn 1: two code steps, each one session cell in the engine; the first calls the tool from its code.
    steps = sorted(only(spans, "sandlot.agent.step", turns[0]), key=lambda s: s.start_ns)
    assert [s.attributes["sandlot.step.number"] for s in steps] == [1, 2]
    runs = [only(spans, "sandlot.run", step) for step in steps]
    assert [len(r) for r in runs] == [1, 1]
    for [run] in runs:
        attributes = run.attributes
        assert attributes["sandlot.run.kind"] == "session" and attributes["sandlot.status"] == "ok"
        for key in ("sandlot.queue_wait_ms", "sandlot.cell_ms", "sandlot.cpu_ms", "sandlot.live.memory_bytes",
                    "sandlot.live.workspace_bytes"):
            assert isinstance(attributes[key], (int, float)), key
        assert attributes["sandlot.session.id"] == agent.attributes["sandlot.session.id"]
    assert runs[0][0].attributes["sandlot.tool_calls"] == 1 and runs[1][0].attributes["sandlot.tool_calls"] == 0
    [from_code] = only(spans, "execute_tool lookup", runs[0][0])
    assert from_code.attributes["sandlot.tool.status"] == "ok" and from_code.attributes["gen_ai.tool.name"] == "lookup"
    # Turn 2: the model called the tool itself; turn 3 answered.
    [direct] = only(spans, "execute_tool lookup", turns[1])
    assert only(spans, "sandlot.agent.step", turns[1]) == [] and only(spans, "sandlot.agent.step", turns[2]) == []
    # The tool's service got the trace context of each call's span.
    assert [traceparent(h) for h in traced.tools.headers] == [(http.trace_id, from_code.span_id),
                                                              (http.trace_id, direct.span_id)]
    # Every span of the request is in this one trace, and each one's parent is in it too.
    for span in spans:
        assert span is http or span.parent_span_id in by_id, span
        assert by_id.get(span.parent_span_id, http).start_ns <= span.start_ns


def test_the_clients_traceparent_is_the_parent_of_the_request_span(traced: Traced) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.post(traced.url + "/v1/execute", json={"code": "print(sum(range(10)))"}, timeout=30,
                          headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    assert response.status_code == 200 and response.json()["stdout"] == "45\n"

    spans = trace_of(traced.receiver, "POST /v1/execute", trace_id)
    [http] = only(spans, "POST /v1/execute")
    assert (http.trace_id, http.parent_span_id, http.kind) == (trace_id, parent_id, "server")
    [run] = only(spans, "sandlot.run", http)
    result = response.json()
    assert run.attributes["sandlot.run.kind"] == "execute" and run.attributes["sandlot.run.id"] == result["id"]
    assert run.attributes["sandlot.status"] == "ok" and run.attributes["sandlot.cell_ms"] == result["duration_ms"]
    assert run.attributes["sandlot.cpu_ms"] == result["usage"]["cpu_ms"]
    if result["usage"]["peak_memory_bytes"] is not None:
        assert run.attributes["sandlot.peak_memory_bytes"] == result["usage"]["peak_memory_bytes"]
    for key in ("sandlot.queue_wait_ms", "sandlot.sandbox_take_ms"):
        assert 0 <= run.attributes[key] < 10_000, key


def test_a_refused_request_is_a_failed_span_with_its_status(traced: Traced) -> None:
    trace_id = secrets.token_hex(16)
    response = httpx.post(traced.url + "/v1/execute", json={"code": 1}, timeout=30,
                          headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert response.status_code == 400
    [http] = only(trace_of(traced.receiver, "POST /v1/execute", trace_id), "POST /v1/execute")
    assert http.attributes["http.response.status_code"] == 400 and http.status_code != 2  # a client's mistake: not a failure


# ---- off: nothing loaded, nothing sent --------------------------------------------------

PROBE = """
import json, socket, sys, threading, time
import httpx, uvicorn
from sandlot import EngineConfig
from sandlot.server import ServerConfig, create_app
app = create_app(ServerConfig(engine=EngineConfig(preload=(), pool_size=1)))
sock = socket.socket(); sock.bind(("127.0.0.1", 0))
server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
thread.start()
while not server.started:
    time.sleep(0.02)
url = "http://127.0.0.1:%d" % sock.getsockname()[1]
ok = httpx.post(url + "/v1/execute", json={"code": "print(1)"}, headers={"traceparent": "00-%s-%s-01" % ("1" * 32, "2" * 16)},
                timeout=30).json()["status"] == "ok"
server.should_exit = True
thread.join(30)
heavy = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.proto",
                                                        "google.protobuf", "sandlot.tracing._")))
print("PROBE " + json.dumps({"ok": ok, "heavy": heavy}))
"""


def probe(**otel: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**env, **otel}, capture_output=True, text=True, timeout=120)
    line = next((line for line in done.stdout.splitlines() if line.startswith("PROBE ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    return result


def test_without_otel_variables_nothing_of_the_sdk_is_imported() -> None:
    # FastAPI itself imports the small `opentelemetry` API package; the SDK, the exporter, protobuf
    # and sandlot's own tracing side stay out of a server that was not asked for traces.
    assert probe() == {"ok": True, "heavy": []}
    with OtlpReceiver() as receiver:
        assert probe(OTEL_SDK_DISABLED="true", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint) == {"ok": True, "heavy": []}
        assert probe(OTEL_TRACES_EXPORTER="none", OTEL_SERVICE_NAME="x") == {"ok": True, "heavy": []}
        assert receiver.requests == 0
        on = probe(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="50")
        assert on["ok"] and "opentelemetry.sdk.trace" in on["heavy"] and "sandlot.tracing._otel" in on["heavy"]
        spans = receiver.wait_for(lambda spans: any(s.name == "POST /v1/execute" for s in spans))
        assert {s.trace_id for s in spans} == {"1" * 32}


def test_which_environments_ask_for_traces() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_SERVICE_NAME": "sandlot"})  # names the service, exports nothing
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})  # the SDK's default endpoint, localhost:4318
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing.wanted({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.enabled()  # this test process was never asked
