"""The cpu controller: sandboxes weighted below the server and the zygote, tenants equal, each sandbox capped.

The layout in the cpu hierarchy (v1 ``cpu.shares``/``cpu.cfs_quota_us`` or v2 ``cpu.weight``/``cpu.max``)::

    <the server's cgroup>           the server and the zygote (nice-0 processes: weight 1024 each)
     └── sandlot-<pid>-<hex>/       every sandbox of this engine: SANDBOXES_SHARES, half of one of them
          ├── pool/                 POOL_SHARES: pooled sandboxes (a refill's containment after it joins),
          │    │                    and a taken one until it is placed (one-shot runs: after PLACE_AFTER)
          │    └── sb-<uid>-<hex>/  one sandbox: its quota (``Limits.cpus``)
          └── t<n>/                 one tenant (API key): TENANT_SHARES, made on first use, removed when empty
               └── sb-<uid>-<hex>/

So a busy host serves requests and refills the pool first: the server and the zygote stay in the server's own
cgroup, where the whole sandlot-… group weighs half of one of them (the soak saw a zygote that shared the CPU
with fork bombs on equal terms get 0.65 s of CPU in 10 s, and health call it unresponsive). A refill's
containment goes on in the pool's group after it joined it, four times a tenant's weight: at a tenant's weight,
six spinners let key A's twelve clients get 8 runs answered in 4 s, at four times it 150-240. Below that,
every tenant weighs the same however many sandboxes it runs, and no sandbox gets more than its quota.

A tenant group is named by a counter, not by the key's name: a sandbox sees its own cgroup path in
/proc/self/cgroup, and must learn nothing about who else is on the host.
"""

from __future__ import annotations

import contextlib
import os

SANDBOXES_SHARES = 512
"""The weight (v1 shares; v2 weight is shares * 100 / 1024) of all of an engine's sandboxes together, next to a
nice-0 process's 1024: under contention the server (or the zygote) gets two thirds of a CPU they compete for."""
TENANT_SHARES = 1024
"""Every tenant's weight, and the pool's: the same for each, so a tenant with twenty sandboxes gets no more CPU
than a tenant with one when both want it."""
POOL_SHARES = 4096
"""The pool's weight among the tenants: refills are not held up by a tenant's spinners."""
WAITING_SHARES = 2
"""A pooled sandbox's own weight in the pool's group until it is taken (the smallest v1 allows): the containment
of refills there yields to the runs taken from it, which get ``RUNNING_SHARES``. (Under a flood the refills for
the flooding key took most of the pool's CPU, and another key's run there took 0.8 ms idle, 17 ms then.)"""
RUNNING_SHARES = 1024
PERIOD_US = 100_000
"""The quota period: a sandbox gets ``cpus * PERIOD_US`` microseconds of CPU per period."""
POOL = "pool"


def set_weight(version: int, path: str, shares: int) -> None:
    _write(weight_file(version, path), weight_value(version, shares))


def weight_file(version: int, path: str) -> str:
    return os.path.join(path, "cpu.shares" if version == 1 else "cpu.weight")


def weight_value(version: int, shares: int) -> str:
    return str(shares if version == 1 else max(1, shares * 100 // 1024))


def set_quota(version: int, path: str, cpus: float) -> None:
    """Cap a sandbox at ``cpus`` CPUs, all its processes together."""
    quota = max(1000, round(cpus * PERIOD_US))  # the kernel's smallest quota is 1 ms
    if version == 1:
        _write(os.path.join(path, "cpu.cfs_period_us"), str(PERIOD_US))
        _write(os.path.join(path, "cpu.cfs_quota_us"), str(quota))
    else:
        _write(os.path.join(path, "cpu.max"), f"{quota} {PERIOD_US}")


def throttled_periods(path: str) -> int:
    """How many quota periods the sandbox was held back in (``nr_throttled`` in ``cpu.stat``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in _read(os.path.join(path, "cpu.stat")).splitlines():
            name, _, value = line.partition(" ")
            if name == "nr_throttled":
                return int(value)
    return 0


def make_group(version: int, path: str, shares: int) -> None:
    """A weighted group that has sandboxes below it (v2: with the cpu controller on for its children)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
    set_weight(version, path, shares)
    if version == 2:
        _write(os.path.join(path, "cgroup.subtree_control"), "+cpu")


class TenantGroups:
    """One cpu cgroup per tenant under the engine's sandboxes group, made on first use, removed when empty.

    Counted by the sandbox cgroups in each: ``acquire`` before a sandbox's cgroup is made there, ``release`` after
    it was removed. Only the event loop's thread calls these, so a group is never removed while a worker thread
    makes a sandbox's cgroup in it."""

    def __init__(self, version: int, parent: str) -> None:
        self.version = version
        self.parent = parent
        self._groups: dict[str, str] = {}
        self._users: dict[str, int] = {}
        self._made = 0

    def __repr__(self) -> str:
        return f"<TenantGroups {dict(self._users)}>"

    def acquire(self, tenant: str) -> str:
        """The tenant's group directory (made now if it has none), counted as used once more."""
        path = self._groups.get(tenant)
        if path is None:
            self._made += 1
            path = os.path.join(self.parent, f"t{self._made}")
            make_group(self.version, path, TENANT_SHARES)
            self._groups[tenant] = path
        self._users[tenant] = self._users.get(tenant, 0) + 1
        return path

    def release(self, tenant: str) -> None:
        """One sandbox cgroup of the tenant's is gone; the group goes with its last one."""
        users = self._users.get(tenant, 0) - 1
        if users > 0:
            self._users[tenant] = users
            return
        self._users.pop(tenant, None)
        path = self._groups.pop(tenant, None)
        if path is not None:
            with contextlib.suppress(OSError):  # a stray sandbox cgroup left inside: remove_all takes it at close
                os.rmdir(path)

    def tenants(self) -> list[str]:
        return sorted(self._users)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
