"""Prometheus metrics, on a registry of the app's own (several apps can share a process).

Counters are updated as things happen; the engine's gauges (pool, sandboxes,
sessions) are read at scrape time by a collector, so they are never stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .._models import NetworkConnection

if TYPE_CHECKING:
    from ..engine import Engine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("sandlot_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.request_seconds = Histogram("sandlot_http_request_duration_seconds", "HTTP request latency by route.",
                                         ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.runs = Counter("sandlot_runs", "Finished runs by kind (execute, session, batch) and status.",
                            ["kind", "status"], registry=self.registry)
        self.run_seconds = Histogram("sandlot_run_duration_seconds", "Run wall time.", ["kind"],
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tool_calls = Counter("sandlot_tool_calls", "Host tool calls from sandboxed code, by tool and status.",
                                  ["tool", "status"], registry=self.registry)
        self.egress_connections = Counter("sandlot_egress_connections", "Connections sandboxed code asked the egress "
                                          "proxy for, by outcome (allowed, refused).", ["outcome"], registry=self.registry)
        self.egress_bytes = Counter("sandlot_egress_bytes", "Bytes through the egress proxy, by direction (sent: from "
                                    "sandboxes).", ["direction"], registry=self.registry)
        self.limit_hits = Counter("sandlot_limit_hits", "Runs that hit a limit (timeout, memory, killed, output).",
                                  ["limit"], registry=self.registry)

    def attach(self, engine: Engine, *, cluster: bool = False) -> None:
        self.registry.register(_EngineCollector(engine))
        if cluster:
            self.registry.register(_NodeCollector(engine))
        known = set(engine.tools.names)
        # Label by registered names only: a sandbox may send any name, and must not grow the metrics.
        engine.on_tool_call.append(
            lambda call: self.tool_calls.labels(call.name if call.name in known else "unknown", call.status).inc())
        egress = getattr(engine, "egress", None)  # not a cluster's engine (its nodes' proxies are theirs)
        if egress is not None:
            egress.on_connection.append(self.record_connection)

    def record_connection(self, record: NetworkConnection) -> None:
        # No host label: the sandbox chooses the names, and must not grow the metrics.
        self.egress_connections.labels("allowed" if record.allowed else "refused").inc()
        self.egress_bytes.labels("sent").inc(record.bytes_sent)
        self.egress_bytes.labels("received").inc(record.bytes_received)

    def record_run(self, kind: str, status: str, duration_ms: float, truncated: bool) -> None:
        self.runs.labels(kind, status).inc()
        self.run_seconds.labels(kind).observe(duration_ms / 1000.0)
        if status in ("timeout", "memory", "killed"):
            self.limit_hits.labels(status).inc()
        if truncated:
            self.limit_hits.labels("output").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EngineCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        engine = self._engine
        pool = engine.pool
        yield GaugeMetricFamily("sandlot_pool_ready", "Warm sandboxes waiting in the pool.", value=len(pool.ready))
        yield GaugeMetricFamily("sandlot_pool_target", "Warm sandboxes the pool aims to keep.", value=pool.target)
        lean = engine.lean_pool
        if lean is not None:
            yield GaugeMetricFamily("sandlot_lean_pool_ready", "Warm sandboxes waiting in the lean zygote's pool "
                                    "(one-shot runs that import only the standard library).", value=len(lean.ready))
        yield CounterMetricFamily("sandlot_pool_refills", "Sandboxes started to refill the pool.", value=pool.started_total)
        yield CounterMetricFamily("sandlot_pool_refill_failures", "Pool refills that failed.", value=pool.failed_total)
        yield GaugeMetricFamily("sandlot_sandboxes_alive", "Sandboxes alive (pool, runs, sessions).",
                                value=engine.sandboxes_alive)
        yield GaugeMetricFamily("sandlot_sessions_alive", "Open sessions.", value=len(engine.sessions))
        health = engine.health()
        yield GaugeMetricFamily("sandlot_healthy", "1 while a run can be served now (as /healthz), else 0.",
                                value=1 if health["ok"] else 0)
        disk = health.get("disk")
        if disk is not None:
            yield GaugeMetricFamily("sandlot_state_disk_free_bytes", "Bytes free on the state directory's disk.",
                                    value=disk["free_bytes"])
            yield GaugeMetricFamily("sandlot_state_disk_free_inodes", "Inodes free on the state directory's disk.",
                                    value=disk["free_inodes"])
        if health.get("uids_free") is not None:
            yield GaugeMetricFamily("sandlot_sandbox_uids_free", "Sandbox uids not held by a live sandbox.",
                                    value=health["uids_free"])
        zygote = health.get("zygote") or {}
        yield GaugeMetricFamily("sandlot_zygote_up", "1 while the zygote is up, 0 while it restarts or backs off.",
                                value=1 if zygote.get("state") == "up" else 0)
        yield CounterMetricFamily("sandlot_zygote_restarts", "Zygotes started to replace one that died or stalled.",
                                  value=zygote.get("restarts", 0))
        lanes = health.get("environments") or {}
        if lanes:
            # The named environments' zygotes (each started at its first use; the default one is above).
            up = GaugeMetricFamily("sandlot_environment_zygote_up", "1 while a named environment's zygote is up; 0 "
                                   "before its first use or while it restarts.", labels=["environment"])
            ready = GaugeMetricFamily("sandlot_environment_pool_ready", "Warm sandboxes waiting in a named "
                                      "environment's pool.", labels=["environment"])
            for name, lane in sorted(lanes.items()):
                up.add_metric([name], 1 if lane.get("state") == "up" else 0)
                ready.add_metric([name], lane.get("pool_ready", 0))
            yield up
            yield ready


class _NodeCollector(Collector):
    """Cluster mode: the same gauges for each node's engine, labelled with the Ray node id."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes = self._engine.node_figures()  # type: ignore[attr-defined]  # ClusterEngine's
        for name, key, doc in (("sandlot_node_healthy", "healthy", "1 while the node's engine can serve a run."),
                               ("sandlot_node_pool_ready", "pool_ready", "Warm sandboxes waiting on the node."),
                               ("sandlot_node_sandboxes_alive", "sandboxes", "Sandboxes alive on the node."),
                               ("sandlot_node_sessions", "sessions", "Sessions the node holds.")):
            family = GaugeMetricFamily(name, doc, labels=["node"])
            for node in nodes:
                family.add_metric([node["id"]], float(node.get(key) or 0))
            yield family
