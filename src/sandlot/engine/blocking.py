"""The blocking face of the engine.

One source of truth: ``Engine`` is async. ``Sandlot`` runs it on an event loop
in one background thread for its whole life (an anyio blocking portal) and
forwards each call there; it does not start a loop per call. That thread also
owns the zygote, whose PR_SET_PDEATHSIG is tied to the thread that started it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._config import EngineConfig
from .._models import CommandResult, ExecutionResult
from ..tools import ToolRegistry
from .collector import EventCallback
from .engine import Engine
from .session import Session
from .workspace import FileInfo

P = ParamSpec("P")
T = TypeVar("T")


class Sandlot:
    """Run untrusted Python from synchronous code: ``with Sandlot() as sl: sl.execute("print(1)")``."""

    def __init__(self, config: EngineConfig | None = None, tools: ToolRegistry | None = None) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal(backend="asyncio")
        self._portal = self._portal_cm.__enter__()
        self.engine = Engine(config, tools)
        try:
            self._portal.call(self.engine.start)
        except BaseException:
            self._portal.call(self.engine.close)
            self._portal_cm.__exit__(None, None, None)
            raise

    def __enter__(self) -> Sandlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Sandlot {self.engine!r}>"

    def execute(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes] | None = None,
                env: Mapping[str, str] | None = None, on_event: EventCallback | None = None,
                tools: Iterable[str] | None = None, limits: Mapping[str, float | int] | None = None,
                environment: str | None = None, network: Sequence[str] | None = None) -> ExecutionResult:
        """Run ``code`` once in a fresh sandbox (of ``environment``, default: the default one); see ``Engine.execute``."""
        return self._call(self.engine.execute, code, timeout=timeout, files=files, env=env, on_event=on_event,
                          tools=tools, limits=limits, environment=environment, network=network)

    def run_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                    timeout: float | None = None, stdin: str | None = None,
                    files: Mapping[str, bytes] | None = None, network: Sequence[str] | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` once in a fresh sandbox (see ``Engine.run_command``)."""
        return self._call(self.engine.run_command, cmd, cwd=cwd, env=env, timeout=timeout, stdin=stdin, files=files,
                          network=network)

    def session(self, *, timeout: float | None = None, idle_timeout: float | None = None,
                env: Mapping[str, str] | None = None, tools: Iterable[str] | None = None,
                limits: Mapping[str, float | int] | None = None, environment: str | None = None,
                network: Sequence[str] | None = None) -> SyncSession:
        """A stateful session (in ``environment``); use it as a context manager to close it at the end."""
        session = self._call(self.engine.create_session, timeout=timeout, idle_timeout=idle_timeout, env=env,
                             tools=tools, limits=limits, environment=environment, network=network)
        return SyncSession(self, session)

    def close(self) -> None:
        if self._portal_cm is not None:
            try:
                self._portal.call(self.engine.close)
            finally:
                self._portal_cm.__exit__(None, None, None)
                self._portal_cm = None  # type: ignore[assignment]

    def _call(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._portal.call(functools.partial(func, *args, **kwargs))


class SyncSession:
    """The blocking face of ``Session``."""

    def __init__(self, owner: Sandlot, session: Session) -> None:
        self._owner = owner
        self.session = session

    @property
    def id(self) -> str:
        return self.session.id

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, code: str, *, timeout: float | None = None,
                on_event: EventCallback | None = None) -> ExecutionResult:
        return self._owner._call(self.session.execute, code, timeout=timeout, on_event=on_event)

    def run_command(self, cmd: str, *, cwd: str | None = None, env: dict[str, str] | None = None,
                    timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` in this session's sandbox, on its files (see ``Session.run_command``)."""
        return self._owner._call(self.session.run_command, cmd, cwd=cwd, env=env, timeout=timeout, stdin=stdin)

    def interrupt(self) -> None:
        self._owner._call(self.session.interrupt)

    def upload(self, path: str, data: bytes) -> None:
        self.session.workspace.write(path, data)

    def download(self, path: str, max_bytes: int = 64 << 20) -> bytes:
        return self.session.workspace.read(path, max_bytes)

    def files(self) -> list[FileInfo]:
        return self.session.workspace.list_files()

    def close(self) -> None:
        if not self.session.closed:
            self._owner._call(self._owner.engine.close_session, self.session.id)
