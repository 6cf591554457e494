#!/usr/bin/env python3
"""The README, followed by a newcomer: a fresh virtualenv, the install line, the server, the examples.

This builds a virtualenv in a fresh directory under /tmp from a copy of this
checkout and runs ``pip install .`` in it, as the README's first command says.
Then, once as root and once as a user who is not root (created with
``useradd`` when missing, removed again afterwards), it starts ``sandlot
serve``, runs the README's examples against it exactly as they are written
(the ``curl`` line, the Python client block, the in-process block), checks
their output against what the README says it is (the comments), stops the
server with Ctrl-C (SIGINT) and checks that it exits 0, leaves no process and
logs no traceback.

The one liberty taken: the server gets a free port instead of 8765 (another
server may hold 8765 on a shared machine), and the examples' URLs are pointed
at it.

Each half reports PASS or FAIL with the reason; the script exits 1 if any
failed. Run it contained, as CI does (.ci/run):

    python3 scripts/contained.py python3 scripts/fresh_install_check.py

Options: ``--python PY`` (default: the system's /usr/bin/python3 when it is
3.11 or newer, as on a fresh Debian 12 machine, else this interpreter; the
non-root half needs one that user can reach), ``--only root|nonroot``,
``--keep`` (leave the directory for a look).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
USER = "sandlot-nonroot-test"  # the same user tests/test_nonroot.py uses
START_TIMEOUT = 180.0  # the first start also builds matplotlib's font cache
STOP_TIMEOUT = 30.0
_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", ".mypy_cache",
                                      ".ruff_cache", ".pytest_cache")


class CheckFailed(Exception):
    """One step of a half did not do what the README says."""


@dataclass
class Readme:
    """The README's examples, as written."""

    curl: str
    curl_expected: list[str]
    client: str
    in_process: str

    @classmethod
    def parse(cls, text: str) -> Readme:
        blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.S)
        curl = next(body for lang, body in blocks if lang == "sh" and body.lstrip().startswith("curl "))
        command, comment = [line for line in curl.splitlines() if line.strip()][:2]
        client = next(body for lang, body in blocks if lang == "python" and "sandlot.client import Client" in body)
        in_process = next(body for lang, body in blocks if lang == "python" and "from sandlot import Sandlot" in body)
        expected = [piece for piece in comment.lstrip("# ").split("…") if piece]
        return cls(command, expected, client, in_process)


@dataclass
class Account:
    """Who runs the server: root, or the unprivileged user."""

    name: str
    uid: int
    gid: int
    home: str
    log: list[str] = field(default_factory=list)

    def popen(self, command: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
        ids: dict[str, object] = {}
        if self.uid != os.geteuid():
            ids = {"user": self.uid, "group": self.gid, "extra_groups": []}
        return subprocess.Popen(command, env=env, cwd=self.home, text=True, **ids, **kwargs)  # type: ignore[call-overload]

    def run(self, command: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        process = self.popen(command, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            raise CheckFailed(f"{command[:3]} did not finish within {timeout:.0f}s: {err[-1000:]}") from None
        return subprocess.CompletedProcess(command, process.returncode, out, err)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=None, help="the interpreter for the virtualenv")
    parser.add_argument("--only", choices=["root", "nonroot"], default=None)
    parser.add_argument("--keep", action="store_true", help="keep the directory afterwards")
    args = parser.parse_args()
    python = args.python or default_python()
    readme = Readme.parse((CHECKOUT / "README.md").read_text())
    work = Path(tempfile.mkdtemp(prefix="sandlot-fresh-"))
    work.chmod(0o755)  # the unprivileged user reads the virtualenv
    results: dict[str, str] = {}
    # As root the README's server keeps sessions in /var/lib/sandlot (its default data dir): one this check
    # made is removed afterwards, one that was here before is left alone.
    root_data_dir = Path("/var/lib/sandlot")
    made_data_dir = os.geteuid() == 0 and not root_data_dir.exists()
    try:
        venv = install(python, work)
        halves = ["root", "nonroot"] if args.only is None else [args.only]
        for half in halves:
            if half == "root" and os.geteuid() != 0:
                results[half] = "SKIPPED (this script is not running as root)"
                continue
            with account(half, work) as who:  # not root: the non-root half runs as whoever this is
                results[half] = check_half(who, venv, readme, python)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        if made_data_dir:
            shutil.rmtree(root_data_dir, ignore_errors=True)
    print("\nfresh install check:")
    for half, outcome in results.items():
        print(f"  {'as root' if half == 'root' else 'not root'}: {outcome}")
    return 0 if all(outcome.startswith(("PASS", "SKIPPED")) for outcome in results.values()) else 1


def default_python() -> str:
    """The system's Python where it is new enough (what a fresh machine has, and what every user can reach)."""
    system = "/usr/bin/python3"
    if os.path.exists(system):
        done = subprocess.run([system, "-c", "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"],
                              capture_output=True)
        if done.returncode == 0:
            return system
    return sys.executable


def install(python: str, work: Path) -> Path:
    """A copy of the checkout, a fresh virtualenv, and the README's install line in it; the venv's path."""
    source = work / "sandlot"
    shutil.copytree(CHECKOUT, source, ignore=_COPY_IGNORE)
    venv = work / "venv"
    step(f"{python} -m venv {venv}")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    started = time.monotonic()
    step("pip install .  (the README's install line, in the fresh virtualenv)")
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)  # only what the install put in the virtualenv counts
    subprocess.run(["pip", "install", "-q", "."], cwd=source, env=env, check=True)
    step(f"installed in {time.monotonic() - started:.0f}s")
    return venv


@contextlib.contextmanager
def account(half: str, work: Path) -> Iterator[Account]:
    """Root with a fresh home, or the unprivileged user (created for the check if missing) with one."""
    if half == "root" or os.geteuid() != 0:
        home = work / f"home-{half}"
        home.mkdir(mode=0o700)
        yield Account("root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name, os.geteuid(), os.getegid(),
                      str(home))
        return
    created = False
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER],
                       check=True, capture_output=True)
        entry, created = pwd.getpwnam(USER), True
    home = work / "home-nonroot"
    home.mkdir(mode=0o700)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    try:
        yield Account(USER, entry.pw_uid, entry.pw_gid, str(home))
    finally:
        shutil.rmtree(f"/tmp/sandlot-{entry.pw_uid}", ignore_errors=True)  # its state dir, if the server left one
        if created:
            subprocess.run(["userdel", USER], check=False, capture_output=True)


