"""Egress: network for the runs that ask, through the host's proxy, and nothing else (docs/egress.md).

Local servers on loopback stand in for the internet; no test touches any other address. The engine allows
``127.0.0.1:<origin port>`` and ``localhost:<origin port>``; a second local server's port is not on the list.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import running_server

from sandlot import EngineConfig, Sandlot
from sandlot._errors import InvalidRequestError
from sandlot.client import Client
from sandlot.egress import EgressSettings, Policy, parse_entry
from sandlot.egress.credentials import parse_header_rule
from sandlot.egress.tls import server_name
from sandlot.server import ServerConfig
from sandlot.testing.egress import proxy_on_a_port
from sandlot.testing.origin import Origin

SECRET = "egress-injected-secret-5d1e0b"
os.environ["SANDLOT_TEST_EGRESS_KEY"] = SECRET  # the server's environment: the proxy reads it, no sandbox may


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as served:
        served.add_wheel("tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 42\n"})
        yield served


@pytest.fixture(scope="module")
def other() -> Iterator[Origin]:
    """A second local server, on a port nobody allowed."""
    with Origin() as served:
        yield served


@pytest.fixture(scope="module")
def tls_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Origin, bytes]]:
    """An HTTPS origin for ``localhost`` (a certificate made here), and the certificate to trust."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_bytes(pem)
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    with Origin(tls=context) as served:
        yield served, pem


def egress_settings(origin: Origin, tls_port: int | None = None) -> EgressSettings:
    allow = [f"127.0.0.1:{origin.port}", f"localhost:{origin.port}"]
    headers = [f"127.0.0.1:{origin.port}=X-Api-Key:env:SANDLOT_TEST_EGRESS_KEY"]
    if tls_port is not None:
        allow += [f"localhost:{tls_port}", f"127.0.0.1:{tls_port}"]
        headers.append(f"localhost:{tls_port}=X-Api-Key:env:SANDLOT_TEST_EGRESS_KEY")
    return EgressSettings(allow=tuple(allow), headers=tuple(headers), index_url=f"{origin.url}/simple/")


@pytest.fixture(scope="module")
def net(origin: Origin, tls_origin: tuple[Origin, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandlot]:
    config = EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path_factory.mktemp("cache")),
                          egress=egress_settings(origin, tls_origin[0].port))
    with Sandlot(config) as engine:
        yield engine


def allowed(origin: Origin) -> list[str]:
    return [f"127.0.0.1:{origin.port}", f"localhost:{origin.port}"]


def last_json(result: object) -> object:
    assert result.status == "ok", (result.stderr, result.error)  # type: ignore[attr-defined]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[attr-defined]


# ---- the policy's rules, without a sandbox ---------------------------------------------------------

def test_entries_and_the_subset_rule() -> None:
    operator = Policy.parse(["*.example.com", "api.test:8443", "10.0.0.0/8", "127.0.0.1:9000"])
    assert operator.narrowed(["a.example.com", "x.y.example.com:443", "10.1.0.0/16", "127.0.0.1:9000"])
    for beyond in ("example.com", "other.com", "api.test", "10.0.0.0/7", "127.0.0.1", "127.0.0.1:9001", "*.com"):
        with pytest.raises(InvalidRequestError, match="beyond"):
            operator.narrowed([beyond])
    with pytest.raises(InvalidRequestError):
        operator.narrowed(["not a host"])
    assert operator.check_name("a.example.com", 443) is None
    assert operator.check_name("a.example.com", 22) is not None  # a name without a port: 80 and 443 only
    assert operator.check_name("example.com", 443) is not None  # *. is below the name, not the name
    assert operator.check_name("10.2.3.4", 22) is None and operator.check_name("11.0.0.1", 80) is not None
    assert parse_entry("[::1]:8080").ports == frozenset({8080})
    assert operator.allows_resolved(parse_entry("10.9.9.9").network.network_address, 80)  # type: ignore[union-attr]


def test_sni_is_read_from_a_real_client_hello() -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="Files.Example.COM")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    assert server_name(outgoing.read()) == "files.example.com"


