"""Result types, and the schema every message from a sandbox must pass.

Outputs are Jupyter nbformat v4 output objects, exactly. Messages from the
sandbox are hostile input: after the framing layer has checked their size,
``parse_sandbox_message`` checks their shape, and nothing else reaches the
engine.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ._errors import ProtocolError

Status = Literal["ok", "error", "timeout", "memory", "killed"]


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOutput(_Output):
    """Text written to stdout or stderr (consecutive writes to one stream are merged)."""

    output_type: Literal["stream"] = "stream"
    name: Literal["stdout", "stderr"]
    text: str


class DisplayData(_Output):
    """A rich object shown with ``display()``, or a matplotlib figure: a MIME bundle."""

    output_type: Literal["display_data"] = "display_data"
    data: dict[str, Any]
    metadata: dict[str, Any] = {}


class ExecuteResult(_Output):
    """The value of the cell's trailing expression, as a MIME bundle."""

    output_type: Literal["execute_result"] = "execute_result"
    execution_count: int | None
    data: dict[str, Any]
    metadata: dict[str, Any] = {}


class ErrorOutput(_Output):
    """The exception that ended the cell."""

    output_type: Literal["error"] = "error"
    ename: str
    evalue: str
    traceback: list[str]


Output = Annotated[StreamOutput | DisplayData | ExecuteResult | ErrorOutput, Field(discriminator="output_type")]


class ExecutionError(BaseModel):
    """The exception user code raised: data, not a Python exception of ours."""

    ename: str
    evalue: str
    traceback: list[str]


class Usage(BaseModel):
    """Resources a run used: CPU time and peak memory (the cgroup's, where there is one)."""

    cpu_ms: float = 0.0
    peak_memory_bytes: int | None = None


class ToolCallRecord(BaseModel):
    """One call the run's code made to a host tool."""

    name: str
    arguments: dict[str, Any]
    duration_ms: float
    status: str = Field(description="ok, invalid_arguments, unknown_tool, tool_error, timeout or limit")
    error: str | None = None


class LostName(BaseModel):
    """A name a session's saved state does not hold, and why (it could not be pickled, the snapshot was over its cap)."""

    name: str = Field(max_length=1000)
    reason: str = Field(max_length=1000)


class Resumed(BaseModel):
    restored: list[str]
    lost: list[LostName]


_output_adapter: TypeAdapter[Output] = TypeAdapter(Output)


def parse_output(raw: dict[str, Any]) -> Output:
    return _output_adapter.validate_python(raw)


class NetworkConnection(BaseModel):
    """One connection the run's code asked the egress proxy for (docs/egress.md)."""

    host: str = Field(description="The host as the sandbox named it (a name or an address).")
    port: int
    allowed: bool
    method: str = Field("", description="CONNECT (a tunnel, HTTPS) or the plain-HTTP request's method.")
    bytes_sent: int = Field(0, description="Bytes from the sandbox to the destination.")
    bytes_received: int = Field(0, description="Bytes from the destination to the sandbox.")
    reason: str | None = Field(None, description="Why it was refused or ended early.")
    cached: bool = Field(False, description="Answered from the host's wheel cache, without a download.")


class ExecutionResult(BaseModel):
    """What every run returns (see API.md, "Execution result")."""

    id: str
    status: Status
    stdout: str = ""
    stderr: str = ""
    outputs: list[Output] = []
    error: ExecutionError | None = None
    execution_count: int | None = None
    duration_ms: float = 0.0
    usage: Usage = Usage()
    truncated: bool = False
    restarted: bool = False
    resumed: Resumed | None = Field(None, description="On the first result after a session's state was restored "
                                   "(a resume, a restart): the names that came back and those that did not, with why.")
    tool_calls: list[ToolCallRecord] = []
    network: list[NetworkConnection] = Field([], description="Connections through the egress proxy, allowed or "
                                             "not (only for a run or session with `network`).")


