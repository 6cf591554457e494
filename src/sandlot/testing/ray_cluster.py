"""A multi-node Ray cluster on one machine, kept on loopback, for tests and benchmarks.

``ray.cluster_utils.Cluster`` starts a head and worker nodes (each a raylet with its own resources) as
local processes. Everything stays on 127.0.0.1: every node gets ``node_ip_address``, and Ray's switch
that stops it replacing loopback with the machine's address is set before ray is imported
(``sandlot.cluster.ray_env``). Its files go to a temporary directory of its own (``RAY_TMPDIR``), removed
with it; nodes are watched every 0.5 s so a killed raylet is noticed within about 1.5 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sandlot.cluster import ray_env

FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                      "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}


@dataclass
class LocalCluster:
    """A running loopback cluster: its address, nodes, shared data directory and the driver's ray module."""

    address: str
    cluster: Any
    data_dir: str
    temp_dir: str
    nodes: list[Any] = field(default_factory=list)

    def node_id(self, node: Any) -> str:
        node_id: str = node.node_id
        return node_id

    @property
    def head_node_id(self) -> str:
        head_id: str = self.cluster.head_node.node_id
        return head_id

    def remove(self, node: Any) -> None:
        """Kill a node's raylet and everything on it, as a machine dying would (no graceful exit)."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.nodes.remove(node)


@contextlib.contextmanager
def local_cluster(nodes: int = 3, *, cpus: int = 1) -> Iterator[LocalCluster]:
    """A head and ``nodes - 1`` workers, each with ``cpus`` Ray CPUs and a resource ``node<i>`` of its own.

    The calling process is the cluster's driver while it runs. On exit every sandlot engine on it is
    closed (its sandboxes, mounts and cgroups go), then every Ray process, then the directory.
    """
    ray_env.keep_on_loopback()
    temp_dir = tempfile.mkdtemp(prefix="slray-", dir="/tmp")  # short: Ray's unix socket paths must fit 107 bytes
    os.environ["RAY_TMPDIR"] = temp_dir
    import ray
    from ray.cluster_utils import Cluster

    base: dict[str, Any] = {"node_ip_address": ray_env.LOOPBACK, "num_cpus": cpus, "include_dashboard": False}
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={**base, "resources": {"node0": 1},
                                                                "_system_config": FAST_HEALTH_CHECKS})
        made = [cluster.head_node]
        for index in range(1, nodes):
            made.append(cluster.add_node(**base, resources={f"node{index}": 1}))
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace=ray_env.NAMESPACE, _node_ip_address=ray_env.LOOPBACK,
                 log_to_driver=False, configure_logging=False)
        data_dir = os.path.join(temp_dir, "data")
        os.makedirs(data_dir)
        yield LocalCluster(cluster.address, cluster, data_dir, temp_dir, made)
    finally:
        if ray.is_initialized():
            from sandlot.cluster.facade import close_engines

            with contextlib.suppress(Exception):
                close_engines()
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()  # type: ignore[no-untyped-call]
        os.environ.pop("RAY_TMPDIR", None)
        _remove_engine_leftovers()
        _remove_tree(temp_dir)


def _remove_engine_leftovers() -> None:
    """What an engine on a killed node left on this host (its lock is free now): mounts, cgroups, directories."""
    from sandlot._config import default_state_dir
    from sandlot.engine.instances import cleanup_stale_instances

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a killed worker's process may take a moment to be gone
        with contextlib.suppress(OSError):
            cleanup_stale_instances(default_state_dir())
            return
        time.sleep(0.2)


def _remove_tree(path: str) -> None:
    """Remove the cluster's directory: unmount what a killed engine left mounted there, and try again while
    Ray processes that were killed a moment ago may still be writing."""
    from sandlot.engine.instances import mounts_under
    from sandlot_runtime import _libc

    deadline = time.monotonic() + 15
    while os.path.exists(path) and time.monotonic() < deadline:
        for point in sorted(mounts_under(path), reverse=True):
            with contextlib.suppress(OSError):
                _libc.umount2(point, _libc.MNT_DETACH)
        shutil.rmtree(path, ignore_errors=True)
        if os.path.exists(path):
            time.sleep(0.25)


def serve_command(address: str, port: int, data_dir: str, *extra: str) -> list[str]:
    """A ``sandlot serve --ray`` front-end on a loopback port."""
    return [sys.executable, "-m", "sandlot.cli", "serve", "--ray", address, "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", data_dir, "--no-ui", *extra]


def listening_beyond_loopback() -> list[str]:
    """TCP sockets our processes (those this pid namespace sees) listen on, other than loopback."""
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if "users:" not in line or len(parts) < 4:
            continue  # no process of ours: another pid namespace's socket
        local = parts[3]
        if not local.startswith(("127.", "[::1]", "[::ffff:127.")):  # IPv4-mapped loopback is loopback
            found.append(line)
    return found