def test_a_header_rule_needs_its_variable() -> None:
    rule = parse_header_rule("api.example.com=Authorization:env:X", {"X": "Bearer s"})
    assert rule.applies_to("api.example.com", 8080) and not rule.applies_to("other.example.com", 80)
    assert "Bearer s" not in repr(rule)
    with pytest.raises(ValueError, match="not set"):
        parse_header_rule("api.example.com=Authorization:env:MISSING", {})


def test_the_settings_come_from_the_environment_and_the_command_line() -> None:
    from click.testing import CliRunner

    from sandlot.cli import _engine_overrides, main
    from sandlot.server import load_config

    config = load_config(None, env={"SANDLOT_EGRESS_ALLOW": "pypi.org, 10.0.0.0/8", "SANDLOT_EGRESS_MAX_BYTES": "2048"})
    assert config.engine.egress.allow == ("pypi.org", "10.0.0.0/8") and config.engine.egress.max_bytes == 2048
    with pytest.raises(Exception, match="not a domain name"):
        load_config(None, env={"SANDLOT_EGRESS_ALLOW": "bad host!"})
    assert "--egress-allow" in CliRunner().invoke(main, ["serve", "--help"]).output
    options = {name: None for name in ("isolation", "pool_size", "max_sandboxes", "state_dir", "preload", "timeout",
                                       "memory")}
    overrides = _engine_overrides({**options, "egress_allow": ("a.com,b.com", "c.com:81"), "egress_header": ()})
    assert overrides["engine.egress.allow"] == ("a.com", "b.com", "c.com:81") and overrides["engine.egress.headers"] is None


