"""Cluster mode: one engine per Ray node, the same HTTP API in front (``sandlot serve --ray ADDRESS``).

    connect     join a Ray cluster, on loopback when the address is (ray_env.py)
    NodeEngine  the Ray actor pinned to one node that owns that node's ``Engine`` (node.py)
    Directory   the named actor that maps session ids to nodes, shared by every front-end (directory.py)
    ClusterEngine  the engine face the server talks to in cluster mode: places runs and sessions,
                starts engines on nodes as they join, and restores a lost node's sessions (facade.py)
    RemoteSession  a session that lives on some node, as the routes see it (remote.py)

Nothing here is imported unless ``--ray`` is given: Ray is an optional extra (``sandlot[ray]``), and
``import sandlot`` never loads it (tests/test_cluster_off.py). docs/cluster.md is the operator's guide.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClusterConfig", "ClusterEngine", "close_engines", "connect"]


def __getattr__(name: str) -> Any:
    # Lazy: ``ray_env`` must set Ray's loopback switch before anything imports ray (Ray reads it at import).
    if name in ("ClusterConfig", "ClusterEngine", "close_engines"):
        from . import facade

        return getattr(facade, name)
    if name == "connect":
        from .ray_env import connect

        return connect
    raise AttributeError(name)
