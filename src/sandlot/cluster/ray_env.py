"""Joining a Ray cluster, and keeping a loopback cluster on loopback.

Ray replaces a loopback bootstrap address (127.0.0.1, localhost) with the machine's interface address
before it connects (``resolve_ip_for_localhost``), so a driver cannot reach a cluster whose processes
listen on 127.0.0.1 only. Ray's switch for that is ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: node
addresses then stay on loopback. Set in this process's environment, it is inherited by every raylet and
worker started from here (``ray.cluster_utils.Cluster`` in the tests and benchmark).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

NAMESPACE = "sandlot"
"""The Ray namespace of sandlot's named actors (the directory and the node engines)."""
LOOPBACK = "127.0.0.1"


def keep_on_loopback() -> None:
    """Make this process, and the Ray processes it starts, use 127.0.0.1 as their node address."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # ray was imported first (it read the switch then): tell it now
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def is_loopback_address(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(address: str) -> Any:
    """``ray.init`` on the cluster at ``address`` (``auto``: the cluster this machine's ``ray start`` made,
    on whatever address it was started with).

    A loopback address keeps this driver on 127.0.0.1 too. Ray's log forwarding is off: the
    front-end does not need the workers' logs (each node keeps them in its Ray session directory).
    """
    if is_loopback_address(address):
        keep_on_loopback()
    import ray  # only in cluster mode: Ray is an optional extra

    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"address": address, "namespace": NAMESPACE, "log_to_driver": False,
                              "configure_logging": False}
    if is_loopback_address(address):
        kwargs["_node_ip_address"] = LOOPBACK
    ray.init(**kwargs)
    return ray


HEAD_RESOURCE = "node:__internal_head__"
"""The resource Ray gives the head node only (``ray.nodes()``)."""


def head_node_id() -> str | None:
    """The id of the cluster's head node (the one whose loss ends the cluster anyway), if it is alive."""
    import ray

    for node in ray.nodes():  # type: ignore[no-untyped-call]
        if node.get("Alive") and HEAD_RESOURCE in node.get("Resources", {}):
            node_id: str = node["NodeID"]
            return node_id
    return None