async def ask(port: int, head: str) -> bytes:
    """All the proxy on ``port`` answers ``head`` (to its EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def test_the_proxy_refuses_a_name_that_resolves_inside_and_a_tunnel_whose_sni_differs(origin: Origin) -> None:
    """The proxy on a host port (its seam): an allowed name pointing at loopback without an address entry is
    refused; a CONNECT to an allowed name whose TLS hello names another host is cut."""

    async def scenario() -> tuple[int, bytes, list[object]]:
        settings = EgressSettings(allow=(f"localhost:{origin.port}",))
        proxy, port = await proxy_on_a_port(settings)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET http://localhost:{origin.port}/x HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status = int((await reader.readline()).split()[1])
        writer.close()
        # A tunnel: allowed by name, then a ClientHello for another name.
        proxy.policy = Policy.parse([f"localhost:{origin.port}", f"127.0.0.1:{origin.port}"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"CONNECT localhost:{origin.port} HTTP/1.1\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="elsewhere.example")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        writer.write(outgoing.read())
        after = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return status, after, await proxy.close()

    status, after, records = asyncio.run(scenario())
    assert status == 403
    assert after == b""  # the tunnel ends, nothing reached the destination
    reasons = [r.reason for r in records]  # type: ignore[attr-defined]
    assert "not a public address" in (reasons[0] or "") and "is not the tunnel's host" in (reasons[1] or "")


def test_the_proxy_caps_connections_and_bytes_and_ends_idle_tunnels(origin: Origin) -> None:
    async def scenario() -> list[object]:
        settings = EgressSettings(allow=(f"127.0.0.1:{origin.port}",), max_connections=3, max_bytes=50_000,
                                  idle_timeout=0.3)
        proxy, port = await proxy_on_a_port(settings)
        started = asyncio.get_running_loop().time()
        tunnel = await ask(port, f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\n\r\n")  # then silence: idle
        idle_for = asyncio.get_running_loop().time() - started
        big = await ask(port, f"GET http://127.0.0.1:{origin.port}/bytes/200000 HTTP/1.1\r\n\r\n")
        assert tunnel.startswith(b"HTTP/1.1 200") and 0.3 <= idle_for < 3
        assert len(big) < 200_000  # cut at the run's byte limit
        assert (await ask(port, f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 429")
        assert (await ask(port, f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 429")
        return await proxy.close()

    records = asyncio.run(scenario())
    reasons = [r.reason or "" for r in records]  # type: ignore[attr-defined]
    assert "idle" in reasons[0] and "bytes" in reasons[1]
    assert "bytes" in reasons[2] and "connections" in reasons[3]


def test_a_connection_reaches_the_proxy_with_its_head_not_at_its_handshake(origin: Origin) -> None:
    """The proxy's listener defers accepting (``TCP_DEFER_ACCEPT``) until a connection's first bytes arrive: a
    connected client that has sent nothing is not yet the proxy's (no task, no descriptor in the server); its
    head makes it one, and it is served as ever (a head in pieces too). One that stays silent is handed over after about a second,
    then timed out as any other."""

    async def scenario() -> tuple[int, bytes, float, list[object]]:
        settings = EgressSettings(allow=(f"127.0.0.1:{origin.port}",), idle_timeout=0.3)
        proxy, port = await proxy_on_a_port(settings)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.3)
        before_head = len(proxy._tasks)
        writer.write(f"GET http://127.0.0.1:{origin.port}/bytes/10 HTTP/1.1\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"GET http://127.0.0.1:{origin.port}/bytes/10 HTTP/1.1\r\n\r\n".encode()
        writer.write(head[:20])  # a head in pieces: the first is handed over, the rest waited for
        await asyncio.sleep(0.1)
        writer.write(head[20:])
        assert await asyncio.wait_for(reader.read(), 5) == answer
        writer.close()
        started = asyncio.get_running_loop().time()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the silent one: closed in the end
        silent_for = asyncio.get_running_loop().time() - started
        writer.close()
        return before_head, answer, silent_for, await proxy.close()

    before_head, answer, silent_for, records = asyncio.run(scenario())
    assert before_head == 0
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n" + b"x" * 10)
    assert 0.3 <= silent_for < 8
    assert len(records) == 2


def test_an_upstream_connect_done_at_once_waits_on_no_writer_and_a_hung_one_times_out(origin: Origin) -> None:
    """A loopback destination has answered the SYN when ``connect`` returns: the proxy sees that with one
    ``poll`` and registers no writer with the loop (it did, every connection: two ``epoll_ctl`` and a turn).
    A connect that does not finish at once still waits, and gives up at ``connect_timeout``: a listener whose
    accept queue is full drops the SYN. One refused at once is a 502 at once."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(0)
    held = []
    for _ in range(2):  # the first fills the queue of a backlog of 0; the second stays in SYN_SENT
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(hung.getsockname())
        held.append(sock)
    hung_port = hung.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, never listening: a connect is refused at once

    async def scenario() -> tuple[bytes, bytes, bytes, list[int], list[object]]:
        settings = EgressSettings(allow=(f"127.0.0.1:{origin.port}", f"127.0.0.1:{hung_port}",
                                         f"127.0.0.1:{closed_port}"), connect_timeout=0.3)
        proxy, port = await proxy_on_a_port(settings)
        loop = asyncio.get_running_loop()
        writers: list[int] = []
        add_writer = loop.add_writer

        def counted(fd: int, *args: object) -> None:
            writers.append(fd)
            add_writer(fd, *args)  # type: ignore[arg-type]

        loop.add_writer = counted  # type: ignore[method-assign]
        fast = await ask(port, f"GET http://127.0.0.1:{origin.port}/bytes/10 HTTP/1.1\r\n\r\n")
        fast_writers = list(writers)
        slow = await ask(port, f"GET http://127.0.0.1:{hung_port}/ HTTP/1.1\r\n\r\n")
        refused = await ask(port, f"GET http://127.0.0.1:{closed_port}/ HTTP/1.1\r\n\r\n")
        return fast, slow, refused, fast_writers, await proxy.close()

    try:
        fast, slow, refused, fast_writers, records = asyncio.run(scenario())
    finally:
        for sock in (*held, hung, closed):
            sock.close()
    assert fast.startswith(b"HTTP/1.1 200") and fast.endswith(b"\r\n\r\n" + b"x" * 10)
    assert fast_writers == []
    assert slow.startswith(b"HTTP/1.1 502") and b"cannot connect" in slow
    assert "cannot connect" in (records[1].reason or "")  # type: ignore[attr-defined]
    # Refused at once: the poll sees the error, not a connection (the error is read, not taken for writable).
    assert refused.startswith(b"HTTP/1.1 502") and b"refused" in refused.lower()


# ---- sandboxes with network ------------------------------------------------------------------------

