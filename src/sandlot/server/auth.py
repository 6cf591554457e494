"""API keys and per-key quotas.

Keys are compared in constant time (``hmac.compare_digest``), every key every
time, so timing does not tell which one nearly matched. A principal is named
by a hash prefix of its key, so keys never appear in logs or metrics. Each
principal has its own caps on sessions and runs in flight; beyond them the
answer is 429 with Retry-After rather than a queue without bound.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager

from .._errors import AuthenticationError, CapacityError

ANONYMOUS = "anonymous"


class Authenticator:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = [(key.encode(), _principal(key)) for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def principal(self, authorization: str | None) -> str:
        """The caller's principal for an ``Authorization`` header, or AuthenticationError."""
        if not self._keys:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("an API key is required: send 'Authorization: Bearer <key>'")
        presented = token.strip().encode()
        found = None
        for key, principal in self._keys:
            if hmac.compare_digest(presented, key):
                found = principal
        if found is None:
            raise AuthenticationError("the API key is not valid")
        return found


class Quotas:
    """Runs in flight and open sessions, per principal."""

    def __init__(self, max_runs: int, max_sessions: int) -> None:
        self.max_runs = max_runs
        self.max_sessions = max_sessions
        self._runs: dict[str, int] = {}
        self._creating: dict[str, int] = {}
        self.sessions: dict[str, set[str]] = {}

    def check_run(self, principal: str) -> None:
        """CapacityError if ``principal`` may not start another run now."""
        if self._runs.get(principal, 0) >= self.max_runs:
            raise CapacityError(f"this key already has {self.max_runs} runs in flight", retry_after=1.0)

    @contextmanager
    def run(self, principal: str) -> Iterator[None]:
        self.check_run(principal)
        self._runs[principal] = self._runs.get(principal, 0) + 1
        try:
            yield
        finally:
            self._runs[principal] -= 1

    def check_new_session(self, principal: str) -> None:
        if len(self.sessions.get(principal, ())) + self._creating.get(principal, 0) >= self.max_sessions:
            raise CapacityError(f"this key already has {self.max_sessions} open sessions; close one first",
                                retry_after=5.0)

    @contextmanager
    def new_session(self, principal: str) -> Iterator[None]:
        """Hold a place in the session quota while a session is created: creating one can wait
        for a sandbox to start, and concurrent requests must not all pass the check meanwhile."""
        self.check_new_session(principal)
        self._creating[principal] = self._creating.get(principal, 0) + 1
        try:
            yield
        finally:
            self._creating[principal] -= 1

    def add_session(self, principal: str, session_id: str) -> None:
        self.sessions.setdefault(principal, set()).add(session_id)

    def owns(self, principal: str, session_id: str) -> bool:
        return session_id in self.sessions.get(principal, ())

    def remove_session(self, session_id: str) -> None:
        for owned in self.sessions.values():
            owned.discard(session_id)


def _principal(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]
