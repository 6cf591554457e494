"""``ClusterEngine``: the engine face of a whole Ray cluster, for the HTTP server, MCP and the agent.

The server gets its engine from ``server.app.create_app``: an ``engine.Engine`` on one machine, or this
with ``--ray``. It offers the same public methods the routes call on an ``Engine`` (``execute``,
``run_command``, ``create_session``, ``sessions``, ``get_session``, ``close_session``, ``fork_session``,
``import_session``, ``run_limits``, ``tool_broker``, ``health`` and the gauges) and nothing private:
the seam is that list. Behind it:

- **Engines.** A watcher polls Ray's node table; every live node (with ``node_resource``, when set) gets a
  ``NodeEngine`` actor pinned to it (``NodeAffinitySchedulingStrategy``, not soft), named per node so that
  every front-end finds the same one. Detached: engines serve all front-ends and outlive any one of them.
- **Placement.** A one-shot run or batch item goes to the healthy node with the most warm sandboxes to
  spare after the runs this front-end has in flight there (so a batch spreads); a session goes to the node
  with the fewest sessions, and is recorded in the ``Directory`` actor, so any front-end can serve it.
- **Node loss.** A run in flight on a node that dies fails with ``NodeLostError`` (503, ``Retry-After``).
  Its sessions are adopted by the least-loaded live node from the node's data directory on the shared
  ``data_dir``; a call in flight on one fails with a 503 that says the cell was lost, and the session's next
  call resumes it from its last completed cell's saved state (``resumed`` says what was not restored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import ray
from pydantic import BaseModel, Field
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .._config import DEFAULT_ENVIRONMENT, EngineConfig, Limits
from .._errors import InvalidRequestError, NodeLostError, NotFoundError, SandlotError, SetupError, UnavailableError
from .._models import CommandResult, ExecutionResult
from ..engine import EventCallback
from ..environments import EnvironmentRegistry
from ..tools import ToolRegistry
from . import ray_env
from .directory import DIRECTORY_NAME, Directory
from .node import NodeEngine
from .remote import RemoteSession

log = logging.getLogger("sandlot.cluster")
ENGINE_PREFIX = "sandlot-engine-"
LOST = (ActorDiedError, ActorUnavailableError, RayActorError)


class ClusterConfig(BaseModel):
    """Cluster mode's settings (``--ray`` and ``[cluster]``)."""

    address: str = Field(description="The Ray cluster: host:port of its head, or `auto` for this machine's.")
    node_resource: str | None = Field(None, description="Only nodes with this Ray custom resource get an engine "
                                                        "(unset: every node).")
    engine_cpus: float = Field(0.0, ge=0, description="Ray CPUs each node's engine actor reserves.")
    poll_interval: float = Field(0.5, gt=0, description="Seconds between looks at Ray's node table.")
    start_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the first engine at start-up.")
    recovery_timeout: float = Field(30.0, gt=0, description="Seconds a front-end waits for another to restore a "
                                                            "lost node's sessions.")


@dataclass
class _Node:
    node_id: str
    actor: Any
    figures: dict[str, Any]
    in_flight: int = 0
    lost: bool = False