def test_an_allowed_host_port_is_reached_with_urllib_and_requests(net: Sandlot, origin: Origin) -> None:
    code = f"""
import json, urllib.request, requests
a = urllib.request.urlopen('http://127.0.0.1:{origin.port}/bytes/1000').read()
with requests.Session() as s:  # one client, two hosts: each request gets a connection of its own
    b = s.get('http://localhost:{origin.port}/bytes/2000', timeout=10)
    c = s.get('http://127.0.0.1:{origin.port}/bytes/3000', timeout=10)
print(json.dumps([len(a), len(b.content), len(c.content), b.headers['Connection']]))
"""
    result = net.execute(code, network=allowed(origin))
    assert last_json(result) == [1000, 2000, 3000, "close"]
    assert [(c.host, c.port, c.allowed) for c in result.network] == \
        [("127.0.0.1", origin.port, True), ("localhost", origin.port, True), ("127.0.0.1", origin.port, True)]
    assert result.network[0].bytes_received > 1000 and result.network[0].bytes_sent > 0


def test_https_goes_through_a_tunnel_checked_by_sni_and_gets_no_injected_header(
        net: Sandlot, tls_origin: tuple[Origin, bytes]) -> None:
    served, pem = tls_origin
    code = f"""
import json, requests, urllib.request, ssl
a = requests.get('https://localhost:{served.port}/bytes/3000', verify='/workspace/ca.pem', timeout=10).content
context = ssl.create_default_context(cafile='/workspace/ca.pem')
b = urllib.request.urlopen('https://localhost:{served.port}/tls', context=context).read()
print(json.dumps([len(a), b.decode()]))
"""
    result = net.execute(code, files={"ca.pem": pem}, network=[f"localhost:{served.port}", f"127.0.0.1:{served.port}"])
    assert last_json(result) == [3000, "ok"]
    assert [(c.method, c.host, c.allowed) for c in result.network] == [("CONNECT", "localhost", True)] * 2
    assert result.network[0].bytes_received > 3000
    tls_seen = [seen for seen in served.requests if seen.path == "/tls"][-1]
    assert "X-Api-Key" not in tls_seen.headers  # no header goes into a TLS tunnel (docs/egress.md)


def test_a_port_not_on_the_list_and_a_name_not_on_it_are_refused(net: Sandlot, origin: Origin, other: Origin) -> None:
    code = f"""
import json, urllib.request, urllib.error
out = []
for url in ('http://127.0.0.1:{other.port}/', 'http://not-allowed.invalid:{origin.port}/', 'http://127.0.0.1:{origin.port}/'):
    try:
        out.append(urllib.request.urlopen(url).status)
    except urllib.error.HTTPError as e:
        out.append(e.code)
print(json.dumps(out))
"""
    seen_before = len(other.requests)
    result = net.execute(code, network=allowed(origin))
    assert last_json(result) == [403, 403, 200]
    assert [c.allowed for c in result.network] == [False, False, True]
    assert "not on the allow list" in (result.network[1].reason or "")  # refused by name: never looked up
    assert len(other.requests) == seen_before


def test_only_tcp_and_only_the_proxy(net: Sandlot, origin: Origin) -> None:
    """TCP sockets exist now, and still reach nothing but the proxy: the host's loopback is not this one."""
    code = f"""
import errno, json, socket
out = {{}}
for name, args in [('udp', (socket.AF_INET, socket.SOCK_DGRAM)), ('raw', (socket.AF_INET, socket.SOCK_RAW, 1)),
                   ('packet', (socket.AF_PACKET, socket.SOCK_RAW)), ('netlink', (socket.AF_NETLINK, socket.SOCK_RAW, 0))]:
    try:
        socket.socket(*args); out[name] = 'created'
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
s = socket.socket()
try:
    s.connect(('127.0.0.1', {origin.port})); out['direct'] = 'connected'
except OSError as e:
    out['direct'] = errno.errorcode[e.errno]
out['devices'] = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]
print(json.dumps(out))
"""
    assert last_json(net.execute(code, network=[])) == {"udp": "EPERM", "raw": "EPERM", "packet": "EPERM",
                                                       "netlink": "EPERM", "direct": "ECONNREFUSED", "devices": ["lo"]}


def test_a_one_shot_command_with_network(net: Sandlot, origin: Origin) -> None:
    command = net.run_command(f"python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{origin.port}/c')"
                              f".read())\"", network=allowed(origin))
    assert command.exit_code == 0 and command.stdout == "b'ok'\n", command.stderr
    assert [(c.host, c.allowed) for c in command.network] == [("127.0.0.1", True)]


