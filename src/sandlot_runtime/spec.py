"""What the host tells the zygote: its setup once, then one spec per sandbox.

Plain dataclasses with JSON round trips, so host and zygote share one
definition. Host-to-zygote messages are trusted (the host wrote them); nothing
here is ever read back from a sandbox.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

NAMESPACES = "namespaces"
LANDLOCK = "landlock"


@dataclass(frozen=True)
class ZygoteSetup:
    isolation: str
    """``namespaces`` (full containment, needs root) or ``landlock`` (degraded mode)."""
    seccomp_bpf: bytes
    """The compiled seccomp program, loaded as-is by every sandbox without network."""
    seccomp_bpf_network: bytes = b""
    """The program of a sandbox with network (``SandboxSpec.network``): the same, plus TCP sockets."""
    preload: list[str] = field(default_factory=list)
    """Modules the zygote imports once, so sandboxes start with them loaded."""
    root_mountpoint: str = ""
    """An empty host directory on which each sandbox mounts its private root (namespaces mode)."""
    ro_dirs: list[str] = field(default_factory=list)
    """Host directories the sandbox sees read-only at the same path (/usr, the Python prefix)."""
    ro_files: list[str] = field(default_factory=list)
    """Host files the sandbox sees read-only at the same path (/etc/ld.so.cache)."""
    hostname: str = "sandbox"
    nice: int = 10
    """The zygote's own priority (each sandbox returns to 0 where it can): the host's choice."""
    environment: str = "default"
    """The environment's name, for the module policy's messages."""
    deny_modules: list[str] = field(default_factory=list)
    """Modules no sandbox of this zygote may import (``module_policy``)."""
    allow_modules: list[str] | None = None
    """If set, the only modules beyond the standard library a sandbox may import."""

    def to_json(self) -> bytes:
        return _dump(self, bytes_fields=("seccomp_bpf", "seccomp_bpf_network"))

    @classmethod
    def from_json(cls, raw: bytes) -> ZygoteSetup:
        return cls(**_load(raw, bytes_fields=("seccomp_bpf", "seccomp_bpf_network")))


@dataclass(frozen=True)
class SandboxSpec:
    uid: int
    """The unprivileged uid (and gid) no other live sandbox has."""
    workspace: str
    """Host directory mounted read-write at /workspace (namespaces) or allowed by Landlock."""
    cgroup_procs: list[str] = field(default_factory=list)
    """``cgroup.procs`` files of the sandbox's own memory and pids cgroups."""
    tmp_dir: str = ""
    """Degraded mode only: a private host directory used as TMPDIR."""
    tmp_size: int = 64 << 20
    rlimits: dict[str, list[int]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    """TCP sockets allowed (the seccomp program with network): for the host's egress proxy, which listens in
    the sandbox's own network namespace; the namespace still has no route out. Namespaces mode only."""
    ro_dirs: list[str] = field(default_factory=list)
    """More host directories this sandbox sees read-only at the same path (the wheel cache)."""

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, raw: bytes) -> SandboxSpec:
        return cls(**_load(raw))


def _dump(obj: Any, bytes_fields: tuple[str, ...] = ()) -> bytes:
    data = dataclasses.asdict(obj)
    for name in bytes_fields:
        data[name] = base64.b64encode(data[name]).decode()
    return json.dumps(data).encode()


def _load(raw: bytes, bytes_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    for name in bytes_fields:
        data[name] = base64.b64decode(data[name])
    return data
