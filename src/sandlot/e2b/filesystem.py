"""E2B's file-system calls (stat, list, make_dir, remove, move), run inside the sandbox.

Each call is one short shell command in the sandbox's session (coreutils and GNU find from the host's read-only
``/usr``): it sees exactly the file system the sandbox's code sees, with its permissions, so no host code walks a
tree that hostile code controls, and it works in degraded mode too (where the sandbox may execute nothing but
``/usr``). Paths under ``/home/user`` are passed relative to the workspace (the command's cwd), since in degraded
mode ``/workspace`` is not a path of the sandbox's view; the answers name them under ``/home/user`` again.

``find -printf`` reports each entry as eight NUL-terminated fields (NUL is the one byte no file name holds).
"""

from __future__ import annotations

import posixpath
import shlex
import stat
from typing import Any

from .._errors import InvalidRequestError, NotFoundError, SandboxError, SandlotError, TooLargeError
from ..engine import Session
from .paths import HOME, e2b_path, workspace_relative

FIELDS = "%Y\\0%s\\0%m\\0%U\\0%G\\0%T@\\0%l\\0%P\\0"
"""Type (of the target, for a symlink), size, octal mode, uid, gid, mtime, symlink target, path below the start."""
MISSING = 44
NOT_A_DIRECTORY = 45
STATE_DIRECTORY = ".sandlot"


def _locate(path: str) -> tuple[str, str, bool]:
    """The path as the command names it, as E2B's answer shows it, and whether it is the workspace's top."""
    if not path:
        raise InvalidRequestError("a path is required")
    absolute = posixpath.normpath(path if path.startswith("/") else posixpath.join(HOME, path))
    try:
        relative = workspace_relative(absolute)
    except SandlotError:
        return absolute, absolute, False  # elsewhere in the sandbox: its own view decides
    # "./" keeps a name that starts with "-" from reading as an option.
    return "./" + relative if relative else ".", e2b_path(relative), not relative


def _exists(where: str) -> str:
    return f"{{ [ -e {where} ] || [ -L {where} ] || exit {MISSING}; }}"


def _find(where: str, depth: str) -> str:
    return f"find -H {where} {depth} -printf {shlex.quote(FIELDS)}"


def _entries(stdout: str, shown: str) -> list[dict[str, Any]]:
    fields = stdout.split("\0")
    if len(fields) % 8 != 1 or fields[-1]:  # eight fields an entry, each NUL-terminated: anything else is cut short
        raise SandboxError(f"the listing of {shown} could not be read")
    found = []
    for i in range(0, len(fields) - 1, 8):
        kind, size, mode, uid, gid, mtime, link, below = fields[i:i + 8]
        path = posixpath.join(shown, below) if below else shown
        try:
            permissions = stat.filemode((stat.S_IFDIR if kind == "d" else stat.S_IFREG) | int(mode, 8))
            found.append({"name": posixpath.basename(path) or path, "type": "dir" if kind == "d" else "file",
                          "path": path, "size": int(size), "mode": int(mode, 8), "permissions": permissions,
                          "uid": uid, "gid": gid, "mtime": float(mtime), "symlink_target": link or None,
                          "below": below})
        except ValueError:
            raise SandboxError(f"the listing of {shown} could not be read") from None
    return found


def _one(stdout: str, shown: str, path: str) -> dict[str, Any]:
    entries = _entries(stdout, shown)
    if not entries:
        raise NotFoundError(f"no such file or directory: {path}")
    return entries[0]


class FileSystem:
    """The file-system calls of one sandbox's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def _run(self, line: str, path: str) -> str:
        result = await self.session.run_command(line)
        if result.exit_code == MISSING:
            raise NotFoundError(f"no such file or directory: {path}")
        if result.exit_code == NOT_A_DIRECTORY:
            raise InvalidRequestError(f"{path} is not a directory")
        if result.exit_code != 0:
            raise InvalidRequestError(f"{path}: {(result.stderr or result.error or result.status).strip()[-500:]}")
        if result.truncated:  # a partial listing would read as a whole one
            raise TooLargeError(f"the answer for {path} is over the command output limit: list less at a time "
                                "(a smaller depth, or a directory further down)")
        return result.stdout

    async def stat(self, path: str) -> dict[str, Any]:
        where, shown, _top = _locate(path)
        quoted = shlex.quote(where)
        out = await self._run(f"{_exists(quoted)} && {_find(quoted, '-maxdepth 0')}", path)
        return _one(out, shown, path)

    async def list(self, path: str, depth: int) -> list[dict[str, Any]]:
        where, shown, top = _locate(path)
        quoted = shlex.quote(where)
        line = (f"{_exists(quoted)} && {{ [ -d {quoted} ] || exit {NOT_A_DIRECTORY}; }} && "
                f"{_find(quoted, f'-mindepth 1 -maxdepth {max(1, depth)}')}")
        entries = _entries(await self._run(line, path), shown)
        if top:  # the session's saved state lives there: not the user's file
            entries = [e for e in entries if e["below"] != STATE_DIRECTORY and not e["below"].startswith(STATE_DIRECTORY + "/")]
        return sorted(entries, key=lambda e: e["path"])

    async def make_dir(self, path: str) -> dict[str, Any] | None:
        """The new directory's entry, or None when it was there already."""
        where, shown, _top = _locate(path)
        quoted = shlex.quote(where)
        out = await self._run(f"if [ -d {quoted} ]; then echo exists; else mkdir -p -- {quoted} && "
                              f"{_find(quoted, '-maxdepth 0')}; fi", path)
        return None if out.strip() == "exists" else _one(out, shown, path)

    async def remove(self, path: str) -> None:
        where, _shown, top = _locate(path)
        if top:
            raise InvalidRequestError("the workspace itself cannot be removed")
        quoted = shlex.quote(where)
        await self._run(f"{_exists(quoted)} && rm -rf -- {quoted}", path)

    async def move(self, source: str, destination: str) -> dict[str, Any]:
        where, _shown, _top = _locate(source)
        to, to_shown, _ = _locate(destination)
        quoted, quoted_to = shlex.quote(where), shlex.quote(to)
        out = await self._run(f"{_exists(quoted)} && mkdir -p -- \"$(dirname -- {quoted_to})\" && "
                              f"mv -T -- {quoted} {quoted_to} && {_find(quoted_to, '-maxdepth 0')}", source)
        return _one(out, to_shown, destination)
