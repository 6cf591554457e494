"""Cluster mode on a real three-node Ray cluster on this machine, served by real ``sandlot serve --ray``.

One cluster for the whole module (``ray.cluster_utils.Cluster``: a head and two workers, each with its own
resources), two front-end processes on loopback ports, and a shared data directory. The contract tests of
test_server.py that cover each route run against a front-end unchanged; the node-loss test runs last, as
it kills one node's raylet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sandlot.cluster import ray_env  # noqa: E402

ray_env.keep_on_loopback()  # before ray is imported
ray = pytest.importorskip("ray")  # the sandlot[ray] extra; the dev extra pulls it

from mcp.client import Client as McpClient  # noqa: E402
from test_mcp import exercise as exercise_mcp  # noqa: E402
from test_server import (  # noqa: E402,F401  # the contract tests, collected here against a cluster front-end
    assert_error,
    client,
    session,
    test_a_failing_cell_streams_an_error_event_then_done,
    test_accept_event_stream_also_streams,
    test_batch_items_for_one_session_run_in_order,
    test_batch_items_run_in_parallel_and_come_back_in_item_order,
    test_concurrent_calls_to_one_session_run_in_arrival_order,
    test_execute_places_files_and_env_and_keeps_no_state,
    test_execute_returns_a_full_result,
    test_files_round_trip,
    test_interrupt_stops_the_running_cell_and_keeps_the_session,
    test_notebook_is_valid_nbformat_4,
    test_session_lifecycle,
    test_streaming_sends_stdout_then_output_then_done,
    test_unknown_sessions_are_404_everywhere,
    test_user_code_failure_is_data_not_an_http_error,
)

from sandlot.testing.ray_cluster import LocalCluster, listening_beyond_loopback, local_cluster, serve_command  # noqa: E402
from sandlot.testing.serving import free_port  # noqa: E402
from sandlot.testing.upstream import Reply, ScriptedUpstream  # noqa: E402

pytestmark = pytest.mark.timeout(240)
FRONT_ENDS = 2


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    with local_cluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def scripted_model() -> Iterator[ScriptedUpstream]:
    """The agent endpoint's model, for both front-ends (each test gives it its script)."""
    with ScriptedUpstream([]) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def front_ends(ray_cluster: LocalCluster, scripted_model: ScriptedUpstream,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    logs = tmp_path_factory.mktemp("front-ends")
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    urls = []
    try:
        for index in range(FRONT_ENDS):
            port = free_port()
            log = logs / f"front-end-{index}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(serve_command(ray_cluster.address, port, ray_cluster.data_dir,
                                                      "--pool-size", "2", "--max-sandboxes", "24",
                                                      "--model-url", scripted_model.base_url, "--model", "m",
                                                      "--action-format", "tool_calls"),
                                        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "SANDLOT_DATA_DIR": ""})
            procs.append((proc, log))
            urls.append(f"http://127.0.0.1:{port}")
        for (proc, log), url in zip(procs, urls, strict=True):
            deadline = time.monotonic() + 180
            while True:
                assert proc.poll() is None, f"the front-end exited: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"the front-end did not become healthy: {log.read_text()[-3000:]}"
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200 and \
                            len(httpx.get(f"{url}/v1/cluster", timeout=5).json()["nodes"]) == 3:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
        yield urls
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server_url(front_ends: list[str]) -> str:
    """What test_server.py's contract tests talk to: the first front-end."""
    return front_ends[0]