def test_a_run_without_network_has_no_sockets_even_on_an_egress_server(net: Sandlot) -> None:
    code = "import errno, json, socket\ntry:\n    socket.socket(); print(json.dumps('created'))\n" \
           "except OSError as e:\n    print(json.dumps(errno.errorcode[e.errno]))"
    result = net.execute(code)
    assert last_json(result) == "EPERM" and result.network == []


def test_the_injected_header_arrives_and_is_nowhere_in_the_sandbox(net: Sandlot, origin: Origin) -> None:
    """The sandbox sends a forged key, the operator's arrives; then the sandbox copies out its environment and
    every readable page of its memory, and the host looks for the secret in those and in every file (the
    sandbox itself never holds the secret to search for)."""
    code = f"""
import os, urllib.request
req = urllib.request.Request('http://127.0.0.1:{origin.port}/api', headers={{'X-Api-Key': 'forged', 'Host': 'internal.example'}})
body = urllib.request.urlopen(req).read()
with open('/workspace/environ.bin', 'wb') as out:
    out.write(open('/proc/self/environ', 'rb').read())
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem, open('/workspace/mem.bin', 'wb') as out:
    for line in maps:
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split('-'))
        if 'r' not in fields[1] or end - start > 64 << 20:
            continue
        try:
            mem.seek(start)
            out.write(mem.read(end - start))
        except (OSError, OverflowError, ValueError):
            pass
print(body.decode(), os.path.getsize('/workspace/mem.bin') > 1 << 20)
"""
    with net.session(network=allowed(origin), limits={"workspace_size": 256 << 20}) as session:
        result = session.execute(code)
        assert result.status == "ok" and result.stdout == "ok True\n", (result.stderr, result.error)
        api = [seen for seen in origin.requests if seen.path == "/api"][-1]
        assert api.headers["X-Api-Key"] == SECRET  # the operator's, not the sandbox's forgery
        assert api.headers["Host"] == f"127.0.0.1:{origin.port}"  # the checked destination, not another vhost
        for info in session.files():
            assert SECRET.encode() not in session.download(info.path, max_bytes=256 << 20), info.path
        assert len(session.download("mem.bin", max_bytes=256 << 20)) > 1 << 20
    assert SECRET not in result.stdout + result.stderr


def test_the_zygote_never_sees_the_secret(net: Sandlot) -> None:
    pid = net.engine.zygote_pid
    with open(f"/proc/{pid}/environ", "rb") as f:
        assert SECRET.encode() not in f.read()


def test_pip_installs_into_the_session_workspace_and_the_second_install_is_cached(net: Sandlot,
                                                                                  origin: Origin) -> None:
    wheel = "tinypkg-0.1-py3-none-any.whl"
    with net.session(network=allowed(origin)) as session:
        result = session.execute("%pip install tinypkg")
        assert result.status == "ok", (result.stdout, result.stderr, result.error)
        assert "Successfully installed tinypkg-0.1" in result.stdout
        assert any(c.allowed and c.host == "127.0.0.1" for c in result.network)
        imported = session.execute("import tinypkg, json\nprint(json.dumps([tinypkg.VALUE, tinypkg.__file__]))")
        assert last_json(imported) == [42, "/workspace/.packages/tinypkg/__init__.py"]
        assert any(f.path.startswith(".packages/tinypkg") for f in session.files())
    assert origin.downloads(wheel) == 1
    cache = Path(net.engine.config.cache_dir) / "wheels" / wheel
    assert cache.read_bytes() == origin.wheels[wheel]
    assert sorted(os.listdir(cache.parent)) == [wheel]  # nothing half-kept beside it
    with net.session(network=allowed(origin)) as again:
        command = again.run_command("pip install tinypkg && python3 -c 'import tinypkg; print(tinypkg.VALUE)'")
        assert command.exit_code == 0, (command.stdout, command.stderr)
        assert command.stdout.strip().endswith("42")
        assert [c.cached for c in command.network if c.host == "127.0.0.1" and c.allowed] == [False, True]
    assert origin.downloads(wheel) == 1  # the second install's wheel came from the host's cache


