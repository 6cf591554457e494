"""Issue #14's security review: hostile sandboxed code against the egress proxy, its header injection and its
wheel cache, and hostile request bodies against the new fields (docs/egress.md, docs/environments.md).

Local servers on loopback stand in for the internet, as in tests/test_egress.py; nothing touches any other
address. The sandboxed code talks to the proxy by hand (a raw TCP socket to 127.0.0.1:3128) where a real
client library would refuse to write what an attacker writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import running_server

from sandlot import EngineConfig, Sandlot
from sandlot._config import EnvironmentSpec
from sandlot.egress import EgressSettings, Policy, netns
from sandlot.server import ServerConfig
from sandlot.testing.origin import Origin

SECRET = "review14-injected-secret-8c2f41"
os.environ["SANDLOT_TEST_REVIEW_KEY"] = SECRET  # the server's environment: the proxy reads it, no sandbox may


@pytest.fixture(scope="module")
def store() -> Iterator[Origin]:
    """A stand-in for an ordinary API that gives back what is posted to it (``POST /store``): any API with
    uploads, notes, gists or files does that with a body. It never echoes request *headers* (docs/egress.md
    puts header-echoing destinations out of scope). Python's http.server reads lines up to a bare LF, as nginx
    and many servers do."""
    with Origin() as served:
        yield served


def hosts(origin: Origin) -> list[str]:
    """The Host header of every request that reached ``origin``, in order."""
    return [next((value for name, value in seen.headers.items() if name.lower() == "host"), "") for seen in origin.requests]


@pytest.fixture(scope="module")
def index() -> Iterator[Origin]:
    """A package index some runs may reach."""
    with Origin() as served:
        served.add_wheel("tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 42\n"})
        yield served


@pytest.fixture(scope="module")
def attacker() -> Iterator[Origin]:
    """A host some other run may reach, serving its own bytes under the same wheel file name."""
    with Origin() as served:
        served.add_wheel("tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'poisoned'\n"})
        yield served


@pytest.fixture(scope="module")
def other() -> Iterator[Origin]:
    """A host-loopback service nobody allowed (the sandlot server, Ray, a database...)."""
    with Origin() as served:
        yield served


def settings_for(store: Origin, index: Origin, attacker: Origin) -> EgressSettings:
    # No index_url: pip's default (PyPI over HTTPS), the configuration docs/egress.md shows first.
    return EgressSettings(allow=(f"127.0.0.1:{store.port}", f"127.0.0.1:{index.port}", f"127.0.0.1:{attacker.port}"),
                          headers=(f"127.0.0.1:{store.port}=X-Api-Key:env:SANDLOT_TEST_REVIEW_KEY",))


@pytest.fixture(scope="module")
def net(store: Origin, index: Origin, attacker: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandlot]:
    config = EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")),
                          egress=settings_for(store, index, attacker))
    with Sandlot(config) as engine:
        yield engine


RAW = """
import json, socket
def raw(data, read=True):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
    s.sendall(data)
    out = b''
    s.settimeout(3)  # a destination that keeps the connection open: what it sent is the answer
    while read:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out
"""


def last_json(result: object) -> object:
    assert result.status == "ok", (result.stderr, result.error)  # type: ignore[attr-defined]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[attr-defined]


# ---- header injection --------------------------------------------------------------------------------

def test_a_bare_lf_in_the_request_line_cannot_move_the_injected_header_into_a_body(net: Sandlot, store: Origin) -> None:
    """The request line's version is ``HTTP/1.1`` + LF + ``Content-Length:N`` + LF: a destination that ends lines
    at LF sees the head end there, and reads the proxy's Host, the injected key and the rest as the body it
    stores and hands back. The proxy must refuse such a head (400), never send it on."""
    code = RAW + f"""