def _cluster(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/v1/cluster", timeout=10).json()
    return body


def _node_of(session_id: str) -> str:
    directory = ray.get_actor("sandlot-directory", namespace="sandlot")
    placed = ray.get(directory.lookup.remote(session_id))
    assert placed is not None
    node: str = placed[0]
    return node


def test_ray_stays_on_loopback(front_ends: list[str]) -> None:
    assert listening_beyond_loopback() == []


def test_cluster_mode_serves_the_default_environment_only(front_ends: list[str]) -> None:
    url = front_ends[0]
    for path, body in [("/v1/execute", {"code": "1", "environment": "science"}),
                       ("/v1/sessions", {"environment": "science"}),
                       ("/v1/batch", {"items": [{"code": "1", "environment": "science"}]})]:
        response = httpx.post(f"{url}{path}", json=body, timeout=30)
        assert response.status_code == 400, (path, response.text)
        assert "cluster mode serves only the 'default' environment" in response.text
    listed = httpx.get(f"{url}/v1/environments", timeout=10).json()["environments"]
    assert [e["name"] for e in listed] == ["default"] and listed[0]["default"] is True
    ran = httpx.post(f"{url}/v1/execute", json={"code": "print(1)", "environment": "default"}, timeout=30).json()
    assert ran["stdout"] == "1\n"
    made = httpx.post(f"{url}/v1/sessions", json={"environment": "default"}, timeout=30).json()
    assert made["environment"] == "default"
    httpx.delete(f"{url}/v1/sessions/{made['id']}", timeout=30)


def test_cluster_route_lists_every_node_with_its_engine(front_ends: list[str], ray_cluster: LocalCluster) -> None:
    body = _cluster(front_ends[0])
    assert {n["id"] for n in body["nodes"]} == {node.node_id for node in ray_cluster.nodes}
    for node in body["nodes"]:
        assert node["healthy"] is True and node["lost"] is False
        assert {"sandboxes", "sessions", "pool_ready"} <= node.keys()
    metrics = httpx.get(f"{front_ends[0]}/metrics").text
    assert all(f'sandlot_node_healthy{{node="{n["id"]}"}} 1.0' in metrics for n in body["nodes"])


def test_runs_and_sessions_land_on_more_than_one_node(front_ends: list[str]) -> None:
    url = front_ends[0]
    before = {n["id"]: n["runs"] for n in _cluster(url)["nodes"]}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        bodies = list(pool.map(lambda _: httpx.post(f"{url}/v1/execute", json={"code": "import time; time.sleep(0.3); print(1)"},
                                                    timeout=60).json(), range(6)))
    assert all(b["stdout"] == "1\n" for b in bodies)
    time.sleep(1.2)  # the front-end's next look at the nodes
    after = {n["id"]: n["runs"] for n in _cluster(url)["nodes"]}
    assert sum(1 for node, runs in after.items() if runs > before.get(node, 0)) >= 2
    made = [httpx.post(f"{url}/v1/sessions", json={}, timeout=60).json()["id"] for _ in range(6)]
    assert len({_node_of(sid) for sid in made}) >= 2
    for sid in made:
        assert httpx.delete(f"{url}/v1/sessions/{sid}", timeout=60).status_code == 204


def test_a_sessions_cells_all_run_on_its_node(front_ends: list[str]) -> None:
    url = front_ends[0]
    sid = httpx.post(f"{url}/v1/sessions", json={}, timeout=60).json()["id"]
    node = _node_of(sid)
    httpx.post(f"{url}/v1/sessions/{sid}/execute", json={"code": "n = 0"}, timeout=60)
    for _ in range(5):
        body = httpx.post(f"{url}/v1/sessions/{sid}/execute", json={"code": "n += 1; n"}, timeout=60).json()
        assert _node_of(sid) == node
    assert body["outputs"][-1]["data"]["text/plain"] == "5"  # one interpreter all along: one node
    httpx.delete(f"{url}/v1/sessions/{sid}", timeout=60)


def test_two_front_ends_serve_the_same_sessions(front_ends: list[str]) -> None:
    first, second = front_ends
    sid = httpx.post(f"{first}/v1/sessions", json={}, timeout=60).json()["id"]
    assert httpx.post(f"{first}/v1/sessions/{sid}/execute", json={"code": "x = 'from the first'"}, timeout=60).status_code == 200
    body = httpx.post(f"{second}/v1/sessions/{sid}/execute", json={"code": "print(x)"}, timeout=60).json()
    assert body["stdout"] == "from the first\n"
    assert httpx.put(f"{second}/v1/sessions/{sid}/files/note.txt", content=b"hello").status_code == 201
    assert httpx.get(f"{first}/v1/sessions/{sid}/files/note.txt").content == b"hello"
    deadline = time.monotonic() + 5  # the second front-end's list follows the directory within a poll
    while sid not in [s["id"] for s in httpx.get(f"{second}/v1/sessions").json()["sessions"]]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert httpx.delete(f"{second}/v1/sessions/{sid}", timeout=60).status_code == 204
    # A call on it anywhere is 404 at once (its node no longer has it); the first front-end's own view
    # of the session follows within a poll of the directory.
    assert_error(httpx.post(f"{first}/v1/sessions/{sid}/execute", json={"code": "1"}, timeout=60), 404, "not_found")
    deadline = time.monotonic() + 5
    while httpx.get(f"{first}/v1/sessions/{sid}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_mcp_serves_every_tool_from_the_cluster(front_ends: list[str], mode: str) -> None:
    """The MCP endpoint's whole exercise of test_mcp.py, against a cluster front-end."""
    async def main() -> None:
        async with McpClient(f"{front_ends[0]}/mcp", mode=mode) as mcp:
            await exercise_mcp(mcp)

    asyncio.run(main())


def test_the_agent_endpoint_runs_its_code_on_the_cluster(front_ends: list[str],
                                                         scripted_model: ScriptedUpstream) -> None:
    def answer(body: dict[str, Any]) -> Reply:
        shown = body["messages"][-1]["content"]
        return Reply(f"The answer is {shown.strip()}.")

    scripted_model.script = [Reply(tool_code="total = sum(range(10))"), Reply(tool_code="print(total * 2)"), answer]
    scripted_model.requests.clear()
    with openai.OpenAI(base_url=front_ends[1] + "/v1", api_key="none", max_retries=0, timeout=60) as agent:
        response = agent.chat.completions.create(model="m", messages=[{"role": "user", "content": "Twice 0..9?"}])
    assert response.choices[0].message.content == "The answer is 90."
    extra = response.model_extra or {}
    steps = extra["sandlot"]["steps"]
    assert [(s["code"], s["status"], s["stdout"]) for s in steps] == [
        ("total = sum(range(10))", "ok", ""), ("print(total * 2)", "ok", "90\n")]  # state kept between steps
    assert extra["sandlot"]["stop_reason"] == "answer" and scripted_model.remaining == 0


def test_losing_a_node_moves_its_sessions_with_files_and_state(front_ends: list[str], ray_cluster: LocalCluster) -> None:
    """Runs last in this module: it kills a worker node's raylet (not the head, which the drivers use)."""
    url = front_ends[0]
    attached = {_cluster(u)["front_end_node"] for u in front_ends} | {ray.get_runtime_context().get_node_id()}
    victims = [n for n in ray_cluster.nodes if n.node_id not in attached]
    assert victims, "every node has a driver on it"
    victim = victims[0]
    # The session table lives on the head node, so losing a worker node cannot take it along.
    directory = ray.get_actor("sandlot-directory", namespace="sandlot")
    assert ray.get(directory.node.remote()) == ray_cluster.head_node_id != victim.node_id
    on_victim: list[str] = []
    made = []
    while len(on_victim) < 2:
        sid = httpx.post(f"{url}/v1/sessions", json={}, timeout=60).json()["id"]
        made.append(sid)
        if _node_of(sid) == victim.node_id:
            on_victim.append(sid)
        assert len(made) < 30
    for index, sid in enumerate(on_victim):
        assert httpx.put(f"{url}/v1/sessions/{sid}/files/kept.txt", content=f"file {index}".encode()).status_code == 201
        body = httpx.post(f"{url}/v1/sessions/{sid}/execute", json={"code": f"x = {40 + index}"}, timeout=60).json()
        assert body["status"] == "ok"
    time.sleep(1.0)  # each cell's state is saved just after it (snapshots every cell)

    with concurrent.futures.ThreadPoolExecutor(14) as pool:
        in_flight = pool.submit(httpx.post, f"{url}/v1/sessions/{on_victim[0]}/execute",
                                json={"code": "import time; time.sleep(30)"}, timeout=60)
        one_shots = [pool.submit(httpx.post, f"{url}/v1/execute", json={"code": "import time; time.sleep(6)"}, timeout=60)
                     for _ in range(12)]
        time.sleep(2.0)
        killed_at = time.monotonic()
        ray_cluster.remove(victim)
        lost = in_flight.result()
        assert_error(lost, 503, "node_lost")
        assert "Retry-After" in lost.headers and "cell" in lost.json()["error"]["message"]
        answers = [f.result() for f in one_shots]
    assert {a.status_code for a in answers} <= {200, 503}
    assert any(a.status_code == 503 and a.json()["error"]["type"] == "node_lost" for a in answers)

    for index, sid in enumerate(on_victim):
        for base in front_ends:
            body = None
            while time.monotonic() - killed_at < 30:
                response = httpx.post(f"{base}/v1/sessions/{sid}/execute", json={"code": "x + 1"}, timeout=60)
                if response.status_code == 200:
                    body = response.json()
                    break
                assert response.status_code == 503, response.text
                time.sleep(0.2)
            assert body is not None, "the session did not come back"
            assert body["status"] == "ok" and body["outputs"][-1]["data"]["text/plain"] == str(41 + index)
        assert _node_of(sid) != victim.node_id
        assert httpx.get(f"{url}/v1/sessions/{sid}/files/kept.txt").content == f"file {index}".encode()
    recovered_in = time.monotonic() - killed_at
    assert recovered_in < 30
    first = httpx.post(f"{front_ends[1]}/v1/sessions/{on_victim[1]}/execute", json={"code": "1"}, timeout=60).json()
    assert first["status"] == "ok"
    notebook = httpx.get(f"{url}/v1/sessions/{on_victim[0]}/notebook").json()
    assert any("time.sleep(30)" in "".join(c["source"]) for c in notebook["cells"])  # the lost cell is recorded
    nodes = {n["id"]: n for n in _cluster(url)["nodes"]}
    assert nodes[victim.node_id]["lost"] is True and nodes[victim.node_id]["healthy"] is False
    for sid in made:
        httpx.delete(f"{url}/v1/sessions/{sid}", timeout=60)
