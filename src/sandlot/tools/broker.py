"""One run's access to host tools: which tools, how many calls, how much time.

Every call is recorded (name, arguments, duration, status) for the execution
result and the metrics. Calls beyond ``max_calls``, or once the run's tool time
budget is spent, are refused with a ``limit`` error, so a runaway loop in the
sandbox cannot hammer a host service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import tracing
from .._models import ToolCallRecord
from .registry import ToolCallError, ToolRegistry


class ToolBroker:
    def __init__(self, registry: ToolRegistry, *, max_calls: int, max_total_time: float,
                 on_call: Callable[[ToolCallRecord], None] | None = None) -> None:
        self.registry = registry
        self.max_calls = max_calls
        self.max_total_time = max_total_time
        self.calls: list[ToolCallRecord] = []
        self._spent = 0.0
        self._started = 0
        self._on_call = on_call

    def specs(self) -> list[dict[str, Any]]:
        """The tools as the sandbox builds them; tools the run may not call are named only, so that
        importing one says it is not allowed rather than that it does not exist."""
        return [tool.sandbox_spec() for tool in self.registry] + \
            [{"name": name, "withheld": True} for name in self.registry.withheld]

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        """Run one call: (True, value) or (False, {"type", "message"})."""
        with tracing.span(f"execute_tool {name[:200]}", {"gen_ai.operation.name": "execute_tool",
                                                         "gen_ai.tool.name": name[:200]}) as span:
            ok, value = await self._call(name, arguments)
            span.set("sandlot.tool.status", "ok" if ok else value.get("type"))
            return ok, value

    async def _call(self, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        started = time.perf_counter()
        try:
            if self._started >= self.max_calls:
                raise ToolCallError(f"the limit of {self.max_calls} tool calls per run is reached", "limit")
            remaining = self.max_total_time - self._spent
            if remaining <= 0:
                raise ToolCallError(f"the run's tool time budget of {self.max_total_time:g}s is spent", "limit")
            self._started += 1
            tool = self.registry.get(name)
            value = await tool.call(arguments, timeout=min(tool.timeout, remaining))
        except ToolCallError as exc:
            self._record(name, arguments, started, exc.kind, str(exc))
            return False, {"type": exc.kind, "message": str(exc)}
        self._record(name, arguments, started, "ok", None)
        return True, value

    def _record(self, name: str, arguments: dict[str, Any], started: float, status: str, error: str | None) -> None:
        duration = time.perf_counter() - started
        if status != "limit":
            self._spent += duration
        record = ToolCallRecord(name=name[:200], arguments=arguments, duration_ms=round(duration * 1000, 3),
                                status=status, error=error)
        self.calls.append(record)
        if self._on_call is not None:
            self._on_call(record)