class _ClusterPool:
    """The cluster's warm pools summed, read like ``engine.pool`` by health and metrics."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.ready = range(sum(n["pool_ready"] for n in nodes))
        self.target = sum(n["pool_target"] for n in nodes)
        self.started_total = sum(n["refills"] for n in nodes)
        self.failed_total = sum(n["refill_failures"] for n in nodes)


class _Sessions(Mapping[str, RemoteSession]):
    """``engine.sessions`` for the cluster: every session in the directory, whichever node holds it."""

    def __init__(self, cluster: ClusterEngine) -> None:
        self._cluster = cluster

    def __getitem__(self, session_id: str) -> RemoteSession:
        session = self._cluster.find_session(session_id)
        if session is None:
            raise KeyError(session_id)
        return session

    def __iter__(self) -> Iterator[str]:
        return iter(self._cluster.directory_snapshot())

    def __len__(self) -> int:
        return len(self._cluster.directory_snapshot())

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, str) and self._cluster.find_session(session_id) is not None


class ClusterEngine:
    """Every node's engine behind one face. ``await start()`` joins the cluster; ``close()`` leaves it."""

    def __init__(self, config: EngineConfig, cluster: ClusterConfig) -> None:
        if not config.data_dir:
            raise SetupError("cluster mode needs a data directory every node can read (data_dir, --data-dir): "
                             "a lost node's sessions are restored from it")
        # A lost node loses one cell at most; named environments are not served in cluster mode (each node would
        # need each interpreter): a request for one is a 400 (run_limits).
        self.config = config.model_copy(update={"snapshots": "every_cell", "environments": {}})
        self.environments = EnvironmentRegistry(self.config)
        self.cluster = cluster
        self.tools = ToolRegistry()  # host tools are not served in cluster mode (docs/cluster.md)
        self.on_tool_call: list[Any] = []
        self.on_session_closed: list[Any] = []
        self.on_session_seen: list[Any] = []
        """Called with (owner, session id) for each session in the directory this front-end had not seen."""
        self._seen: set[str] = set()
        self.sessions = _Sessions(self)
        self.runs = 0
        self._nodes: dict[str, _Node] = {}
        self._node_of: dict[str, str] = {}
        self._remote: dict[str, RemoteSession] = {}
        self._session_counts: dict[str, int] = {}
        self._directory: Any = None
        self._watcher: asyncio.Task[None] | None = None
        self._recovering: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<ClusterEngine nodes={len(self.live_nodes())} sessions={len(self._remote)}>"

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(ray_env.connect, self.cluster.address)
        # The directory lives on the head node: a worker node's loss must not take the session table with
        # it (the head's loss ends the cluster anyway). Without a head found, Ray places it.
        head = await asyncio.to_thread(ray_env.head_node_id)
        placement: dict[str, Any] = {} if head is None else {
            "scheduling_strategy": NodeAffinitySchedulingStrategy(head, soft=False)}
        self._directory = ray.remote(Directory).options(
            name=DIRECTORY_NAME, namespace=ray_env.NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=0, max_concurrency=1, **placement).remote()
        self._started = True
        deadline = time.monotonic() + self.cluster.start_timeout
        while not self.live_nodes():
            await self._watch_once()
            if time.monotonic() > deadline:
                raise SetupError(f"no sandlot engine started on the Ray cluster at {self.cluster.address} "
                                 f"within {self.cluster.start_timeout:g}s")
            if not self.live_nodes():
                await asyncio.sleep(self.cluster.poll_interval)
        self._watcher = asyncio.ensure_future(self._watch())
        log.info("sandlot: cluster mode on %s, engines on %d nodes", self.cluster.address, len(self.live_nodes()))

    async def close(self) -> None:
        """Leave the cluster. The node engines stay: they serve the other front-ends (``close_engines`` ends them)."""
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
        for task in list(self._recovering.values()):
            with contextlib.suppress(BaseException):
                await task

    @property
    def running(self) -> bool:
        return self._started and not self._closed and bool(self.live_nodes())

    # ---- nodes ---------------------------------------------------------------------------------

    def live_nodes(self) -> list[_Node]:
        return [n for n in self._nodes.values() if not n.lost]

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.cluster.poll_interval)
            try:
                await self._watch_once()
            except Exception:
                log.exception("sandlot: the cluster watcher failed once; it goes on")

    async def _watch_once(self) -> None:
        table = await asyncio.to_thread(ray.nodes)
        alive = {n["NodeID"]: n for n in table if n.get("Alive")}
        for node_id, node in list(self._nodes.items()):
            if not node.lost and node_id not in alive:
                self._node_lost(node_id)
        wanted = [nid for nid, n in alive.items()
                  if self.cluster.node_resource is None or self.cluster.node_resource in n.get("Resources", {})]
        new = [nid for nid in wanted if nid not in self._nodes]
        if new:
            await asyncio.gather(*(self._start_engine(nid) for nid in new), return_exceptions=True)
        await self._refresh_figures()

    async def _start_engine(self, node_id: str) -> None:
        if await self._directory.recovery.remote(node_id) is not None:
            return  # this node was lost once and its sessions went elsewhere: its id does not come back
        actor: Any = ray.remote(NodeEngine).options(
            name=ENGINE_PREFIX + node_id, namespace=ray_env.NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=self.cluster.engine_cpus, max_concurrency=10_000, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(node_id, self.config.model_copy(update={"data_dir": None}), self.config.data_dir)
        try:
            await actor.start.remote()
            figures = await actor.figures.remote()
        except RayTaskError as exc:
            log.error("sandlot: the engine on node %s could not start: %s", node_id, exc.cause)
            return
        self._nodes[node_id] = _Node(node_id, actor, figures)
        log.info("sandlot: engine up on node %s", node_id)

    async def _refresh_figures(self) -> None:
        nodes = self.live_nodes()
        answers = await asyncio.gather(*(asyncio.wait_for(_ref(n.actor.figures.remote()), 5.0) for n in nodes),
                                       return_exceptions=True)
        for node, answer in zip(nodes, answers, strict=True):
            if isinstance(answer, dict):
                node.figures = answer
            elif isinstance(answer, LOST):
                self._node_lost(node.node_id)
        placed: dict[str, tuple[str, str]] = await self._directory.everything.remote()
        counts: dict[str, int] = {}
        for node_id, _owner in placed.values():
            counts[node_id] = counts.get(node_id, 0) + 1
        self._session_counts = counts
        # Sessions other front-ends made or deleted: this front-end's per-key lists follow within a poll.
        for sid, (_node_id, owner) in placed.items():
            if sid not in self._seen:
                self._seen.add(sid)
                for seen in self.on_session_seen:
                    seen(owner, sid)
        for sid in self._seen - placed.keys():
            self._seen.discard(sid)
            self._remote.pop(sid, None)
            self._node_of.pop(sid, None)
            for callback in self.on_session_closed:
                callback(sid)

    def _pick_for_run(self) -> _Node:
        """The healthy node with the most warm sandboxes to spare after what we have running there."""
        nodes = [n for n in self.live_nodes() if n.figures.get("healthy")]
        if not nodes:
            raise UnavailableError("no node of the cluster can serve a run now")
        return max(nodes, key=lambda n: (n.figures["pool_ready"] - n.in_flight, -n.figures["sandboxes"] - n.in_flight))

    def _pick_for_session(self, exclude: str | None = None) -> _Node:
        nodes = [n for n in self.live_nodes() if n.figures.get("healthy") and n.node_id != exclude]
        if not nodes:
            raise UnavailableError("no node of the cluster can hold a session now")
        return min(nodes, key=lambda n: (self._session_counts.get(n.node_id, 0), n.in_flight))

    def _node(self, node_id: str) -> _Node:
        node = self._nodes.get(node_id)
        if node is None:
            raise NodeLostError(f"node {node_id} is not known to this front-end", retry_after=1.0)
        return node

    # ---- failover ------------------------------------------------------------------------------

    def _node_lost(self, node_id: str) -> asyncio.Task[None]:
        node = self._nodes.get(node_id)
        if node is not None and not node.lost:
            node.lost = True
            log.warning("sandlot: node %s is lost; restoring its sessions elsewhere", node_id)
        task = self._recovering.get(node_id)
        if task is None:
            task = self._recovering[node_id] = asyncio.ensure_future(self._recover(node_id))
        return task

    async def _recover(self, node_id: str) -> None:
        directory = self._directory
        if await directory.claim_recovery.remote(node_id):
            target: _Node | None = None
            moved: dict[str, str] = {}
            error = None
            for _attempt in range(20):  # a lock still held: the dead engine's process may take a moment to go
                try:
                    target = self._pick_for_session(exclude=node_id)
                    moved = await target.actor.adopt.remote(node_id)
                    error = None
                    break
                except RayTaskError as exc:
                    error = str(exc.cause)
                except (SandlotError, *LOST) as exc:
                    error = str(exc)
                await asyncio.sleep(0.5)
            await directory.finish_recovery.remote(node_id, target.node_id if target else None, moved, error)
            if error is not None:
                log.error("sandlot: the sessions of lost node %s could not be restored: %s", node_id, error)
            else:
                log.info("sandlot: %d sessions of lost node %s restored on node %s", len(moved), node_id,
                         target.node_id if target else None)
        else:
            deadline = time.monotonic() + self.cluster.recovery_timeout
            while time.monotonic() < deadline:
                done = await directory.recovery.remote(node_id)
                if done is not None and done["state"] != "running":
                    break
                await asyncio.sleep(0.2)
        for sid in [s for s, n in self._node_of.items() if n == node_id]:
            self._node_of.pop(sid)  # looked up again in the directory at its next call

    # ---- one-shot runs ----------------------------------------------------------------------------

    def run_limits(self, timeout: float | None, changes: Mapping[str, float | int] | None,
                   environment: str | None = None) -> Limits:
        """As ``Engine.run_limits``: the defaults with a request's changes, refused beyond ``max_limits``. Cluster
        mode serves the default environment only: another is a 400 that says so."""
        if environment not in (None, DEFAULT_ENVIRONMENT):
            raise InvalidRequestError(f"environment {environment!r}: cluster mode serves only the "
                                      f"{DEFAULT_ENVIRONMENT!r} environment")
        return self.config.run_limits(timeout, changes)

    def tool_broker(self, names: Any) -> None:
        """Host tools are not served in cluster mode: asking for one by name is refused (400)."""
        if names:
            raise InvalidRequestError("host tools are not available in cluster mode")

    def network_policy(self, network: Any) -> None:
        """Egress is not served in cluster mode (each node would need its own proxy): asking for it is a 400."""
        if network is not None:
            raise InvalidRequestError("network (egress) is not available in cluster mode")

    async def execute(self, code: str, *, on_event: EventCallback | None = None,
                      begun: asyncio.Event | None = None, **options: Any) -> ExecutionResult:
        result: ExecutionResult = await self._one_shot("execute", code, options, on_event, begun)
        return result

    async def run_command(self, cmd: str, *, on_event: EventCallback | None = None,
                          begun: asyncio.Event | None = None, **options: Any) -> CommandResult:
        result: CommandResult = await self._one_shot("run_command", cmd, options, on_event, begun)
        return result

    async def _one_shot(self, name: str, payload: str, options: dict[str, Any], on_event: EventCallback | None,
                        begun: asyncio.Event | None) -> Any:
        options.pop("tools", None)
        self.run_limits(None, None, options.pop("environment", None))
        self.network_policy(options.pop("network", None))
        node = self._pick_for_run()
        node.in_flight += 1
        try:
            if on_event is None:
                # No stream: one plain call (a streaming generator costs a round trip per item). ``begun``
                # only orders a stream's refusals before its first byte; without a stream it is set at the end.
                result = await _ref(getattr(node.actor, name).remote(payload, options))
                if begun is not None:
                    begun.set()
            else:
                result = await self._stream(node, "engine", name, (payload,), options, on_event, begun)
        except LOST:
            self._node_lost(node.node_id)
            raise NodeLostError(f"the node running this request ({node.node_id}) was lost; it may or may not "
                                "have run: retry", retry_after=1.0) from None
        finally:
            node.in_flight -= 1
        self.runs += 1
        return result

    async def _stream(self, node: _Node, target: str, name: str, args: tuple[Any, ...], options: dict[str, Any],
                      on_event: EventCallback | None, begun: asyncio.Event | None) -> Any:
        generator = node.actor.stream.options(num_returns="streaming").remote(target, name, args, options)
        async for ref in generator:
            item = await _ref(ref)
            if item[0] == "begun":
                if begun is not None:
                    begun.set()
            elif item[0] == "event":
                if begun is not None:
                    begun.set()
                if on_event is not None:
                    on_event(item[1], item[2])
            else:
                return item[1]
        raise NodeLostError("the run's stream ended without a result", retry_after=1.0)

    # ---- sessions --------------------------------------------------------------------------------

    async def create_session(self, *, tools: Any = None, owner: str = "", **options: Any) -> RemoteSession:
        self.tool_broker(tools)
        self.network_policy(options.pop("network", None))
        # a 400 here, before a node is asked
        self.run_limits(options.get("timeout"), options.get("limits"), options.pop("environment", None))
        node = self._pick_for_session()
        self._session_counts[node.node_id] = self._session_counts.get(node.node_id, 0) + 1
        try:
            described = await _ref(node.actor.create_session.remote({**options, "owner": owner}))
        except LOST:
            self._node_lost(node.node_id)
            raise NodeLostError("the node making the session was lost: retry", retry_after=1.0) from None
        return await self._placed(node.node_id, described)

    async def _placed(self, node_id: str, described: Mapping[str, Any]) -> RemoteSession:
        session_id = described["info"]["id"]
        await self._directory.place.remote(session_id, node_id, described["owner"])
        self._seen.add(session_id)
        self._node_of[session_id] = node_id
        session = self._remote[session_id] = RemoteSession(self, session_id, described)
        return session

    def node_of(self, session_id: str) -> str | None:
        return self._node_of.get(session_id)

    def directory_snapshot(self) -> dict[str, tuple[str, str]]:
        snapshot: dict[str, tuple[str, str]] = ray.get(self._directory.everything.remote())
        return snapshot

    def find_session(self, session_id: str) -> RemoteSession | None:
        """The session, wherever it is; None when no node holds it. A blocking look-up when it is new here."""
        session = self._remote.get(session_id)
        if session is not None and not session.closed and session_id in self._node_of:
            return session
        placed = ray.get(self._directory.lookup.remote(session_id))
        if placed is None:
            self._remote.pop(session_id, None)
            return None
        node_id, _owner = placed
        node = self._nodes.get(node_id)
        if node is None or node.lost:
            return None
        try:
            described = ray.get(node.actor.describe.remote(session_id))
        except RayTaskError:
            return None
        except LOST:
            self._node_lost(node_id)
            return None
        self._node_of[session_id] = node_id
        if session is None:
            session = self._remote[session_id] = RemoteSession(self, session_id, described)
        else:
            session.update(described)
        return session

    def get_session(self, session_id: str) -> RemoteSession:
        session = self.find_session(session_id)
        if session is None:
            raise NotFoundError(f"no session {session_id!r}")
        return session

    async def _session_node(self, session: RemoteSession) -> _Node:
        node_id = self._node_of.get(session.id)
        if node_id is None:
            placed = await self._directory.lookup.remote(session.id)
            if placed is None:
                session.closed = True
                raise NotFoundError(f"no session {session.id!r}")
            node_id = self._node_of[session.id] = placed[0]
        node = self._nodes.get(node_id)
        if node is None:
            await self._watch_once()  # a node that joined since we last looked
            node = self._node(node_id)
        if node.lost:
            await self._node_lost(node_id)
            return await self._session_node(session)
        return node

    async def session_call(self, session: RemoteSession, name: str, args: tuple[Any, ...], options: dict[str, Any],
                           on_event: EventCallback | None) -> Any:
        """A session method on its node; ``(result, info)``."""
        node = await self._session_node(session)
        try:
            if on_event is not None and name in ("execute", "run_command"):
                result = await self._stream(node, session.id, name, args, options, on_event, None)
                described = await _ref(node.actor.describe.remote(session.id))
                return result, described["info"]
            answer = await _ref(node.actor.call.remote(session.id, name, args, options))
            return answer
        except LOST:
            await self._session_node_lost(session, node)
            raise NodeLostError(f"the node running session {session.id} ({node.node_id}) was lost: the call in "
                                "flight did not finish (a cell is lost, and recorded as interrupted); the session "
                                "is restored on another node from its last completed cell: retry",
                                retry_after=1.0) from None

    async def session_request(self, session: RemoteSession, name: str, *args: Any) -> Any:
        """One of the node's per-session reads or writes by name (``export``, say)."""
        node = await self._session_node(session)
        try:
            return await _ref(getattr(node.actor, name).remote(session.id, *args))
        except LOST:
            await self._session_node_lost(session, node)
            raise NodeLostError(f"the node holding session {session.id} was lost; it is being restored on "
                                "another node: retry", retry_after=1.0) from None

    def call_blocking(self, session: RemoteSession, name: str, *args: Any) -> Any:
        """The same, for the blocking faces (workspace files in a worker thread, history, commands)."""
        node_id = self._node_of.get(session.id)
        if node_id is None or node_id not in self._nodes or self._nodes[node_id].lost:
            found = self.find_session(session.id)
            node_id = self._node_of.get(session.id) if found is not None else None
            if node_id is None:
                raise NodeLostError(f"session {session.id} is being restored on another node: retry", retry_after=1.0)
        try:
            return _unwrap(lambda: ray.get(getattr(self._nodes[node_id].actor, name).remote(session.id, *args)))
        except LOST:
            self._node_of.pop(session.id, None)
            raise NodeLostError(f"the node holding session {session.id} was lost; it is being restored on "
                                "another node: retry", retry_after=1.0) from None

    async def _session_node_lost(self, session: RemoteSession, node: _Node) -> None:
        """Start (or join) the lost node's recovery; whatever fails here, the caller still answers node_lost."""
        self._node_of.pop(session.id, None)
        try:
            placed = await self._directory.lookup.remote(session.id)
            if placed is not None and placed[0] != node.node_id:
                return  # restored already, by another front-end
            await self._node_lost(node.node_id)
        except (SandlotError, *LOST):
            log.exception("sandlot: the recovery of lost node %s failed", node.node_id)

    async def close_session(self, session_id: str) -> None:
        session = self.get_session(session_id)
        node = await self._session_node(session)
        for callback in self.on_session_closed:
            callback(session_id)
        with contextlib.suppress(*LOST):
            await _ref(node.actor.close_session.remote(session_id))
        session.closed = True
        await self._directory.remove.remote(session_id)
        self._remote.pop(session_id, None)
        self._node_of.pop(session_id, None)

    async def fork_session(self, session_id: str, *, owner: str | None = None) -> RemoteSession:
        session = self.get_session(session_id)
        described = await self.session_request(session, "fork_session", owner if owner is not None else session.owner)
        return await self._placed(self._node_of[session_id], described)

    async def import_session(self, data: bytes, *, owner: str) -> RemoteSession:
        node = self._pick_for_session()
        described = await _ref(node.actor.import_session.remote(data, owner))
        return await self._placed(node.node_id, described)

    # ---- health and figures -----------------------------------------------------------------------

    @property
    def driver_node(self) -> str:
        """The Ray node this front-end's driver is attached to."""
        node_id: str = ray.get_runtime_context().get_node_id()
        return node_id

    def node_figures(self) -> list[dict[str, Any]]:
        """Each node's engine as last seen (``GET /v1/cluster``, metrics)."""
        figures = []
        for node in self._nodes.values():
            row = dict(node.figures)
            row["sessions"] = self._session_counts.get(node.node_id, 0) if not node.lost else 0
            row["healthy"] = bool(row.get("healthy")) and not node.lost
            row["lost"] = node.lost
            figures.append(row)
        return figures

    @property
    def isolation(self) -> str | None:
        kinds = {n.figures.get("isolation") for n in self.live_nodes()}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else None)

    @property
    def sandboxes_alive(self) -> int:
        return sum(n.figures["sandboxes"] for n in self.live_nodes())

    @property
    def pool(self) -> _ClusterPool:
        return _ClusterPool([n.figures for n in self.live_nodes()])

    @property
    def warm_sandboxes(self) -> int:
        return len(self.pool.ready)

    lean_pool = None
    """Each node's engine has its own lean zygote; the front-end's metrics show the nodes' pools summed."""

    def health(self) -> dict[str, Any]:
        """Ready while at least one node can serve a run; each unhealthy node's reasons are listed."""
        live = self.live_nodes()
        reasons = [f"node {n.node_id[:12]}: {r}" for n in live for r in n.figures.get("reasons", [])]
        healthy = [n for n in live if n.figures.get("healthy")]
        if not self._started or self._closed:
            return {"ok": False, "reasons": ["the cluster engine is not running"], "zygote": None}
        if not healthy:
            return {"ok": False, "reasons": reasons or ["no node of the cluster has a running engine"], "zygote": None}
        return {"ok": True, "reasons": [], "zygote": None, "nodes": len(live), "nodes_healthy": len(healthy)}


async def _ref(ref: Any) -> Any:
    """Await a Ray result; a sandlot error raised on the node is raised here as itself."""
    try:
        return await ref
    except RayTaskError as exc:
        if isinstance(exc.cause, SandlotError):
            raise exc.cause from None
        raise


def _unwrap(get: Any) -> Any:
    try:
        return get()
    except RayTaskError as exc:
        if isinstance(exc.cause, SandlotError):
            raise exc.cause from None
        raise


def close_engines() -> None:
    """End every node's engine and the directory (tests, benchmarks, a cluster being taken down).

    Each engine closes cleanly first (its sandboxes, mounts and cgroups go), then its actor is killed.
    Needs a connected driver (``connect``).
    """
    for actor_info in ray.util.list_named_actors(all_namespaces=True):
        if actor_info["namespace"] != ray_env.NAMESPACE:
            continue
        name = actor_info["name"]
        actor = ray.get_actor(name, namespace=ray_env.NAMESPACE)
        if name.startswith(ENGINE_PREFIX):
            with contextlib.suppress(Exception):
                ray.get(actor.close.remote(), timeout=30)
        with contextlib.suppress(Exception):
            ray.kill(actor)
