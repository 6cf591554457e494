"""Run a command as an unprivileged user, for the tests of sandlot as non-root.

The test interpreter may live where only root can reach it (pyenv under
``/root``, a CI checkout under a private home). ``run_as_user`` starts the
command in a private mount namespace that makes just those paths reachable:
each directory that blocks other users (no ``x`` for others) is covered with a
tmpfs holding bind mounts of the paths below it that the command needs. The
paths keep their names, so ``sys.prefix`` and the checkout look as they do to
root. Nothing of this is visible outside the command, and nothing outlives it.
Then the child drops to the user's uid and gid, for good, and execs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence

import sandlot
from sandlot_runtime import _libc

USER = "sandlot-nonroot-test"

_CHILD = r"""
import os, stat, sys
sys.path.insert(0, sys.argv[1])
from sandlot_runtime import _libc
uid, gid = int(sys.argv[2]), int(sys.argv[3])
needed = [p for p in sys.argv[4].split(":") if p]
command = sys.argv[5:]
_libc.mount(None, "/", None, _libc.MS_REC | _libc.MS_PRIVATE)

def blocker(path):
    # The topmost ancestor others cannot traverse (the one to cover), or None.
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:i])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None

covers = {}
for path in needed:
    top = blocker(path)
    if top is not None:
        covers.setdefault(top, []).append(path)
for top, paths in covers.items():
    handles = [(p, os.open(p, os.O_PATH)) for p in paths]
    _libc.mount("tmpfs", top, "tmpfs", _libc.MS_NOSUID | _libc.MS_NODEV, "mode=0755")
    for p, fd in handles:
        os.makedirs(p, exist_ok=True)
        _libc.mount(f"/proc/self/fd/{fd}", p, None, _libc.MS_BIND | _libc.MS_REC)
        os.close(fd)
os.setgroups([])
os.setresgid(gid, gid, gid)
os.setresuid(uid, uid, uid)
os.execvpe(command[0], command, os.environ)
"""


def ensure_user() -> tuple[int, int, bool]:
    """(uid, gid, created): the test user, created with ``useradd`` when it does not exist yet."""
    try:
        entry = pwd.getpwnam(USER)
        return entry.pw_uid, entry.pw_gid, False
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER],
                   check=True, capture_output=True)
    entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid, True


def remove_user() -> None:
    subprocess.run(["userdel", USER], check=False, capture_output=True)


@contextlib.contextmanager
def test_user() -> Iterator[tuple[int, int]]:
    """The test user for the length of the block; removed afterwards if this block created it."""
    uid, gid, created = ensure_user()
    try:
        yield uid, gid
    finally:
        if created:
            remove_user()


def needed_paths() -> list[str]:
    """What a Python of ours needs to reach: the installation and the checkout's sources."""
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths.add(os.path.realpath(os.path.dirname(os.path.dirname(sandlot.__file__ or "."))))
    paths.update(os.path.realpath(p) for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    return sorted(p for p in paths if os.path.isdir(p))


def popen_as_user(command: Sequence[str], uid: int, gid: int, env: dict[str, str],
                  **kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``command`` as ``uid``/``gid`` with this interpreter and the checkout reachable."""
    runtime_parent = os.path.dirname(os.path.dirname(_libc.__file__ or "."))
    child = [shutil.which("unshare") or "unshare", "--mount", "--", sys.executable, "-I", "-c", _CHILD,
             runtime_parent, str(uid), str(gid), ":".join(needed_paths()), *command]
    return subprocess.Popen(child, env=env, **kwargs)  # type: ignore[call-overload, no-any-return]


def private_dir(uid: int, gid: int, prefix: str) -> str:
    """A fresh directory under /tmp owned by the user (its HOME, say); the caller removes it."""
    import tempfile

    path = tempfile.mkdtemp(prefix=prefix)
    os.chown(path, uid, gid)
    os.chmod(path, stat.S_IRWXU)
    return path
