"""Named environments and module policy, end to end: a real server on loopback, real sandboxes, a real
virtualenv built offline by ``sandlot env build`` from a wheel made here."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import HOST_SECRET, running_server

from sandlot import EngineConfig, Limits
from sandlot._config import EnvironmentSpec, ModulePolicy
from sandlot._errors import InvalidRequestError, SetupError
from sandlot.client import AsyncClient, Client
from sandlot.environments import EnvironmentRegistry, parse_environment, parse_environments
from sandlot.server import ServerConfig, load_config

PACKAGE = "sandlot_tinypkg"
ZYGOTE_MARK = "from sandlot_runtime.zygote import main"


def make_wheel(directory: Path) -> Path:
    """A pure-Python wheel by hand (a zip with its metadata and RECORD): no build backend, no network."""
    files = {f"{PACKAGE}/__init__.py": b"VALUE = 7\n",
             f"{PACKAGE}_broken/__init__.py": b"raise RuntimeError('broken on purpose')\n",
             f"{PACKAGE}-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: sandlot-tinypkg\nVersion: 1.0\n",
             f"{PACKAGE}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                                               b"Tag: py3-none-any\n"}
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for name, data in files.items()]
    files[f"{PACKAGE}-1.0.dist-info/RECORD"] = ("\n".join([*record, f"{PACKAGE}-1.0.dist-info/RECORD,,"]) + "\n").encode()
    wheel = directory / f"{PACKAGE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def sandlot_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "sandlot.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sandlot env build``: a venv (without the server's packages) holding only the wheel, built offline."""
    root = tmp_path_factory.mktemp("envs")
    wheels = root / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    requirements = root / "requirements.txt"
    requirements.write_text("sandlot-tinypkg==1.0\n")
    done = sandlot_cli("env", "build", "tiny", "-r", str(requirements), "--dir", str(root / "tiny"),
                       "--no-index", "--find-links", str(wheels), "--installer", "pip")
    assert done.returncode == 0, done.stderr
    assert f"[engine.environments.tiny]\n    python = \"{root / 'tiny'}\"" in done.stdout
    return root / "tiny"


def config(venv: Path, data_dir: Path) -> ServerConfig:
    return ServerConfig(engine=EngineConfig(
        preload=(), pool_size=1, data_dir=str(data_dir), modules=ModulePolicy(deny=("ctypes",)),
        environments={
            "tiny": EnvironmentSpec(python=str(venv), preload=(PACKAGE,), pool_size=1,
                                    modules=ModulePolicy(deny=("sqlite3", "xml.dom"))),
            "lazy": EnvironmentSpec(python=sys.executable, preload=("json",), pool_size=1),
            "allowlisted": EnvironmentSpec(python=sys.executable, pool_size=0, modules=ModulePolicy(allow=("numpy",))),
            "broken": EnvironmentSpec(python=str(venv), preload=(f"{PACKAGE}_broken",)),  # raises when imported
        }))


