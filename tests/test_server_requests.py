"""What the server says about a request it refuses: the field, the place, what was probably meant.

Unknown fields on sandlot's own routes are a 400 naming the field (a misspelt ``timeoutt`` must not
run with the default timeout unnoticed); the OpenAI-compatible endpoint keeps accepting fields it
does not know, as OpenAI's API does. A body that is not JSON is a 400 that says where it breaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as c:
        yield c


@pytest.fixture
def session(client: httpx.Client) -> Iterator[str]:
    session_id: str = client.post("/v1/sessions").json()["id"]
    yield session_id
    client.delete(f"/v1/sessions/{session_id}")


def refusal(response: httpx.Response) -> str:
    """The message of a 400 with the contract's error body."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["error"] and body["error"]["type"] == "invalid_request", body
    message: str = body["error"]["message"]
    return message


def test_a_misspelt_field_is_400_naming_it_and_the_field_meant(client: httpx.Client) -> None:
    message = refusal(client.post("/v1/execute", json={"code": "1", "timeoutt": 5}))
    assert "unknown field 'timeoutt'" in message and "did you mean 'timeout'?" in message, message
    assert "code" in message  # the known fields are listed


@pytest.mark.parametrize(("path", "payload", "where"), [
    ("/v1/sessions", {"timeout": 5, "idle": 3}, "'idle'"),
    ("/v1/batch", {"items": [{"code": "1"}], "parallel": True}, "'parallel'"),
    ("/v1/batch", {"items": [{"code": "1"}, {"code": "2", "sesion_id": "x"}]}, "items.1: unknown field 'sesion_id'"),
    ("/v1/execute", {"code": "1", "files": [{"path": "a", "content": "", "mode": 7}]}, "files.0: unknown field 'mode'"),
    ("/v1/execute", {"code": "1", "limits": {"memroy": 1}}, "limits: unknown field 'memroy'"),
], ids=["session-create", "batch", "batch-item", "file", "limits"])
def test_unknown_fields_are_refused_on_every_sandlot_route(client: httpx.Client, path: str, payload: dict[str, Any],
                                                           where: str) -> None:
    assert where in refusal(client.post(path, json=payload))


def test_an_unknown_field_in_a_session_cell_is_refused_and_nothing_runs(client: httpx.Client, session: str) -> None:
    message = refusal(client.post(f"/v1/sessions/{session}/execute", json={"code": "x = 1", "stream ": True}))
    assert "unknown field 'stream '" in message and "did you mean 'stream'?" in message
    assert client.get(f"/v1/sessions/{session}").json()["execution_count"] == 0


def test_the_known_fields_still_run(client: httpx.Client) -> None:
    response = client.post("/v1/execute", json={"code": "print(1)", "timeout": 5, "env": {}, "files": [], "stream": False})
    assert response.status_code == 200 and response.json()["stdout"] == "1\n"


def test_the_openai_endpoint_accepts_fields_it_does_not_know(client: httpx.Client) -> None:
    # OpenAI's API takes many fields and newer SDKs send new ones; refused, they would break those SDKs.
    # This server has no upstream model, so the request gets as far as looking for one: a 404, not a 400.
    body = {"model": "any", "messages": [{"role": "user", "content": "hi"}], "user": "u1", "logprobs": False,
            "a_field_from_a_newer_sdk": {"x": 1}}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 404, response.text
    assert "model" in response.json()["error"]["message"]


@pytest.mark.parametrize(("body", "where"), [
    (b'{"code": "1",}', "line 1, column 14"),
    (b'{\n  "code": "1"\n  "timeout": 5\n}', "line 3, column 3"),
    (b"{not json", "line 1, column 2"),
], ids=["trailing-comma", "missing-comma", "garbage"])
def test_json_syntax_errors_say_what_and_where(client: httpx.Client, body: bytes, where: str) -> None:
    message = refusal(client.post("/v1/execute", content=body, headers=JSON))
    assert message.startswith("the body is not valid JSON: "), message
    assert where in message, message


def test_type_errors_name_the_field(client: httpx.Client) -> None:
    message = refusal(client.post("/v1/execute", json={"code": "1", "timeout": "5"}))
    assert message.startswith("timeout: "), message
