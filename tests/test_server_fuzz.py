"""Fuzz the HTTP API from its own OpenAPI description (schemathesis + hypothesis).

The property: nothing a client sends gets a 5xx, and every answer matches what
/openapi.json says about it (status codes, content types, body schemas). The
fuzzed code runs in real sandboxes of a dedicated server with small limits: a 2 s
timeout per run that a request may not raise above 3 s, and few sessions.

Operations that take a session id are pointed at a real session (random ids would
only ever meet the 404, which test_server.py covers), so the files API gets fuzzed
paths against a real workspace; deleting a session is fuzzed with random ids only,
and sessions the fuzzer creates are deleted at once, so the quota stays open.

Nothing is excluded. The agent endpoint (``/v1/chat/completions``, ``/v1/models``)
is fuzzed too, but this server has no upstream model configured, so only its
request validation and refusals are exercised (and nothing leaves the machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import running_server
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sandlot import EngineConfig, Limits
from sandlot._config import MiB
from sandlot.server import ServerConfig

FUZZ_LIMITS = Limits(timeout=2, cpu_time=2, memory=256 * MiB, pids=32, file_size=8 * MiB, workspace_size=16 * MiB,
                     tmp_size=16 * MiB, output_size=64 * 1024, rich_output_size=MiB)
FUZZ_MAX_LIMITS = Limits(timeout=3, cpu_time=3, memory=256 * MiB, pids=32, file_size=8 * MiB, workspace_size=16 * MiB,
                         tmp_size=16 * MiB, output_size=64 * 1024, rich_output_size=MiB)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server_url() -> Iterator[str]:
    config = ServerConfig(max_sessions_per_key=4, max_runs_per_key=8, max_batch_items=4, max_request_bytes=256 * 1024,
                          max_file_bytes=64 * 1024,
                          engine=EngineConfig(preload=(), pool_size=2, max_sandboxes=16, limits=FUZZ_LIMITS,
                                              max_limits=FUZZ_MAX_LIMITS))
    with running_server(config) as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_session(fuzz_server_url: str) -> str:
    session_id: str = httpx.post(f"{fuzz_server_url}/v1/sessions", timeout=30).json()["id"]
    return session_id


@pytest.fixture(scope="module")
def api_schema(fuzz_server_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_no_server_errors_and_answers_match_the_schema(case: Any, fuzz_server_url: str, fuzz_session: str) -> None:
    path_parameters = case.path_parameters or {}
    if "session_id" in path_parameters and not (case.method == "DELETE" and case.path == "/v1/sessions/{session_id}"):
        path_parameters["session_id"] = fuzz_session
    response = case.call_and_validate(base_url=fuzz_server_url, checks=CHECKS, timeout=30)
    if case.method == "POST" and case.path == "/v1/sessions" and response.status_code == 201:
        deleted = httpx.delete(f"{fuzz_server_url}/v1/sessions/{response.json()['id']}", timeout=30)
        assert deleted.status_code in (204, 404)  # 404: a tiny fuzzed idle_timeout already expired it

