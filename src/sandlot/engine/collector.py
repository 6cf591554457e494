"""One run's outputs as they arrive, kept within the run's output limits.

Stream text is kept up to ``output_size`` bytes, rich outputs (the channel's
bytes) up to ``rich_output_size``; the rest is dropped and the run says
``truncated``. Consecutive text of one stream is merged into one nbformat
``stream`` output, so the outputs keep the order things happened in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._config import Limits
from .._models import ExecutionError, Output, Status, StreamOutput, ToolCallRecord

EventCallback = Callable[[str, Any], None]
"""Called with ("stdout" | "stderr", text) or ("output", Output) as a run produces them."""


@dataclass
class RunOutcome:
    """A finished run, before it is dressed up as an ExecutionResult."""

    status: Status
    outputs: list[Output]
    stdout: str
    stderr: str
    error: ExecutionError | None
    duration_ms: float
    cpu_ms: float
    peak_memory_bytes: int | None
    truncated: bool
    sandbox_died: bool
    tool_calls: list[ToolCallRecord] = field(default_factory=list)


@dataclass
class Collector:
    """One run's outputs, in order, within the output limits."""

    limits: Limits
    on_event: EventCallback | None
    segments: list[Any] = field(default_factory=list)  # Output, or [name, [texts]] for a stream run
    text: dict[str, list[str]] = field(default_factory=lambda: {"stdout": [], "stderr": []})
    text_bytes: int = 0
    channel_bytes: int = 0
    truncated: bool = False

    def add_stream(self, name: str, text: str) -> None:
        room = self.limits.output_size - self.text_bytes
        encoded = text.encode("utf-8", "surrogatepass")
        if len(encoded) > room:
            self.truncated = True
            if room <= 0:
                return
            text = encoded[:room].decode("utf-8", "ignore")
            encoded = encoded[:room]
        self.text_bytes += len(encoded)
        self.text[name].append(text)
        last = self.segments[-1] if self.segments else None
        if isinstance(last, list) and last[0] == name:
            last[1].append(text)
        else:
            self.segments.append([name, [text]])
        if self.on_event is not None:
            self.on_event(name, text)

    def add_output(self, output: Output) -> None:
        if self.channel_bytes > self.limits.rich_output_size:
            self.truncated = True
            return
        self.segments.append(output)
        if self.on_event is not None:
            self.on_event("output", output)

    def outputs(self) -> list[Output]:
        return [StreamOutput(name=seg[0], text="".join(seg[1])) if isinstance(seg, list) else seg
                for seg in self.segments]
