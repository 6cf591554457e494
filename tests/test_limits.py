"""Per-run limit overrides: each limit can be changed for one run or session, up to the server's maximum."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandlot import EngineConfig, InvalidRequestError, Limits, Sandlot
from sandlot._config import MiB

DEFAULTS = Limits(timeout=15, memory=256 * MiB, pids=32, file_size=8 * MiB, workspace_size=16 * MiB,
                  tmp_size=16 * MiB, output_size=64 * 1024)
MAXIMUM = Limits(timeout=60, memory=1024 * MiB, pids=64, file_size=64 * MiB, workspace_size=64 * MiB,
                 tmp_size=64 * MiB, output_size=1 * MiB)


@pytest.fixture(scope="module")
def sl() -> Iterator[Sandlot]:
    config = EngineConfig(preload=(), pool_size=2, limits=DEFAULTS, max_limits=MAXIMUM)
    with Sandlot(config) as engine:
        yield engine


GROW = "x = []\nfor _ in range({n}):\n    x.append(b'x' * (16 << 20))\nprint('grew', len(x) * 16, 'MiB')"


def test_memory_can_be_lowered_and_raised_per_run(sl: Sandlot) -> None:
    assert sl.execute(GROW.format(n=8), limits={"memory": 64 * MiB}).status == "memory"  # 128 MiB > 64
    raised = sl.execute(GROW.format(n=24), limits={"memory": 768 * MiB})  # 384 MiB > the default 256
    assert raised.status == "ok", raised.stderr
    assert sl.execute(GROW.format(n=24)).status == "memory"  # the next run is back to the default


def test_pids_per_run(sl: Sandlot) -> None:
    code = ("import os, time, json\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    print(json.dumps(n))")
    assert json.loads(sl.execute(code, limits={"pids": 12}).stdout) < 12
    assert 12 <= json.loads(sl.execute(code, limits={"pids": 48}).stdout) < 48


def test_file_and_workspace_size_per_run(sl: Sandlot) -> None:
    write = "import errno\ntry:\n    open('f', 'wb').write(b'x' * ({mib} << 20))\n    print('ok')\n" \
            "except OSError as e:\n    print(errno.errorcode[e.errno])"
    assert sl.execute(write.format(mib=2), limits={"file_size": MiB}).stdout == "EFBIG\n"
    assert sl.execute(write.format(mib=4), limits={"workspace_size": 2 * MiB}).stdout == "ENOSPC\n"
    assert sl.execute(write.format(mib=24), limits={"workspace_size": 32 * MiB, "file_size": 32 * MiB}).stdout == "ok\n"


def test_output_size_per_run(sl: Sandlot) -> None:
    result = sl.execute("print('y' * 10_000)", limits={"output_size": 2048})
    assert result.truncated and len(result.stdout) <= 2048


def test_overrides_beyond_the_maximum_or_unknown_are_refused(sl: Sandlot) -> None:
    for bad in ({"memory": 2048 * MiB}, {"pids": 1000}, {"nonsense": 1}, {"tmp_size": MiB}, {"memory": -1}):
        with pytest.raises(InvalidRequestError):
            sl.execute("1", limits=bad)


def test_a_session_keeps_its_limits_across_a_restart(sl: Sandlot) -> None:
    with sl.session(limits={"memory": 512 * MiB}) as session:
        assert session.execute(GROW.format(n=20)).status == "ok"  # 320 MiB: over the default, under 512
        assert session.execute(GROW.format(n=40)).status == "memory"  # killed: the session restarts
        again = session.execute(GROW.format(n=20))
        assert again.restarted and again.status == "ok"


def test_limits_over_http() -> None:
    import httpx
    from conftest import running_server

    from sandlot.server import ServerConfig

    config = ServerConfig(engine=EngineConfig(preload=(), pool_size=1, limits=DEFAULTS, max_limits=MAXIMUM))
    with running_server(config) as url, httpx.Client(base_url=url) as http:
        low = http.post("/v1/execute", json={"code": GROW.format(n=8), "limits": {"memory": 64 * MiB}}).json()
        assert low["status"] == "memory"
        assert http.post("/v1/execute", json={"code": "1", "limits": {"memory": 4096 * MiB}}).status_code == 400
        assert http.post("/v1/execute", json={"code": "1", "limits": {"tmp_size": MiB}}).status_code == 400
        assert http.post("/v1/execute", json={"code": "1", "stream": True, "limits": {"pids": 10_000}}).status_code == 400
        session = http.post("/v1/sessions", json={"limits": {"output_size": 1024}}).json()
        cell = http.post(f"/v1/sessions/{session['id']}/execute", json={"code": "print('z' * 5000)"}).json()
        assert cell["truncated"] is True


def test_limits_below_what_a_sandbox_needs_are_refused(sl: Sandlot) -> None:
    # Found by the API fuzzer: these used to reach the sandbox, which could not start (a 500).
    for bad in ({"memory": 1}, {"pids": 1}, {"address_space": 1}, {"open_files": 1}, {"workspace_size": 1}):
        with pytest.raises(InvalidRequestError):
            sl.execute("1", limits=bad)