def test_a_restarted_session_interpreter_has_its_network_again(net: Sandlot, origin: Origin) -> None:
    fetch = f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{origin.port}/x').read())"
    with net.session(network=allowed(origin)) as session:
        assert session.execute(fetch).stdout == "b'ok'\n"
        assert session.execute("import os\nos._exit(3)").status == "killed"
        again = session.execute(fetch)
        assert again.restarted and again.stdout == "b'ok'\n" and [c.allowed for c in again.network] == [True]


def test_the_wheel_cache_is_read_only_inside(net: Sandlot, origin: Origin) -> None:
    cache = os.path.join(net.engine.config.cache_dir, "wheels")
    code = f"import errno, json\ntry:\n    open({cache!r} + '/evil-1.0-py3-none-any.whl', 'wb')\n" \
           "    print(json.dumps('written'))\nexcept OSError as e:\n    print(json.dumps(errno.errorcode[e.errno]))"
    assert last_json(net.execute(code, network=allowed(origin))) == "EROFS"


def test_a_run_asking_beyond_the_operator_is_refused(net: Sandlot, origin: Origin) -> None:
    with pytest.raises(InvalidRequestError, match="beyond"):
        net.execute("print(1)", network=[f"127.0.0.1:{origin.port + 1}"])


# ---- through the HTTP API ----------------------------------------------------------------------------

