"""What this host supports, and which isolation the engine will use.

``probe`` looks (in a child process, so the server itself is untouched) for
namespaces, the memory and pids cgroup controllers, seccomp and Landlock.
``choose_isolation`` turns that and the operator's wish into the mode the
zygote uses, refusing rather than silently running with less isolation than
was asked for. ``sandlot doctor`` prints the same report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from sandlot_runtime import _libc
from sandlot_runtime.spec import LANDLOCK, NAMESPACES

from .._config import Isolation
from .._errors import SetupError
from . import cgroups

_NAMESPACE_PROBE = (
    "import ctypes,sys; libc=ctypes.CDLL(None, use_errno=True); "
    "sys.exit(0 if libc.unshare(0x20000|0x40000000|0x08000000|0x04000000|0x02000000|0x20000000)==0 else 1)"
)


@dataclass(frozen=True)
class HostSupport:
    root: bool
    namespaces: bool
    cgroup_controllers: dict[str, str]
    """controller -> "v1"/"v2" for memory and pids, where found and writable."""
    seccomp: bool
    seccomp_library: bool
    landlock_abi: int
    kernel: str

    @property
    def full_isolation(self) -> bool:
        return (self.root and self.namespaces and self.seccomp and self.seccomp_library
                and {"memory", "pids"} <= self.cgroup_controllers.keys())

    @property
    def degraded_isolation(self) -> bool:
        return self.landlock_abi >= 1 and self.seccomp and self.seccomp_library

    def report(self) -> list[tuple[str, bool, str]]:
        """(check, ok, detail) rows for ``sandlot doctor``."""
        cg = ", ".join(f"{c} ({v})" for c, v in sorted(self.cgroup_controllers.items())) or "none"
        return [
            ("running as root", self.root, "needed for namespaces, cgroups and per-sandbox uids"),
            ("namespaces (mount, pid, net, ipc, uts, cgroup)", self.namespaces, ""),
            ("cgroup controllers memory + pids", {"memory", "pids"} <= self.cgroup_controllers.keys(), cg),
            ("seccomp filters", self.seccomp, ""),
            ("libseccomp via pyseccomp", self.seccomp_library, ""),
            ("Landlock (degraded mode)", self.landlock_abi >= 1, f"ABI {self.landlock_abi}"),
        ]


def probe() -> HostSupport:
    root = os.geteuid() == 0
    try:
        namespaces = subprocess.run([sys.executable, "-I", "-c", _NAMESPACE_PROBE], timeout=30,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.SubprocessError):
        namespaces = False
    controllers = {}
    if root:
        for name, hierarchy in cgroups.detect().items():
            if os.access(hierarchy.own_dir, os.W_OK):
                controllers[name] = f"v{hierarchy.version}"
    try:
        import pyseccomp  # noqa: F401

        seccomp_library = True
    except Exception:
        seccomp_library = False
    return HostSupport(
        root=root, namespaces=namespaces, cgroup_controllers=controllers, seccomp=_has_seccomp(),
        seccomp_library=seccomp_library, landlock_abi=_libc.landlock_abi_version(), kernel=os.uname().release,
    )


def choose_isolation(wanted: Isolation, support: HostSupport) -> str:
    """The zygote's isolation mode for the operator's ``wanted`` on this host, or SetupError."""
    if wanted in ("strict", "auto") and support.full_isolation:
        return NAMESPACES
    if wanted == "strict":
        missing = [check for check, ok, _ in support.report()[:5] if not ok]
        raise SetupError("isolation 'strict' needs namespaces, cgroups and seccomp as root; missing: " + ", ".join(missing))
    if support.degraded_isolation:
        return LANDLOCK
    raise SetupError("this host supports neither full isolation (namespaces, cgroups, seccomp as root) nor the "
                     "degraded mode (Landlock + seccomp); sandlot will not run code without isolation. "
                     "Run `sandlot doctor` for details.")


def _has_seccomp() -> bool:
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False
