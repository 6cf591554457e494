"""``Directory``: which node holds each session, kept in Ray itself so any front-end can serve any session.

One named actor (``sandlot-directory`` in the ``sandlot`` namespace, detached: it outlives the
front-end that made it, and every later front-end finds it by name). Its methods are plain and quick;
an actor runs them one at a time, so a session's placement and a node's recovery are never interleaved.
"""

from __future__ import annotations

from typing import Any

DIRECTORY_NAME = "sandlot-directory"


class Directory:
    """Session id -> (node id, owner), and which lost nodes have been (or are being) recovered."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[str, str]] = {}
        self._recoveries: dict[str, dict[str, Any]] = {}

    def node(self) -> str:
        """The node this directory lives on (the head, where the front-ends put it)."""
        import ray

        node_id: str = ray.get_runtime_context().get_node_id()
        return node_id

    def place(self, session_id: str, node_id: str, owner: str) -> None:
        self._sessions[session_id] = (node_id, owner)

    def remove(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def lookup(self, session_id: str) -> tuple[str, str] | None:
        return self._sessions.get(session_id)

    def everything(self) -> dict[str, tuple[str, str]]:
        return dict(self._sessions)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node_id, _ in self._sessions.values():
            counts[node_id] = counts.get(node_id, 0) + 1
        return counts

    def on_node(self, node_id: str) -> dict[str, str]:
        return {sid: owner for sid, (node, owner) in self._sessions.items() if node == node_id}

    # ---- recovery of a lost node: one front-end does it, the others wait for it -------------------

    def claim_recovery(self, node_id: str) -> bool:
        """True for the first caller: that front-end restores the node's sessions."""
        if node_id in self._recoveries:
            return False
        self._recoveries[node_id] = {"state": "running"}
        return True

    def finish_recovery(self, node_id: str, target: str | None, moved: dict[str, str], error: str | None) -> None:
        for sid, owner in moved.items():
            self._sessions[sid] = (target or "", owner)
        if error is not None:
            for sid in [s for s, (node, _) in self._sessions.items() if node == node_id]:
                self._sessions.pop(sid)  # not restorable: said below, and the session answers 404
        self._recoveries[node_id] = {"state": "failed" if error else "done", "target": target, "moved": len(moved),
                                     "error": error}

    def recovery(self, node_id: str) -> dict[str, Any] | None:
        return self._recoveries.get(node_id)

    def recoveries(self) -> dict[str, dict[str, Any]]:
        return dict(self._recoveries)