def test_the_http_api(origin: Origin, tmp_path: Path) -> None:
    config = ServerConfig(engine=EngineConfig(preload=(), pool_size=1, cache_dir=str(tmp_path),
                                              egress=egress_settings(origin)))
    with running_server(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        code = f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{origin.port}/x').read())"
        body = client.post("/v1/execute", json={"code": code, "network": {}}).json()
        assert body["status"] == "ok" and body["stdout"] == "b'ok'\n"
        assert body["network"][0]["allowed"] is True and body["network"][0]["port"] == origin.port
        beyond = client.post("/v1/execute", json={"code": "1", "network": {"allow": ["example.com"]}})
        assert beyond.status_code == 400 and "beyond" in beyond.json()["error"]["message"]
        session = client.post("/v1/sessions", json={"network": {"allow": [f"127.0.0.1:{origin.port}"]}})
        assert session.status_code == 201
        assert session.json()["network"] == {"allow": [f"127.0.0.1:{origin.port}"], "dropped": []}
        cell = client.post(f"/v1/sessions/{session.json()['id']}/execute", json={"code": code}).json()
        assert cell["status"] == "ok" and [c["allowed"] for c in cell["network"]] == [True]
        batch = client.post("/v1/batch", json={"items": [{"code": code, "network": {}}, {"code": "print(2)"}]}).json()
        assert [r["stdout"] for r in batch["results"]] == ["b'ok'\n", "2\n"]
        assert [len(r["network"]) for r in batch["results"]] == [1, 0]
        mixed = client.post("/v1/batch", json={"items": [{"code": "1", "session_id": session.json()["id"],
                                                          "network": {}}]})
        assert mixed.status_code == 400
        metrics = client.get("/metrics").text
        assert 'sandlot_egress_connections_total{outcome="allowed"} 3.0' in metrics
        client.delete(f"/v1/sessions/{session.json()['id']}")
    with running_server(config) as url, Client(url) as sdk:  # the Python client's face of it
        assert [c.allowed for c in sdk.execute(code, network=True).network] == [True]
        with pytest.raises(InvalidRequestError, match="beyond"):
            sdk.execute(code, network=["example.com"])
        with sdk.session(network=[f"127.0.0.1:{origin.port}"]) as cells:
            assert cells.execute(code).network[0].allowed


FETCH_BOTH = """
import json, urllib.request, urllib.error
out = []
for port in ({ports}):
    try:
        out.append(urllib.request.urlopen(f'http://127.0.0.1:{{port}}/kept', timeout=10).status)
    except urllib.error.HTTPError as e:
        out.append(e.code)
    except OSError as e:
        out.append(type(e).__name__)
print(json.dumps(out))
"""


def test_a_sessions_network_survives_restarts_checked_against_the_operators_list_each_time(
        origin: Origin, other: Origin, tmp_path: Path) -> None:
    """The policy is saved with the session: the next server on the same data dir grants it again, less what its
    own --egress-allow no longer covers (named in the session's info), and fork and archive carry it."""
    mine, theirs = f"127.0.0.1:{origin.port}", f"127.0.0.1:{other.port}"

    def config(*allow: str) -> ServerConfig:
        return ServerConfig(engine=EngineConfig(preload=(), pool_size=0, cache_dir=str(tmp_path / "cache"),
                                                data_dir=str(tmp_path / "data"), egress=EgressSettings(allow=allow)))

    code = FETCH_BOTH.format(ports=f"{origin.port}, {other.port}")

    def cell(c: httpx.Client, session: str, source: str) -> dict:  # type: ignore[type-arg]
        body = c.post(f"/v1/sessions/{session}/execute", json={"code": source}).json()
        assert body["status"] == "ok", body
        return body  # type: ignore[no-any-return]

    with running_server(config(mine, theirs)) as url, httpx.Client(base_url=url, timeout=60) as c:
        made = c.post("/v1/sessions", json={"network": {}}).json()  # everything this operator allows
        assert made["network"] == {"allow": [mine, theirs], "dropped": []}
        assert json.loads(cell(c, made["id"], code + "x = 41\n")["stdout"]) == [200, 200]
        plain = c.post("/v1/sessions", json={}).json()
        assert "network" not in plain or plain["network"] is None
        archive = c.get(f"/v1/sessions/{made['id']}/archive").content

    with running_server(config(mine, theirs)) as url, httpx.Client(base_url=url, timeout=60) as c:
        again = c.get(f"/v1/sessions/{made['id']}").json()
        assert again["state"] == "paused" and again["network"] == {"allow": [mine, theirs], "dropped": []}
        body = cell(c, made["id"], code + "print(x + 1)")
        assert body["stdout"].splitlines() == ["[200, 200]", "42"]
        assert [(n["port"], n["allowed"]) for n in body["network"]] == [(origin.port, True), (other.port, True)]
        forked = c.post(f"/v1/sessions/{made['id']}/fork").json()
        assert forked["network"] == {"allow": [mine, theirs], "dropped": []}
        assert c.get(f"/v1/sessions/{plain['id']}").json().get("network") is None

    seen_by_other = len(other.requests)
    with running_server(config(mine)) as url, httpx.Client(base_url=url, timeout=60) as c:  # narrower
        for session in (made["id"], forked["id"]):
            narrowed = c.get(f"/v1/sessions/{session}").json()
            assert narrowed["network"] == {"allow": [mine], "dropped": [theirs]}, narrowed
            body = cell(c, session, code + "print(x)")
            assert body["stdout"].splitlines() == ["[200, 403]", "41"]
            assert [(n["port"], n["allowed"]) for n in body["network"]] == [(origin.port, True), (other.port, False)]
        assert len(other.requests) == seen_by_other  # the dropped destination was never reached
        imported = c.post("/v1/sessions/import", content=archive, headers={"content-type": "application/octet-stream"})
        assert imported.status_code == 201, imported.text
        assert imported.json()["network"] == {"allow": [mine], "dropped": [theirs]}
        assert json.loads(cell(c, imported.json()["id"], code)["stdout"]) == [200, 403]
        imported_id = imported.json()["id"]

    with running_server(config()) as url, httpx.Client(base_url=url, timeout=60) as c:  # egress off: nothing left
        off = c.get(f"/v1/sessions/{made['id']}").json()
        assert off["network"] == {"allow": [], "dropped": [mine, theirs]}
        body = cell(c, made["id"], code + "print(x)")  # no proxy and no TCP sockets: the run fails to connect
        assert body["network"] == [] and body["stdout"].splitlines()[1] == "41"
        assert "200" not in body["stdout"].splitlines()[0]

    with running_server(config(mine, theirs)) as url, httpx.Client(base_url=url, timeout=60) as c:
        # The operator allows it again: the session was granted it, and it comes back.
        assert c.get(f"/v1/sessions/{made['id']}").json()["network"] == {"allow": [mine, theirs], "dropped": []}
        # An import keeps only what the importing server allowed: the archive's grant is not this server's.
        assert c.get(f"/v1/sessions/{imported_id}").json()["network"] == {"allow": [mine], "dropped": []}


def test_an_adopted_session_keeps_its_network_within_the_adopting_engines_list(
        origin: Origin, other: Origin, tmp_path: Path) -> None:
    """Cluster failover's path (``Engine.adopt_sessions``): the adopting engine re-checks the policy with its own list."""
    from sandlot.engine.blocking import SyncSession

    mine, theirs = f"127.0.0.1:{origin.port}", f"127.0.0.1:{other.port}"

    def config(data: str, *allow: str) -> EngineConfig:
        return EngineConfig(preload=(), pool_size=0, cache_dir=str(tmp_path / "cache"), data_dir=str(tmp_path / data),
                            egress=EgressSettings(allow=allow, wheel_cache=False))

    code = FETCH_BOTH.format(ports=f"{origin.port}, {other.port}")
    with Sandlot(config("dead", mine, theirs)) as dead:
        session = dead.session(network=[mine, theirs])
        assert json.loads(session.execute(code).stdout) == [200, 200]
        session_id = session.id
    with Sandlot(config("alive", mine)) as alive:
        assert alive._call(alive.engine.adopt_sessions, str(tmp_path / "dead")) == [session_id]
        adopted = alive.engine.get_session(session_id)
        assert adopted.info()["network"] == {"allow": [mine], "dropped": [theirs]}
        result = SyncSession(alive, adopted).execute(code)
        assert json.loads(result.stdout) == [200, 403]


def test_a_session_store_from_before_egress_reads_as_no_network_and_a_damaged_policy_grants_none(
        tmp_path: Path) -> None:
    import sqlite3

    from sandlot.durable.store import MIGRATIONS, SessionStore

    path = tmp_path / "sessions.db"
    with sqlite3.connect(path) as db:  # the store as the version before a session's network was kept
        db.executescript(f"{MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2;")
        for name in ("ses_old", "ses_bad"):
            db.execute("INSERT INTO sessions (id, owner, state, created_at, last_active_at, execution_count, "
                       "idle_timeout, limits, env, tools, snapshot) VALUES (?, '', 'paused', 1.0, 1.0, 3, 600.0, "
                       "'{}', '{}', NULL, NULL)", (name,))
    store = SessionStore(str(path))
    try:
        with sqlite3.connect(path) as db:
            db.execute("""UPDATE sessions SET network = '["example.com", 7]' WHERE id = 'ses_bad'""")
        records = {record.id: record for record in store.sessions()}
        assert (records["ses_old"].network, records["ses_old"].damaged) == (None, [])
        assert (records["ses_bad"].network, records["ses_bad"].damaged) == (None, ["network"])
    finally:
        store.close()


def test_sandlot_serve_with_egress_flags(origin: Origin, tmp_path: Path) -> None:
    """The command line as an operator types it: `sandlot serve --egress-allow ... --egress-header ...`, a real
    server process whose environment holds the secret."""
    from sandlot.testing.serving import ServerProcess

    server = ServerProcess("--preload", "", "--pool-size", "1", "--egress-allow", f"127.0.0.1:{origin.port}",
                           "--egress-header", f"127.0.0.1:{origin.port}=X-Served-Key:env:SANDLOT_TEST_EGRESS_KEY",
                           env={"SANDLOT_CACHE_DIR": str(tmp_path), "SANDLOT_DATA_DIR": ""})
    with server:
        code = f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{origin.port}/cli').read())"
        body = httpx.post(server.url + "/v1/execute", json={"code": code, "network": {}}, timeout=60).json()
        assert body["stdout"] == "b'ok'\n" and body["network"][0]["allowed"] is True
        assert [seen for seen in origin.requests if seen.path == "/cli"][-1].headers["X-Served-Key"] == SECRET


def test_no_network_where_the_operator_allows_none_or_in_degraded_mode(tmp_path: Path, origin: Origin) -> None:
    with Sandlot(EngineConfig(preload=(), pool_size=0, cache_dir=str(tmp_path))) as plain:
        with pytest.raises(InvalidRequestError, match="egress is off"):
            plain.execute("print(1)", network=[])
    with Sandlot(EngineConfig(preload=(), pool_size=0, isolation="landlock", cache_dir=str(tmp_path),
                              egress=egress_settings(origin))) as degraded:
        with pytest.raises(InvalidRequestError, match="degraded"):
            degraded.execute("print(1)", network=[])