def check_half(who: Account, venv: Path, readme: Readme, python: str) -> str:
    """One half: serve, the README's examples, Ctrl-C; "PASS (...)" or "FAIL: why"."""
    header = f"as {who.name} (uid {who.uid})"
    step(header)
    env = {"PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(venv), "HOME": who.home,
           "LANG": "C.UTF-8"}
    reach = who.run([str(venv / "bin" / "python"), "-c", "import sandlot"], env)
    if reach.returncode != 0:
        return (f"FAIL: the virtualenv's Python ({python}) cannot run as {who.name}: {reach.stderr.strip()[-300:]} "
                "(give --python an interpreter that user can reach, e.g. /usr/bin/python3)")
    port = free_port()
    log_path = Path(who.home) / "server.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        server = who.popen(["sandlot", "serve", "--port", str(port)], env, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_healthy(url, server, log_path)
        step(f"serving in {time.monotonic() - started:.1f}s, isolation {health.get('isolation')}")
        check_curl(who, env, readme, port)
        check_python(who, env, venv, readme.client.replace("http://127.0.0.1:8765", url), "the client example")
        check_python(who, env, venv, readme.in_process, "the in-process example")
        isolation = health.get("isolation")
        stop(server, log_path)
    except CheckFailed as exc:
        return f"FAIL: {exc}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    deadline = time.monotonic() + 5
    while (leftovers := processes_under(str(venv))) and time.monotonic() < deadline:
        time.sleep(0.1)
    if leftovers:
        return "FAIL: processes left after the server stopped: " + "; ".join(leftovers)
    return f"PASS (isolation {isolation}; {time.monotonic() - started:.0f}s from start to stop)"


def wait_healthy(url: str, server: subprocess.Popen[str], log_path: Path) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"sandlot serve exited with {server.returncode}: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                body: dict[str, object] = json.loads(response.read())
                return body
        time.sleep(0.2)
    raise CheckFailed(f"sandlot serve was not healthy within {START_TIMEOUT:.0f}s: {log_path.read_text()[-2000:]}")


def check_curl(who: Account, env: dict[str, str], readme: Readme, port: int) -> None:
    command = readme.curl.replace("localhost:8765", f"localhost:{port}")
    done = who.run(["bash", "-c", command], env)
    if done.returncode != 0:
        raise CheckFailed(f"the curl example exited {done.returncode}: {done.stderr[-500:]}")
    position = 0
    for piece in readme.curl_expected:  # the README's "# {...}" line, in order, "…" standing for anything
        found = done.stdout.find(piece, position)
        if found < 0:
            raise CheckFailed(f"the curl example printed {done.stdout[:600]!r}, without {piece!r} where the README shows it")
        position = found + len(piece)
    step("the curl example: as the README says")


def check_python(who: Account, env: dict[str, str], venv: Path, code: str, what: str) -> None:
    """Run a README block with the virtualenv's python; each ``print`` line's ``# comment`` is the line it prints."""
    expected = [line.split("#")[-1].strip() for line in code.splitlines() if "print(" in line and "#" in line]
    done = who.run([str(venv / "bin" / "python"), "-c", code], env, timeout=300)
    if done.returncode != 0:
        raise CheckFailed(f"{what} exited {done.returncode}: {done.stderr[-1500:]}")
    printed = [line.strip() for line in done.stdout.splitlines()]
    if printed != expected:
        raise CheckFailed(f"{what} printed {printed}, the README says {expected}")
    step(f"{what}: as the README says ({', '.join(expected)})")


def stop(server: subprocess.Popen[str], log_path: Path) -> None:
    """Ctrl-C, as in a terminal: the server must drain, exit 0, and log no traceback."""
    server.send_signal(signal.SIGINT)
    try:
        code = server.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"the server did not stop within {STOP_TIMEOUT:.0f}s of SIGINT") from None
    log = log_path.read_text()
    if code != 0:
        raise CheckFailed(f"the server exited {code} on SIGINT: {log[-2000:]}")
    if "Traceback" in log or '"level": "error"' in log:
        raise CheckFailed(f"the server's log has an error: {log[-2000:]}")
    if "draining:" not in log:
        raise CheckFailed(f"the server did not say it was draining: {log[-1000:]}")
    step("Ctrl-C: drained and exited 0")


def processes_under(prefix: str) -> list[str]:
    """Live processes whose command line names ``prefix`` (the check's virtualenv)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                if prefix in cmdline:
                    found.append(f"{entry}: {cmdline[:120]}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def step(text: str) -> None:
    print(f"[fresh-install] {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
