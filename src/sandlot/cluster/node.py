"""``NodeEngine``: the engine of one Ray node, as a Ray actor pinned to that node.

It owns the node's ``Engine`` (zygote, warm pool, sandboxes, sessions) exactly as a single server does;
the front-ends (``facade.ClusterEngine``) call it through Ray. What crosses Ray is small and picklable:
requests, execution results (pydantic models), session info dicts, file bytes. A session's object never
leaves its node: the front-end names it by id and the actor calls the session's own methods.

Each node keeps its sessions in ``<data_dir>/nodes/<node id>``, on a directory every node can read, so
that when a node dies another node's engine can ``adopt`` them (``Engine.adopt_sessions``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .. import tracing
from .._config import EngineConfig
from .._errors import NotFoundError
from ..engine import Engine, Session
from ..engine.instances import cleanup_stale_instances

log = logging.getLogger("sandlot.cluster")

SESSION_METHODS = frozenset({"execute", "interrupt", "pause", "resume", "run_command", "start_command",
                             "write_command_stdin", "kill_command"})
"""Session methods a front-end may call by name (coroutines; ``execute`` and ``run_command`` stream)."""
WORKSPACE_METHODS = frozenset({"write", "read", "delete", "list_files"})


def _item(kind: str, payload: Any) -> tuple[Any, ...]:
    return ("begun",) if kind == "begun" else ("event", kind, payload)


def node_data_dir(data_dir: str, node_id: str) -> str:
    return os.path.join(data_dir, "nodes", node_id)


class NodeEngine:
    """One node's engine. Made by ``facade.ClusterEngine`` with ``ray.remote(NodeEngine).options(...)``."""

    def __init__(self, node_id: str, config: EngineConfig, data_dir: str) -> None:
        self.node_id = node_id
        self.data_dir = data_dir
        # This actor's process is the node's engine: its spans say which node they come from.
        extra = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{extra},sandlot.node={node_id}" if extra else f"sandlot.node={node_id}"
        tracing.configure()  # on only when the OTEL_* environment (inherited from the raylet) asks for traces
        self.engine = Engine(config.model_copy(update={"data_dir": node_data_dir(data_dir, node_id)}))
        self._started: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Start the engine once (every front-end may ask; they wait for the same start)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self.engine.start())
        await asyncio.shield(self._started)
        return self.node_id

    async def close(self) -> None:
        await self.engine.close()

    # ---- what the node holds ---------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """Health and load, for placement and ``GET /v1/cluster``."""
        engine = self.engine
        health = engine.health()
        pool = engine.pool
        return {"id": self.node_id, "healthy": bool(health["ok"]) and engine.running, "reasons": health["reasons"],
                "isolation": engine.isolation, "sandboxes": engine.sandboxes_alive, "sessions": len(engine.sessions),
                "pool_ready": len(pool.ready), "pool_target": pool.target, "runs": engine.runs,
                "refills": pool.started_total, "refill_failures": pool.failed_total}

    def session_ids(self) -> dict[str, str]:
        """Every session here and its owner."""
        return {sid: s.owner for sid, s in self.engine.sessions.items() if not s.closed}

    # ---- one-shot runs ------------------------------------------------------------------

    async def execute(self, code: str, options: Mapping[str, Any]) -> Any:
        return await self.engine.execute(code, **options)

    async def run_command(self, cmd: str, options: Mapping[str, Any]) -> Any:
        return await self.engine.run_command(cmd, **options)

    async def stream(self, target: str, name: str, args: tuple[Any, ...], options: Mapping[str, Any]) -> AsyncIterator[Any]:
        """A run with its events as they happen: ``("event", kind, payload)`` items, then ``("done", result)``.

        ``target`` is ``"engine"`` (a one-shot ``execute``/``run_command``) or a session id. A Ray streaming
        generator: each item reaches the front-end as it is yielded.
        """
        events: asyncio.Queue[Any] = asyncio.Queue()
        func = getattr(self.engine, name) if target == "engine" else getattr(self._session(target), name)
        if name not in ("execute", "run_command"):
            raise ValueError(f"{name} does not stream")
        extra: dict[str, Any] = {}
        if target == "engine":  # a refusal (429, 503) comes before the run has its sandbox: the front-end waits for this
            begun = extra["begun"] = asyncio.Event()
            waiter = asyncio.ensure_future(begun.wait())
            waiter.add_done_callback(lambda w: None if w.cancelled() else events.put_nowait(("begun", None)))
        run = asyncio.ensure_future(func(*args, **options, **extra,
                                         on_event=lambda kind, payload: events.put_nowait((kind, payload))))
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, run}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield _item(*getter.result())
                    continue
                getter.cancel()
                while not events.empty():
                    yield _item(*events.get_nowait())
                yield ("done", run.result())
                return
        finally:
            if "begun" in extra:
                waiter.cancel()
            if not run.done():
                run.cancel()  # the front-end went away (its client disconnected): the run is cancelled
                await asyncio.gather(run, return_exceptions=True)

    # ---- sessions --------------------------------------------------------------------------

    def _session(self, session_id: str) -> Session:
        return self.engine.get_session(session_id)

    async def create_session(self, options: Mapping[str, Any]) -> dict[str, Any]:
        session = await self.engine.create_session(**options)
        return self.describe(session.id)

    def describe(self, session_id: str) -> dict[str, Any]:
        """What a front-end keeps of a session: its info, owner and settings."""
        session = self._session(session_id)
        return {"info": session.info(), "owner": session.owner, "idle_timeout": session.idle_timeout,
                "tool_names": session.tool_names, "limits": session.limits, "closed": session.closed}

    async def call(self, session_id: str, name: str, args: tuple[Any, ...], options: Mapping[str, Any]) -> Any:
        """A session method by name; returns ``(its result, the session's info after it)``."""
        if name not in SESSION_METHODS:
            raise ValueError(f"not a session method: {name}")
        session = self._session(session_id)
        result = await getattr(session, name)(*args, **options)
        return result, session.info()

    def commands(self, session_id: str) -> dict[str, Any]:
        return {cid: command.result() for cid, command in self._session(session_id).commands.items()}

    def command(self, session_id: str, command_id: str) -> Any:
        return self._session(session_id).command(command_id).result()

    def history(self, session_id: str) -> list[Any]:
        return list(self._session(session_id).history)

    def live_figures(self, session_id: str) -> dict[str, Any]:
        return self._session(session_id).live_figures()

    async def workspace(self, session_id: str, name: str, args: tuple[Any, ...]) -> Any:
        if name not in WORKSPACE_METHODS:
            raise ValueError(f"not a workspace method: {name}")
        workspace = await self._session(session_id).open_workspace()
        return await asyncio.to_thread(getattr(workspace, name), *args)

    async def export(self, session_id: str) -> bytes:
        out = io.BytesIO()
        await self._session(session_id).export(out)
        return out.getvalue()

    async def import_session(self, data: bytes, owner: str) -> dict[str, Any]:
        session = await self.engine.import_session(data, owner=owner)
        return self.describe(session.id)

    async def fork_session(self, session_id: str, owner: str) -> dict[str, Any]:
        forked = await self.engine.fork_session(session_id, owner=owner)
        return self.describe(forked.id)

    async def close_session(self, session_id: str) -> None:
        try:
            await self.engine.close_session(session_id)
        except NotFoundError:
            pass  # gone already: deleting twice is not an error between front-ends

    # ---- failover ------------------------------------------------------------------------------

    async def adopt(self, dead_node_id: str) -> dict[str, str]:
        """Take over a dead node's sessions; returns their ids and owners."""
        adopted = await self.engine.adopt_sessions(node_data_dir(self.data_dir, dead_node_id))
        # The dead engine's leftovers, when it ran on this host (a one-machine cluster): its lock is free now.
        await asyncio.to_thread(cleanup_stale_instances, self.engine.config.state_dir)
        return {sid: self.engine.sessions[sid].owner for sid in adopted}
