"""E2B's paths and the workspace.

E2B's SDKs work in ``/home/user``: it is the default working directory, and relative paths are relative to it.
In a sandlot sandbox ``/home/user`` is a read-only alias (a symlink in the sandbox's root) of ``/workspace``,
the session's files. The host reads and writes only inside the workspace, so the daemon's ``/files`` routes take
paths under ``/home/user`` (or ``/workspace``), or relative ones, and refuse any other (400).
"""

from __future__ import annotations

import posixpath

from .._errors import InvalidRequestError

HOME = "/home/user"
ROOTS = (HOME, "/workspace")


def workspace_relative(path: str) -> str:
    """``path`` as E2B users write it, relative to the workspace ("" for the workspace itself); 400 outside it."""
    if not path:
        raise InvalidRequestError("a path is required")
    normal = posixpath.normpath(path if path.startswith("/") else posixpath.join(HOME, path))
    for root in ROOTS:
        if normal == root:
            return ""
        if normal.startswith(root + "/"):
            return normal[len(root) + 1:]
    raise InvalidRequestError(f"{path!r} is outside the sandbox's workspace ({HOME}): files are read and written "
                              "only there")


def e2b_path(relative: str) -> str:
    """The absolute path E2B users see for a workspace-relative one."""
    return posixpath.join(HOME, relative) if relative else HOME