CommandStatus = Literal["running", "ok", "error", "timeout", "memory", "killed"]


class CommandResult(BaseModel):
    """A shell command's outcome (or, while a background one runs, its state and output so far)."""

    id: str = Field(description="cmd_...")
    cmd: str
    status: CommandStatus = Field(description="running; ok (exit 0); error (another exit code); timeout; memory; "
                                              "killed (DELETE, a signal, the sandbox ended, it could not start).")
    exit_code: int | None = Field(None, description="The shell's exit code; null while running or when a signal ended it.")
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    truncated: bool = Field(False, description="Output over the output_size limit was dropped (a background "
                                               "command keeps the most recent output, a foreground one the first).")
    background: bool = False
    error: str | None = Field(None, description="Why the command ended without an exit code, for a person.")
    network: list[NetworkConnection] = Field([], description="Connections through the egress proxy (a foreground "
                                             "command in a sandbox with network).")


# ---- messages from the sandbox -------------------------------------------

class ReadyMessage(BaseModel):
    t: Literal["ready"]


class FatalMessage(BaseModel):
    t: Literal["fatal"]
    message: str = Field(max_length=4096)


class StreamMessage(BaseModel):
    t: Literal["stream"]
    id: int | None
    name: Literal["stdout", "stderr"]
    text: str


class OutputMessage(BaseModel):
    t: Literal["output"]
    id: int | None
    output: Output


class CallMessage(BaseModel):
    t: Literal["call"]
    id: int
    tool: str = Field(max_length=200)
    args: dict[str, Any]


class SaveSummary(BaseModel):
    """What a save of a session's state wrote (or not: ``skipped`` says why)."""

    count: int
    names: list[str] = Field(max_length=1000)
    lost: list[LostName] = Field(max_length=1000)
    bytes: int = Field(ge=0)
    skipped: str | None = Field(None, max_length=1000)


class DoneMessage(BaseModel):
    t: Literal["done"]
    id: int | None
    status: Literal["ok", "error", "timeout", "memory"]
    error: ExecutionError | None
    cpu_ms: float = Field(ge=0)
    peak_rss: int = Field(ge=0)
    saved: SaveSummary | None = None
    """What the save after the previous cell wrote."""


class SavedMessage(SaveSummary):
    """The answer to a ``save`` or ``sync``: the summary of the save, as a message of its own."""

    t: Literal["saved"]
    id: int | None


class AttachedMessage(BaseModel):
    """The interpreter moved into a session's workspace and loaded what it could of the saved state."""

    t: Literal["attached"]
    id: int | None
    restored: list[str] = Field(max_length=1000)
    lost: list[LostName] = Field(max_length=1000)
    count: int | None = None


class CommandOutputMessage(BaseModel):
    """Text a shell command wrote to its stdout or stderr."""

    t: Literal["cmd_out"]
    id: int
    name: Literal["stdout", "stderr"]
    text: str


class CommandExitMessage(BaseModel):
    """A shell command ended: its exit code, or the signal that ended it, or why it never started."""

    t: Literal["cmd_exit"]
    id: int
    exit_code: int | None = Field(None, ge=0, le=255)
    signal: int | None = Field(None, ge=1, le=128)
    error: str | None = Field(None, max_length=4096)


SandboxMessage = Annotated[ReadyMessage | FatalMessage | StreamMessage | OutputMessage | CallMessage | DoneMessage
                           | SavedMessage | AttachedMessage | CommandOutputMessage | CommandExitMessage,
                           Field(discriminator="t")]
_sandbox_message: TypeAdapter[SandboxMessage] = TypeAdapter(SandboxMessage)


def parse_sandbox_message(raw: dict[str, Any]) -> SandboxMessage:
    try:
        return _sandbox_message.validate_python(raw)
    except ValidationError as exc:
        raise ProtocolError(f"malformed message from the sandbox: {exc.error_count()} schema errors") from None