head = b'POST http://127.0.0.1:{store.port}/store HTTP/1.1\\nContent-Length:300\\n\\r\\n\\r\\n'
answer = raw(head + b'p' * 300)
print(json.dumps(answer.decode('latin-1')))
"""
    answer = last_json(net.execute(code, network=[f"127.0.0.1:{store.port}"]))
    assert isinstance(answer, str)
    assert SECRET not in answer
    assert answer.startswith("HTTP/1.1 400")


def test_a_bare_lf_cannot_add_a_host_header_before_the_proxys(net: Sandlot, store: Origin) -> None:
    """The proxy sets Host to the checked destination ("an allowed address must not be asked for another
    virtual host on it"); a header smuggled into the request line by a bare LF must not come before it."""
    code = RAW + f"""
answer = raw(b'GET http://127.0.0.1:{store.port}/vhost HTTP/1.1\\nHost:internal.example\\r\\n\\r\\n')
print(json.dumps(answer.decode('latin-1')[:12]))
"""
    seen = len(store.requests)
    assert last_json(net.execute(code, network=[f"127.0.0.1:{store.port}"])) == "HTTP/1.1 400"
    assert "internal.example" not in hosts(store)[seen:]


@pytest.mark.parametrize("head", [
    "GET\\x0bhttp://127.0.0.1:{port}/ HTTP/1.1\\r\\n\\r\\n",              # a control character in the line
    "GET http://127.0.0.1:{port}/ HTTP/1.1\\r\\nX-A: 1\\rX-B: 2\\r\\n\\r\\n",  # a bare CR in a field
    "GET http://127.0.0.1:{port}/ HTTP/1.1\\r\\nX-A: 1\\x01\\r\\n\\r\\n",     # a control character in a value
    "G(T http://127.0.0.1:{port}/ HTTP/1.1\\r\\n\\r\\n",                  # a method that is not a token
    "GET http://127.0.0.1:{port}/ HTTP/1.10\\r\\n\\r\\n",                 # a version that is not 1.0 or 1.1
])
def test_a_malformed_head_is_refused_not_passed_on(net: Sandlot, store: Origin, head: str) -> None:
    code = RAW + f"""
answer = raw(b'{head.format(port=store.port)}')
print(json.dumps(answer.decode('latin-1')[:12]))
"""
    seen = len(store.requests)
    assert last_json(net.execute(code, network=[f"127.0.0.1:{store.port}"])) == "HTTP/1.1 400"
    assert hosts(store)[seen:] == []


def test_no_injected_header_on_connect_or_to_another_destination(net: Sandlot, store: Origin, index: Origin) -> None:
    """The key is the store's: a request to another allowed host gets none, whatever Host the sandbox writes;
    a CONNECT to the store's address carries the sandbox's bytes only."""
    code = RAW + f"""
import urllib.request
req = urllib.request.Request('http://127.0.0.1:{index.port}/x', headers={{'Host': '127.0.0.1:{store.port}'}})
urllib.request.urlopen(req).read()
tunnel = raw(b'CONNECT 127.0.0.1:{store.port} HTTP/1.1\\r\\n\\r\\nPOST /store HTTP/1.1\\r\\nContent-Length: 2\\r\\n'
             b'Connection: close\\r\\n\\r\\nhi')
print(json.dumps(tunnel.decode('latin-1')))
"""
    seen = len(index.requests)
    tunnel = last_json(net.execute(code, network=[f"127.0.0.1:{store.port}", f"127.0.0.1:{index.port}"]))
    assert isinstance(tunnel, str) and tunnel.endswith("hi") and SECRET not in tunnel
    assert [s.headers.get("X-Api-Key") for s in index.requests[seen:]] == [None]
    assert index.requests[-1].headers["Host"] == f"127.0.0.1:{index.port}"


def test_a_request_pipelined_behind_the_first_gets_no_other_host(net: Sandlot, store: Origin) -> None:
    """One request per plain-HTTP connection: a second one written behind the first (in what the proxy relays
    as the first one's body) is not served with a Host of the sandbox's choosing (the first goes upstream
    with ``Connection: close``, and keep-alive headers of the sandbox's are dropped)."""
    code = RAW + f"""
first = b'GET http://127.0.0.1:{store.port}/one HTTP/1.1\\r\\nConnection: keep-alive\\r\\nKeep-Alive: 5\\r\\n\\r\\n'
second = b'GET /two HTTP/1.1\\r\\nHost: internal.example\\r\\n\\r\\n'
print(json.dumps(raw(first + second).decode('latin-1').count('HTTP/1.1 200')))
"""
    seen = len(store.requests)
    assert last_json(net.execute(code, network=[f"127.0.0.1:{store.port}"])) == 1
    assert hosts(store)[seen:] == [f"127.0.0.1:{store.port}"]


# ---- destinations ------------------------------------------------------------------------------------

def test_other_forms_of_a_host_loopback_address_reach_nothing(net: Sandlot, store: Origin, other: Origin) -> None:
    """Decimal, hex, short and IPv6 forms of loopback, link-local metadata, userinfo tricks, a trailing dot,
    a relative target with a Host: every one refused before anything reaches the unlisted port."""
    o, s = other.port, store.port
    targets = [
        f"GET http://127.0.0.1:{o}/ HTTP/1.1", f"GET http://2130706433:{o}/ HTTP/1.1",
        f"GET http://0x7f000001:{o}/ HTTP/1.1", f"GET http://127.1:{o}/ HTTP/1.1", f"GET http://0177.0.0.1:{o}/ HTTP/1.1",
        f"GET http://[::1]:{o}/ HTTP/1.1", f"GET http://[::ffff:127.0.0.1]:{o}/ HTTP/1.1",
        f"GET http://[::ffff:7f00:1]:{o}/ HTTP/1.1", f"GET http://localhost.:{o}/ HTTP/1.1",
        "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1", f"GET http://127.0.0.1:{s}@127.0.0.1:{o}/ HTTP/1.1",
        f"GET http://127.0.0.1:{o}#@127.0.0.1:{s}/ HTTP/1.1", f"GET /relative HTTP/1.1\\r\\nHost: 127.0.0.1:{o}",
        f"CONNECT 127.0.0.1:{o} HTTP/1.1", f"CONNECT [::1]:{o} HTTP/1.1", f"CONNECT 127.0.0.1:{s}:{o} HTTP/1.1",
        "CONNECT 169.254.169.254:443 HTTP/1.1", f"CONNECT localhost:{s} HTTP/1.1",
    ]
    code = RAW + f"""
out = []
for line in {targets!r}:
    out.append(raw(line.encode().decode('unicode_escape').encode('latin-1') + b'\\r\\n\\r\\n')[:12].decode())
print(json.dumps(out))
"""
    statuses = last_json(net.execute(code, network=[f"127.0.0.1:{s}"]))
    assert isinstance(statuses, list) and len(statuses) == len(targets)
    assert all(status in ("HTTP/1.1 400", "HTTP/1.1 403") for status in statuses), list(zip(targets, statuses, strict=True))
    assert other.requests == []


def test_a_tunnel_to_a_name_without_sni_is_cut(net: Sandlot, store: Origin, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``localhost`` is allowed by name and address here; a tunnel that opens with plain bytes instead of a
    ClientHello naming it reaches nothing."""
    code = RAW + f"""
print(json.dumps(raw(b'CONNECT localhost:{store.port} HTTP/1.1\\r\\n\\r\\nPOST /store HTTP/1.1\\r\\n'
                     b'Content-Length: 0\\r\\n\\r\\n').decode('latin-1')))
"""
    config = EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")),
                          egress=EgressSettings(allow=(f"localhost:{store.port}", f"127.0.0.1:{store.port}")))
    seen = len(store.requests)
    with Sandlot(config) as engine:
        result = engine.execute(code, network=[f"localhost:{store.port}", f"127.0.0.1:{store.port}"])
    assert last_json(result) == "HTTP/1.1 200 Connection Established\r\n\r\n"
    assert "must start TLS" in (result.network[0].reason or "") and not result.network[0].allowed
    assert hosts(store)[seen:] == []


# ---- the wheel cache ---------------------------------------------------------------------------------

WHEEL = "tinypkg-0.1-py3-none-any.whl"


def test_one_runs_download_is_not_another_destinations_wheel(net: Sandlot, index: Origin, attacker: Origin) -> None:
    """With no index_url, any allowed host's GET of a ``.whl`` filled the cache by file name alone, and the
    cache then answered a GET of that name from *any* host: a run allowed to reach its own server could put
    its bytes under the name of a package another run (another tenant's) downloads from its index."""
    fetch = "import hashlib, json, urllib.request\n" \
            "data = urllib.request.urlopen('http://127.0.0.1:{port}/packages/" + WHEEL + "').read()\n" \
            "print(json.dumps(hashlib.sha256(data).hexdigest()))"
    def execute(port: int, tenant: str) -> object:  # each run a tenant's, as the server gives them
        return net._call(net.engine.execute, fetch.format(port=port), network=[f"127.0.0.1:{port}"], tenant=tenant)

    first = execute(attacker.port, "mallory")
    assert last_json(first) == hashlib.sha256(attacker.wheels[WHEEL]).hexdigest()
    second = execute(index.port, "alice")
    assert last_json(second) == hashlib.sha256(index.wheels[WHEEL]).hexdigest()
    assert [c.cached for c in second.network] == [False]  # type: ignore[attr-defined]
    assert not os.path.exists(os.path.join(net.engine.config.cache_dir, "wheels", WHEEL))


# ---- hostile request bodies --------------------------------------------------------------------------

BAD_BODIES = [
    {"code": "1", "network": {"allow": "127.0.0.1"}}, {"code": "1", "network": {"allow": [123]}},
    {"code": "1", "network": {"allow": [None]}}, {"code": "1", "network": []}, {"code": "1", "network": "all"},
    {"code": "1", "network": {"allow": ["[::1"]}}, {"code": "1", "network": {"allow": ["a.com:99999999999999999999"]}},
    {"code": "1", "network": {"allow": ["a.com:\u00b2"]}}, {"code": "1", "network": {"allow": ["\u0661.com"]}},
    {"code": "1", "network": {"allow": ["*"]}}, {"code": "1", "network": {"allow": ["*.*.com"]}},
    {"code": "1", "network": {"allow": ["::/0"]}}, {"code": "1", "network": {"allow": ["0.0.0.0/0"]}},
    {"code": "1", "network": {"allow": ["127.0.0.1/8"]}}, {"code": "1", "network": {"allow": ["a" * 100000]}},
    {"code": "1", "network": {"allow": ["x"] * 20000}}, {"code": "1", "network": {"allow": ["\x00"]}},
    {"code": "1", "network": {"allow": [":"]}}, {"code": "1", "network": {"allow": ["[]:80"]}},
    {"code": "1", "network": {"allow": ["[fe80::1%lo]"]}}, {"code": "1", "network": {"deny": []}},
    {"code": "1", "environment": "../../etc"}, {"code": "1", "environment": 5}, {"code": "1", "environment": ""},
    {"code": "1", "environment": "x" * 100000}, {"code": "1", "environment": "\udcff"},
    {"code": "1", "environment": ["default"]}, {"code": "1", "environment": None, "network": None},
]


def test_hostile_network_and_environment_fields_are_400s_never_500s(store: Origin, index: Origin, attacker: Origin,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    config = ServerConfig(engine=EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")),
                                              egress=settings_for(store, index, attacker)))
    with running_server(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        session_id = client.post("/v1/sessions", json={}).json()["id"]
        for body in BAD_BODIES:
            for path, sent in (("/v1/execute", body), ("/v1/sessions", {k: v for k, v in body.items() if k != "code"}),
                               ("/v1/batch", {"items": [body]}), ("/v1/commands", {**body, "cmd": "true"}),
                               ("/v1/batch", {"items": [{**body, "session_id": session_id}]})):
                if path == "/v1/commands":
                    sent.pop("code", None)
                    sent.pop("environment", None)
                content = json.dumps(sent, ensure_ascii=True).encode()
                response = client.post(path, content=content, headers={"Content-Type": "application/json"})
                assert response.status_code < 500, (path, sent, response.status_code, response.text[:300])
        assert client.get("/healthz").status_code == 200


# ---- caps --------------------------------------------------------------------------------------------

def test_connections_that_never_send_a_head_are_capped_too(store: Origin, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``max_connections`` counted requests only once their head had arrived: a sandbox could hold open as
    many silent connections to the proxy as its processes have descriptors (pids x open_files), each one a
    descriptor and a task in the *server*, until the server itself could accept nothing. Open connections to
    the proxy are capped at ``max_connections`` from the moment they are accepted (what remains is asyncio's
    accept burst of up to a backlog's worth before the extra ones are closed: bounded, whatever the sandbox)."""
    settings = EgressSettings(allow=(f"127.0.0.1:{store.port}",), max_connections=16, idle_timeout=30)
    config = EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")), egress=settings)
    code = """
import os, socket, time
held = []
for _ in range(8):
    if os.fork() == 0:
        socks = []
        for _ in range(200):
            try:
                socks.append(socket.create_connection(('127.0.0.1', 3128), timeout=5))
            except OSError:
                break
        time.sleep(4)
        os._exit(0)
time.sleep(4.5)
print('held')
"""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(os.listdir("/proc/self/fd")))
            done.wait(0.05)

    with Sandlot(config) as engine:
        before = len(os.listdir("/proc/self/fd"))
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            result = engine.execute(code, network=[], timeout=30)
        finally:
            done.set()
            sampler.join()
    assert result.status == "ok", (result.stderr, result.error)
    # Bounded: the cap, plus accept bursts of up to a backlog each whose extra connections are closed on the
    # loop's next turn (two in flight under load), plus the rest of this process's descriptors moving meanwhile
    # (other servers of a full test run). Without the cap it was every connection the sandbox made (1,600 here).
    bound = settings.max_connections + 2 * netns.BACKLOG + 150
    assert peak - before < bound, f"the server held {peak - before} more descriptors for one sandbox's silent connections"


# ---- what a name may resolve to ----------------------------------------------------------------------

@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808",
                                     "2002:7f00:1::", "2002:a9fe:a9fe::1", "::7f00:1", "::a00:1", "::ffff:0:7f00:1",
                                     "224.0.0.1", "ff0e::1", "::ffff:169.254.169.254", "100.64.0.1"])
def test_an_allowed_name_resolving_to_an_inside_address_in_another_form_is_refused(address: str) -> None:
    """The check a name's every resolved address passes (``SandboxProxy._connect``): an attacker who controls an
    allowed name's DNS picks the AAAA record, so an IPv6 form carrying an inside IPv4 address is inside too."""
    from sandlot.egress.policy import parse_address

    policy = Policy.parse(["*.example.com"])
    resolved = parse_address(address)
    assert resolved is not None and not policy.allows_resolved(resolved, 443)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"])
def test_a_public_address_in_any_form_is_still_allowed(address: str) -> None:
    from sandlot.egress.policy import parse_address

    resolved = parse_address(address)
    assert resolved is not None and Policy.parse(["*.example.com"]).allows_resolved(resolved, 443)


# ---- a lane's sandbox is contained like the default environment's ------------------------------------

CONTAINMENT = """
import json, os, resource
status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines() if ':' in line)
keys = ('Seccomp', 'Seccomp_filters', 'NoNewPrivs', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'Groups')
mounts = sorted(' '.join(line.split()[1:4]) for line in open('/proc/self/mounts'))
limits = {name: resource.getrlimit(getattr(resource, name)) for name in
          ('RLIMIT_NOFILE', 'RLIMIT_NPROC', 'RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CORE')}
print(json.dumps({'status': {k: status.get(k, '').strip() for k in keys}, 'uid': os.getuid() != 0 and os.getgid() != 0,
                  'ns': {n: os.readlink('/proc/self/ns/' + n) for n in ('net', 'mnt', 'ipc', 'uts', 'cgroup', 'pid')},
                  'env': sorted(os.environ), 'mounts': mounts, 'limits': limits,
                  'cgroup': open('/proc/self/cgroup').read().strip(), 'root': sorted(os.listdir('/'))}))
"""


def test_a_lanes_sandbox_is_contained_exactly_like_a_default_one(store: Origin, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every containment fact a sandbox shows (seccomp mode and filter count, no_new_privs, capabilities, uid,
    namespaces other than the host's, rlimits, environment, cgroup, mounts) is the default environment's in a
    lane of the same interpreter, with and without network; a venv's lane adds only its own directory.

    A lane mounted every ``sys.path`` entry of its interpreter: a ``.pth`` line (an editable install's) showed
    its sandboxes a host directory, here a project root with its ``.env``, that a default sandbox never sees."""
    root = tmp_path_factory.mktemp("lane")
    project = root / "project"
    project.mkdir()
    (project / ".env").write_text("API_KEY=host-secret-in-a-project-root\n")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    site = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "project.pth").write_text(f"{project}\n")
    config = EngineConfig(preload=(), pool_size=1, cache_dir=str(root / "cache"),
                          egress=EgressSettings(allow=(f"127.0.0.1:{store.port}",)),
                          environments={"same": EnvironmentSpec(python=sys.executable, preload=(), pool_size=1),
                                        "venv": EnvironmentSpec(python=str(venv), preload=(), pool_size=1)})
    host_ns = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("net", "mnt", "ipc", "uts", "cgroup", "pid")}
    probe = CONTAINMENT + f"print(json.dumps(os.path.exists({str(project / '.env')!r})))\n"
    with Sandlot(config) as engine:
        for network in (None, [f"127.0.0.1:{store.port}"]):
            runs = {name: engine.execute(probe, network=network, environment=name) for name in ("default", "same", "venv")}
            facts = {name: json.loads(result.stdout.splitlines()[0]) for name, result in runs.items()}
            for name, result in runs.items():
                assert result.status == "ok", (result.stderr, result.error)
                assert result.stdout.splitlines()[1] == "false", f"{name}'s sandbox sees the project's .env"
                seen = facts[name]
                assert seen["uid"] is True and seen["status"]["CapEff"] == "0000000000000000"
                assert seen["status"]["Seccomp"] == "2" and seen["status"]["NoNewPrivs"] == "1"
                assert all(seen["ns"][n] != host_ns[n] for n in host_ns), seen["ns"]
                seen.pop("ns")
                seen.pop("root")
                # Each workspace is its own sandbox's (its uid in the options); a venv's lane sees its venv.
                seen["mounts"] = [m for m in seen["mounts"] if not m.startswith(("/workspace ", str(venv)))]
            assert facts["same"] == facts["default"] and facts["venv"] == facts["default"]


def test_connections_past_the_cap_do_not_grow_the_result_without_bound(store: Origin,
                                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each connection past ``max_connections`` is answered 429, and each one was also kept as a record of the
    run's result (and logged): a loop of short connections grew the server's memory and the result by a record
    each, thousands a second. The one that reaches the cap is recorded; the ones after it are only counted."""
    settings = EgressSettings(allow=(f"127.0.0.1:{store.port}",), max_connections=8)
    config = EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")), egress=settings)
    code = RAW + f"""
statuses = set()
for _ in range(3000):
    statuses.add(raw(b'GET http://127.0.0.1:{store.port}/ HTTP/1.1\\r\\n\\r\\n')[:12].decode())
print(json.dumps(sorted(statuses)))
"""
    with Sandlot(config) as engine:
        result = engine.execute(code, network=[f"127.0.0.1:{store.port}"], timeout=60)
    assert last_json(result) == ["HTTP/1.1 200", "HTTP/1.1 429"]
    assert len(result.network) == 9
    assert "connections" in (result.network[-1].reason or "")


def test_a_cached_wheel_is_streamed_under_the_runs_byte_cap(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The proxy answered a cached wheel by reading the whole file into memory and writing it out at once,
    whatever ``max_bytes`` said: connections asking for a large cached wheel together held a copy each in the
    server's memory, and a run could take many times its byte cap. Now it is streamed and capped."""
    big = "bigpkg-1.0-py3-none-any.whl"
    with Origin() as served:
        served.wheels[big] = b"PK" + os.urandom(12 << 20)
        settings = EgressSettings(allow=(f"127.0.0.1:{served.port}",), index_url=f"{served.url}/simple/",
                                  max_bytes=32 << 20)
        config = EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")), egress=settings)
        fetch = RAW + f"""
got = [len(raw(b'GET http://127.0.0.1:{served.port}/packages/{big} HTTP/1.1\\r\\n\\r\\n')) for _ in range({{n}})]
print(json.dumps(got))
"""
        with Sandlot(config) as engine:
            allow = [f"127.0.0.1:{served.port}"]
            first = last_json(engine.execute(fetch.format(n=1), network=allow, timeout=60))
            assert isinstance(first, list) and first[0] > len(served.wheels[big])  # head and body: now cached
            again = engine.execute(fetch.format(n=6), network=allow, timeout=60)
    got = last_json(again)
    assert isinstance(got, list) and all(isinstance(n, int) for n in got)
    assert again.network[0].cached and sum(got) <= (32 << 20) + (1 << 20), got
    assert any("bytes" in (c.reason or "") for c in again.network)
    assert served.downloads(big) == 1

