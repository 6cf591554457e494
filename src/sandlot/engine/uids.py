"""Sandbox uids: one per live sandbox, so rlimits and /proc never mix two sandboxes.

RLIMIT_NPROC counts per uid: with a shared uid, a fork bomb in one sandbox
would starve the next. A uid is handed out again only once nothing of its last
sandbox can still run under it (the engine releases it after the exit).
"""

from __future__ import annotations

from .._errors import CapacityError


class SharedUid:
    """Without root no uid can be changed: every sandbox runs as the server's own uid.

    That is the degraded mode's shape (docs/architecture.md): RLIMIT_NPROC then counts
    the processes of every sandbox and of the server's user together.
    """

    def __init__(self, uid: int) -> None:
        self.uid = uid

    def __repr__(self) -> str:
        return f"<SharedUid {self.uid}>"

    @property
    def free(self) -> int | None:
        """Uids left (None: one uid for all, it never runs out)."""
        return None

    def take(self) -> int:
        return self.uid

    def release(self, uid: int) -> None:
        pass


class UidAllocator:
    """Hands out uids from ``base`` to ``base + count - 1``, lowest first."""

    def __init__(self, base: int, count: int) -> None:
        self.count = count
        self._free = list(range(base + count - 1, base - 1, -1))
        self._used: set[int] = set()

    def __repr__(self) -> str:
        return f"<UidAllocator used={len(self._used)} free={len(self._free)}>"

    @property
    def free(self) -> int:
        return len(self._free)

    def take(self) -> int:
        if not self._free:
            # Each live sandbox (pooled, running, a session's) holds one: they come back as sandboxes end.
            raise CapacityError(f"no sandbox uid is free: all {self.count} are in use (uid_count)", retry_after=1.0)
        uid = self._free.pop()
        self._used.add(uid)
        return uid

    def release(self, uid: int) -> None:
        if uid in self._used:
            self._used.remove(uid)
            self._free.append(uid)