@pytest.fixture(scope="module")
def url(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(config(venv, tmp_path_factory.mktemp("data"))) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def run(client: httpx.Client, code: str, **body: object) -> dict[str, object]:
    response = client.post("/v1/execute", json={"code": code, **body})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def zygotes() -> list[int]:
    """The zygotes this process started (the in-process servers': one per started environment of each)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and ZYGOTE_MARK in cmdline:
            found.append(int(entry))
    return found


# ---- what the server offers --------------------------------------------------------------------

def test_an_environment_nobody_used_has_no_zygote_until_its_first_run(client: httpx.Client) -> None:
    lanes = client.get("/healthz").json()["environments"]
    assert lanes["lazy"] == {"state": "unused", "pid": None, "restarts": 0, "last_error": None, "pool_ready": 0,
                             "pool_target": 0}
    # Other in-process servers of the test run have zygotes of their own: count this one's by what changes.
    started = [lane["pid"] for lane in lanes.values() if lane["pid"] is not None]
    assert set([*started, client.get("/healthz").json()["zygote"]["pid"]]) <= set(zygotes())
    before = len(zygotes())

    assert run(client, "import sys; print('json' in sys.modules)", environment="lazy")["stdout"] == "True\n"
    lane = client.get("/healthz").json()["environments"]["lazy"]
    assert lane["state"] == "up" and lane["pid"] in zygotes()
    assert len(zygotes()) == before + 1
    deadline = time.monotonic() + 20
    while client.get("/healthz").json()["environments"]["lazy"]["pool_ready"] < 1:  # then it stays warm
        assert time.monotonic() < deadline, "the lane's pool did not refill"
        time.sleep(0.05)
    metrics = client.get("/metrics").text
    assert 'sandlot_environment_zygote_up{environment="lazy"} 1.0' in metrics


def test_environments_are_listed_with_their_python_and_preloads(client: httpx.Client, venv: Path) -> None:
    listed = {e["name"]: e for e in client.get("/v1/environments").json()["environments"]}
    assert list(listed) == ["default", "tiny", "lazy", "allowlisted", "broken"]
    assert listed["default"]["default"] is True and listed["tiny"]["default"] is False
    assert listed["default"]["preload"] == [] and listed["tiny"]["preload"] == [PACKAGE]
    assert listed["tiny"]["executable"] == str(venv / "bin" / "python")
    assert listed["tiny"]["python"] == platform.python_version()
    assert listed["tiny"]["modules"] == {"deny": ["sqlite3", "xml.dom"], "allow": None}
    assert "distributions" not in listed["tiny"] or listed["tiny"]["distributions"] is None

    with_dists = {e["name"]: e for e in client.get("/v1/environments", params={"distributions": "true"}).json()[
        "environments"]}
    tiny = {d["name"]: d["version"] for d in with_dists["tiny"]["distributions"]}
    default = {d["name"] for d in with_dists["default"]["distributions"]}
    assert tiny.get("sandlot-tinypkg") == "1.0" and "sandlot-tinypkg" not in default
    assert "fastapi" in default and "fastapi" not in tiny  # the venv does not see the server's packages


def test_two_environments_with_different_preloads_run_side_by_side(client: httpx.Client, venv: Path) -> None:
    code = (f"import sys; print({PACKAGE!r} in sys.modules, sys.prefix)\n"
            f"import {PACKAGE}; print({PACKAGE}.VALUE)")
    results: dict[str, dict[str, object]] = {}

    def one(name: str | None) -> None:
        results[str(name)] = run(client, code, **({"environment": name} if name else {}))

    threads = [threading.Thread(target=one, args=(name,)) for name in (None, "tiny", "default")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["tiny"]["status"] == "ok"
    assert results["tiny"]["stdout"] == f"True {venv}\n7\n"  # preloaded before the run began
    for name in ("None", "default"):
        assert results[name]["status"] == "error"
        assert str(results[name]["stdout"]).startswith("False ")
        assert results[name]["error"]["ename"] == "ModuleNotFoundError"  # type: ignore[index]

    batch = client.post("/v1/batch", json={"items": [
        {"code": f"import sys; print({PACKAGE!r} in sys.modules)", "environment": "tiny"},
        {"code": f"import sys; print({PACKAGE!r} in sys.modules)"}]})
    assert batch.status_code == 200, batch.text
    assert [r["stdout"] for r in batch.json()["results"]] == ["True\n", "False\n"]


def test_the_python_clients_name_environments(url: str) -> None:
    with Client(url) as c:
        assert [e["name"] for e in c.environments()][:2] == ["default", "tiny"]
        assert c.execute(f"import {PACKAGE}; print({PACKAGE}.VALUE)", environment="tiny").stdout == "7\n"
        with c.session(environment="tiny") as session:
            assert session.info().environment == "tiny"
            assert session.execute(f"print({PACKAGE!r} in __import__('sys').modules)").stdout == "True\n"
        with pytest.raises(InvalidRequestError, match="unknown environment 'nope'"):
            c.execute("1", environment="nope")

    async def from_async() -> tuple[list[dict[str, object]], str]:
        async with AsyncClient(url) as ac:
            listed = await ac.environments(distributions=True)
            result = await ac.execute(f"import {PACKAGE}; print({PACKAGE}.VALUE)", environment="tiny")
            return listed, result.stdout

    listed, stdout = asyncio.run(from_async())
    assert stdout == "7\n"
    assert any(d["name"] == "sandlot-tinypkg" for d in listed[1]["distributions"])  # type: ignore[attr-defined]


def test_an_unknown_environment_is_a_400_naming_the_known_ones(client: httpx.Client) -> None:
    known = "default, tiny, lazy, allowlisted, broken"
    for path, body in [("/v1/execute", {"code": "1", "environment": "nope"}),
                       ("/v1/execute", {"code": "1", "environment": "nope", "stream": True}),
                       ("/v1/sessions", {"environment": "nope"}),
                       ("/v1/batch", {"items": [{"code": "1"}, {"code": "1", "environment": "nope"}]})]:
        response = client.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert "unknown environment 'nope'" in response.text and known in response.text


def test_a_named_environments_sandbox_is_contained_like_any_other(client: httpx.Client) -> None:
    code = ("import os, socket\nseen = []\n"
            "try:\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\nexcept OSError as exc:\n    seen.append('no inet')\n"
            "try:\n    open('/etc/shadow')\nexcept OSError:\n    seen.append('no shadow')\n"
            "seen.append(os.getuid() != 0)\nseen.append(repr(dict(os.environ)))\n"
            "print(seen)")
    for environment in ("tiny", "lazy"):
        result = run(client, code, environment=environment)
        assert result["status"] == "ok", result
        assert str(result["stdout"]).startswith("['no inet', 'no shadow', True, "), result["stdout"]
        assert HOST_SECRET not in str(result["stdout"])


def test_a_denied_module_raises_the_documented_import_error(client: httpx.Client) -> None:
    code = ("import importlib, json\nrefused = []\n"
            "for how in ('import sqlite3', 'import xml.dom.minidom', 'from xml import dom', "
            "'importlib.import_module(\"sqlite3\")', 'importlib.import_module(\"xml.dom\")'):\n"
            "    try:\n        exec(how)\n    except ImportError as exc:\n        refused.append(str(exc))\n"
            "import xml.etree.ElementTree\nprint(json.dumps(refused))")
    result = run(client, code, environment="tiny")
    assert result["status"] == "ok", result
    refused = json.loads(str(result["stdout"]))
    assert len(refused) == 5
    assert refused[0] == "import of 'sqlite3' is refused by the module policy of environment 'tiny' (it denies 'sqlite3')"
    assert all("module policy of environment 'tiny'" in message for message in refused)

    plain = run(client, "import sqlite3", environment="tiny")
    assert plain["status"] == "error" and plain["error"]["ename"] == "ImportError"  # type: ignore[index]
    assert run(client, "import sqlite3; print('ok')")["stdout"] == "ok\n"  # the default environment allows it
    default = run(client, "import ctypes")  # ... and has a policy of its own
    assert "module policy of environment 'default' (it denies 'ctypes')" in str(default["error"])
    loaded = run(client, "import sys, importlib\nprint('ctypes' in sys.modules)\nimportlib.import_module('ctypes')")
    assert loaded["stdout"] == "True\n"  # the runtime itself uses ctypes: loaded, and still refused by name
    assert "it denies 'ctypes'" in str(loaded["error"])

    allowlisted = run(client, "import json, collections\nimport pandas", environment="allowlisted")
    assert allowlisted["status"] == "error"
    assert "environment 'allowlisted' (it allows only the standard library and numpy)" in str(allowlisted["error"])


def test_a_lanes_dead_zygote_is_that_lanes_problem(client: httpx.Client) -> None:
    assert run(client, "1", environment="tiny")["status"] == "ok"
    lane = client.get("/healthz").json()["environments"]["tiny"]
    os.kill(lane["pid"], signal.SIGKILL)
    health = client.get("/healthz")
    assert health.status_code == 200  # the default environment serves on
    assert run(client, "print(1)")["stdout"] == "1\n"
    deadline = time.monotonic() + 30
    while True:
        lane_now = client.get("/healthz").json()["environments"]["tiny"]
        if lane_now["state"] == "up" and lane_now["restarts"] == lane["restarts"] + 1:
            break
        assert time.monotonic() < deadline, lane_now
        time.sleep(0.05)
    assert run(client, f"import {PACKAGE}; print({PACKAGE}.VALUE)", environment="tiny")["stdout"] == "7\n"


def test_an_environment_whose_zygote_cannot_start_is_a_503_naming_it(client: httpx.Client) -> None:
    for _ in range(2):  # each request tries again (the operator may have fixed the venv meanwhile)
        response = client.post("/v1/execute", json={"code": "1", "environment": "broken"})
        assert response.status_code == 503, response.text
        assert "environment 'broken': the zygote did not start" in response.json()["error"]["message"]
    lane = client.get("/healthz").json()["environments"]["broken"]
    assert lane["state"] == "failed" and lane["pid"] is None and "did not start" in lane["last_error"]
    assert client.get("/healthz").status_code == 200
    assert run(client, "print(2)")["stdout"] == "2\n"


# ---- sessions ------------------------------------------------------------------------------------

def test_a_session_remembers_its_environment_across_a_restart(venv: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_server(config(venv, data_dir)) as base, httpx.Client(base_url=base, timeout=60) as c:
        created = c.post("/v1/sessions", json={"environment": "tiny"})
        assert created.status_code == 201, created.text
        session = created.json()
        assert session["environment"] == "tiny"
        cell = c.post(f"/v1/sessions/{session['id']}/execute", json={"code": f"import {PACKAGE}\nx = 41"})
        assert cell.json()["status"] == "ok", cell.text
        mismatch = c.post("/v1/batch", json={"items": [{"code": "1", "session_id": session["id"],
                                                         "environment": "default"}]})
        assert mismatch.status_code == 400 and "runs in environment 'tiny'" in mismatch.text
        plain = c.post("/v1/sessions", json={}).json()
        assert plain["environment"] == "default"
        forked = c.post(f"/v1/sessions/{session['id']}/fork").json()
        assert forked["environment"] == "tiny"
        archive = c.get(f"/v1/sessions/{session['id']}/archive")
        assert archive.status_code == 200
        imported = c.post("/v1/sessions/import", content=archive.content,
                          headers={"content-type": "application/octet-stream"})
        assert imported.status_code == 201, imported.text
        assert imported.json()["environment"] == "tiny"
        cell = c.post(f"/v1/sessions/{imported.json()['id']}/execute",
                      json={"code": f"import sys; print(x, {PACKAGE!r} in sys.modules)"}).json()
        assert cell["stdout"] == "41 True\n", cell

    with running_server(config(venv, data_dir)) as base, httpx.Client(base_url=base, timeout=60) as c:
        again = c.get(f"/v1/sessions/{session['id']}").json()
        assert again["environment"] == "tiny" and again["state"] == "paused"
        assert c.get(f"/v1/sessions/{plain['id']}").json()["environment"] == "default"
        cell = c.post(f"/v1/sessions/{session['id']}/execute",
                      json={"code": f"import sys; print(x + 1, {PACKAGE}.VALUE, sys.prefix)"}).json()
        assert cell["status"] == "ok", cell
        assert cell["stdout"] == f"42 7 {venv}\n"

    # A server whose config no longer has the environment keeps the session, and says what is wrong at its next cell.
    without = config(venv, data_dir)
    without = without.model_copy(update={"engine": without.engine.model_copy(update={"environments": {}})})
    with running_server(without) as base, httpx.Client(base_url=base, timeout=60) as c:
        assert c.get(f"/v1/sessions/{session['id']}").json()["environment"] == "tiny"
        refused = c.post(f"/v1/sessions/{session['id']}/execute", json={"code": "x"})
        assert refused.status_code == 400, refused.text
        assert "unknown environment 'tiny'; this server has: default" in refused.text


def test_a_session_store_from_before_environments_reads_as_the_default_environment(tmp_path: Path) -> None:
    from sandlot.durable.store import MIGRATIONS, SessionStore

    path = tmp_path / "sessions.db"
    with sqlite3.connect(path) as db:  # the store as the version before environments left it
        db.executescript(f"{MIGRATIONS[0]}; PRAGMA user_version = 1;")
        db.execute("INSERT INTO sessions (id, owner, state, created_at, last_active_at, execution_count, idle_timeout, "
                   "limits, env, tools, snapshot) VALUES ('ses_old', '', 'paused', 1.0, 1.0, 3, 600.0, '{}', '{}', "
                   "NULL, NULL)")
    store = SessionStore(str(path))
    try:
        [record] = list(store.sessions())
        assert (record.id, record.environment, record.execution_count, record.damaged) == ("ses_old", "default", 3, [])
    finally:
        store.close()


# ---- configuration ---------------------------------------------------------------------------------

def test_the_one_line_form_and_the_toml_table_say_the_same(tmp_path: Path) -> None:
    name, table = parse_environment("sci=/opt/venv:preload=numpy,scipy:pool_size=2:deny=socket,ctypes:allow=numpy")
    assert name == "sci"
    assert table == {"python": "/opt/venv", "preload": ("numpy", "scipy"), "pool_size": "2",
                     "modules": {"deny": ("socket", "ctypes"), "allow": ("numpy",)}}
    toml = tmp_path / "sandlot.toml"
    toml.write_text('[engine.environments.sci]\npython = "/opt/venv"\npreload = ["numpy", "scipy"]\npool_size = 2\n'
                    '[engine.environments.sci.modules]\ndeny = ["socket", "ctypes"]\nallow = ["numpy"]\n')
    from_toml = load_config(str(toml), env={}).engine.environments
    from_line = load_config(None, {"engine.environments": {name: table}}, env={}).engine.environments
    from_env = load_config(None, env={"SANDLOT_ENVIRONMENTS": "sci=/opt/venv:preload=numpy,scipy:pool_size=2:"
                                                              "deny=socket,ctypes:allow=numpy"}).engine.environments
    assert from_toml == from_line == from_env
    both = load_config(str(toml), {"engine.environments": parse_environments(["other=/usr/bin/python3"])}, env={})
    assert list(both.engine.environments) == ["sci", "other"]  # the command line adds to the file's


@pytest.mark.parametrize(("text", "message"), [
    ("sci", "expected NAME=PYTHON"),
    ("sci=/x:color=blue", "unknown option 'color'"),
    ("sci=/x:preload", "is not OPTION=VALUE"),
    ("a=/x;a=/y", "given twice"),
])
def test_a_bad_one_line_form_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        parse_environments([text])


def test_an_environments_limits_table_overrides_the_servers_defaults_field_by_field() -> None:
    config = load_config(None, {"engine.limits.timeout": 12, "engine.environments": {
        "big": {"python": sys.executable, "limits": {"memory": 2 << 30}}}}, env={}).engine
    big = EnvironmentRegistry(config).get("big").limits
    assert (big.memory, big.timeout) == (2 << 30, 12)  # its own memory, the server's timeout
    assert EnvironmentRegistry(config).get(None).limits.timeout == 12
    with pytest.raises(SetupError, match="environment 'huge': its limits memory are above"):
        EnvironmentRegistry(EngineConfig(environments={"huge": EnvironmentSpec(
            python=sys.executable, limits=Limits(memory=64 << 30))}))


def test_bad_environments_are_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="'default' is the server's own environment"):
        load_config(None, {"engine.environments": {"default": {"python": sys.executable}}}, env={})
    with pytest.raises(SetupError, match="not a module name"):
        load_config(None, {"engine.environments": {"x": {"python": sys.executable,
                                                         "modules": {"deny": ["no such"]}}}}, env={})
    missing = EnvironmentRegistry(EngineConfig(environments={"gone": EnvironmentSpec(python=str(tmp_path / "nope"))}))
    with pytest.raises(SetupError, match="environment 'gone': .* is not a Python interpreter"):
        missing.probe()
    unfit = EnvironmentRegistry(EngineConfig(environments={"bare": EnvironmentSpec(python=sys.executable,
                                                                                  preload=("json", "no_such_mod"))}))
    with pytest.raises(SetupError, match="environment 'bare': .* cannot import no_such_mod \\(its preload\\)"):
        unfit.probe()
    done = sandlot_cli("serve", "--port", "0", "--environment", f"gone={tmp_path / 'nope'}", timeout=60)
    assert done.returncode != 0 and "environment 'gone'" in done.stderr


def test_env_list_shows_each_interpreter(venv: Path) -> None:
    done = sandlot_cli("env", "list", "--environment", f"tiny={venv}:preload={PACKAGE}", "--json")
    assert done.returncode == 0, done.stderr
    listed = {e["name"]: e for e in json.loads(done.stdout)["environments"]}
    assert listed["tiny"]["executable"] == str(venv / "bin" / "python") and listed["tiny"]["preload"] == [PACKAGE]
    text = sandlot_cli("env", "list", "--environment", f"tiny={venv}", "--distributions")
    assert "tiny  python" in text.stdout and "sandlot-tinypkg==1.0" in text.stdout


def test_env_build_with_uv_makes_a_venv_that_imports_the_package(tmp_path: Path) -> None:
    """The uv path of ``sandlot env build`` (the default where uv is installed, as the test extras install it),
    offline from a local wheel: the venv it names runs the package."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    (tmp_path / "req.txt").write_text("sandlot-tinypkg==1.0\n")
    done = sandlot_cli("env", "build", "tiny", "-r", str(tmp_path / "req.txt"), "--dir", str(tmp_path / "tiny"),
                       "--no-index", "--find-links", str(wheels), "--installer", "uv")
    assert done.returncode == 0, done.stderr
    assert f"python = \"{tmp_path / 'tiny'}\"" in done.stdout
    ran = subprocess.run([str(tmp_path / "tiny" / "bin" / "python"), "-c", f"import {PACKAGE}; print({PACKAGE}.VALUE)"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.stdout == "7\n", ran.stderr
    assert not list((tmp_path / "tiny" / "lib").glob("python*/site-packages/pip"))  # uv's venv has no pip


def test_env_build_refuses_a_directory_that_is_not_a_venv(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("mine")
    (tmp_path / "req.txt").write_text("")
    done = sandlot_cli("env", "build", "x", "-r", str(tmp_path / "req.txt"), "--dir", str(tmp_path / "busy"))
    assert done.returncode != 0 and "is not a virtualenv" in done.stderr
    assert (tmp_path / "busy" / "file").read_text() == "mine"

