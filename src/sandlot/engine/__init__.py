"""The engine: the host side of sandboxes, and its small public face.

    Engine          the async core: zygote, warm pool, one-shot runs, sessions (engine.py)
    Session         a persistent interpreter, like a notebook kernel (session.py)
    Sandlot         the blocking face of ``Engine`` (blocking.py)

Inside, one concept per module: ``factory`` makes and destroys sandboxes from
the ``zygote``; each ``sandbox`` holds a ``workspace``, a uid (``uids``) and a
cgroup (``cgroups``) and collects its run's outputs (``collector``); ``pool``
is the warm pool's bookkeeping; ``host`` probes what isolation this host gives;
``seccomp`` is the system-call policy; ``instances`` owns the state directory.
What runs *inside* a sandbox is the separate ``sandlot_runtime`` package.
"""

from __future__ import annotations

from .blocking import Sandlot, SyncSession
from .code import MAX_CODE_BYTES, check_code
from .collector import EventCallback, RunOutcome
from .engine import Engine
from .session import Cell, Session
from .workspace import FileInfo, Workspace

__all__ = [
    "MAX_CODE_BYTES",
    "Cell",
    "Engine",
    "EventCallback",
    "FileInfo",
    "RunOutcome",
    "Sandlot",
    "Session",
    "SyncSession",
    "Workspace",
    "check_code",
]
