"""The server answers over real HTTP (the detailed route tests live in test_server.py)."""

from __future__ import annotations

import httpx


def test_execute_over_http(server_url: str) -> None:
    response = httpx.post(f"{server_url}/v1/execute", json={"code": "print(1)"})
    assert response.status_code == 200
    assert response.json()["stdout"] == "1\n"


def test_healthz(server_url: str) -> None:
    assert httpx.get(f"{server_url}/healthz").json()["status"] == "ok"
