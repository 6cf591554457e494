"""E2B's file-system calls (stat, list, make_dir, remove, move), run inside the sandbox.

Each call is one short Python program run as a shell command in the sandbox's session: it sees exactly the file
system the sandbox's code sees, with its permissions, so no host code walks a tree that hostile code controls.
Paths under ``/home/user`` are passed relative to the workspace (the command's cwd), so the same holds in degraded
mode where ``/workspace`` is not a path of the sandbox's view; the answers name them under ``/home/user`` again.
The program reads its request from its arguments and prints one JSON line; it imports only the standard library.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import sys
from typing import Any

from .._errors import InvalidRequestError, NotFoundError, SandlotError
from ..engine import Session
from .paths import HOME, e2b_path, workspace_relative

PROGRAM = r"""
import json, os, shutil, stat, sys
op, req = sys.argv[1], json.loads(sys.argv[2])
def entry(path, shown):
    st = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    if link is not None:
        try:
            st = os.stat(path)
        except OSError:
            pass
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
    return {"name": os.path.basename(shown.rstrip("/")) or shown, "type": kind, "path": shown, "size": st.st_size,
            "mode": stat.S_IMODE(st.st_mode), "permissions": stat.filemode(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid, "mtime": st.st_mtime, "symlink_target": link}
def walk(path, shown, depth, out):
    for name in sorted(os.listdir(path)):
        if path == "." and name == ".sandlot":
            continue
        child, child_shown = os.path.join(path, name), shown.rstrip("/") + "/" + name
        out.append(entry(child, child_shown))
        if depth > 1 and os.path.isdir(child) and not os.path.islink(child):
            walk(child, child_shown, depth - 1, out)
try:
    if op == "stat":
        out = entry(req["path"], req["shown"])
    elif op == "list":
        if not os.path.isdir(req["path"]):
            raise NotADirectoryError(20, "not a directory", req["shown"])
        out = []
        walk(req["path"], req["shown"], max(1, req["depth"]), out)
    elif op == "mkdir":
        if os.path.isdir(req["path"]):
            out = {"exists": True}
        else:
            os.makedirs(req["path"])
            out = entry(req["path"], req["shown"])
    elif op == "remove":
        if os.path.isdir(req["path"]) and not os.path.islink(req["path"]):
            shutil.rmtree(req["path"])
        else:
            os.unlink(req["path"])
        out = {}
    elif op == "move":
        os.makedirs(os.path.dirname(os.path.abspath(req["to"])), exist_ok=True)
        os.rename(req["path"], req["to"])
        out = entry(req["to"], req["to_shown"])
    print(json.dumps({"ok": out}))
except FileNotFoundError as exc:
    print(json.dumps({"missing": str(exc)}))
except OSError as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc.strerror or exc}"}))
"""


def _locate(path: str) -> tuple[str, str]:
    """The path as the command in the sandbox names it, and as E2B's answer shows it."""
    if not path:
        raise InvalidRequestError("a path is required")
    absolute = posixpath.normpath(path if path.startswith("/") else posixpath.join(HOME, path))
    try:
        relative = workspace_relative(absolute)
    except SandlotError:
        return absolute, absolute  # elsewhere in the sandbox: its own view decides
    return relative or ".", e2b_path(relative)


class FileSystem:
    """The file-system calls of one sandbox's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def _call(self, op: str, request: dict[str, Any]) -> Any:
        line = shlex.join([sys.executable, "-I", "-S", "-c", PROGRAM, op, json.dumps(request)])
        result = await self.session.run_command(line)
        try:
            answer = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SandlotError(f"the file-system call failed in the sandbox: {result.stderr.strip()[-500:]}") from None
        if "missing" in answer:
            raise NotFoundError(f"no such file or directory: {request.get('shown', request.get('path'))}")
        if "error" in answer:
            raise InvalidRequestError(answer["error"])
        return answer["ok"]

    async def stat(self, path: str) -> dict[str, Any]:
        where, shown = _locate(path)
        entry: dict[str, Any] = await self._call("stat", {"path": where, "shown": shown})
        return entry

    async def list(self, path: str, depth: int) -> list[dict[str, Any]]:
        where, shown = _locate(path)
        entries: list[dict[str, Any]] = await self._call("list", {"path": where, "shown": shown, "depth": depth})
        return entries

    async def make_dir(self, path: str) -> dict[str, Any] | None:
        """The new directory's entry, or None when it was there already."""
        where, shown = _locate(path)
        entry: dict[str, Any] = await self._call("mkdir", {"path": where, "shown": shown})
        return None if entry.get("exists") else entry

    async def remove(self, path: str) -> None:
        where, shown = _locate(path)
        await self._call("remove", {"path": where, "shown": shown})

    async def move(self, source: str, destination: str) -> dict[str, Any]:
        where, shown = _locate(source)
        to, to_shown = _locate(destination)
        entry: dict[str, Any] = await self._call("move", {"path": where, "shown": shown, "to": to, "to_shown": to_shown})
        return entry
