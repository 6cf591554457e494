"""Request and response bodies of the HTTP API (see API.md), as pydantic models.

These shapes are the contract and the OpenAPI description is generated from
them. Unknown fields in sandlot's own requests are a 400 that names the field
(and the nearest known one): a misspelt ``"timeoutt": 5`` must not run with the
default timeout unnoticed. (The OpenAI-compatible request, in
``agent/openai_format.py``, keeps accepting what OpenAI's API accepts.) Known
fields are strict: a wrong type is a 400, never coerced ("5" is not a timeout,
"yes" is not a boolean).
"""

from __future__ import annotations

import base64
import binascii
import difflib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .._models import CommandResult, ExecutionResult


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800") that no UTF-8 channel can; refuse them here (400),
    # not deep in the engine (500).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]


def _environment(value: dict[str, str]) -> dict[str, str]:
    # What the interpreter's os.environ would refuse must be refused here: sent on, it ends the
    # interpreter, and a session would lose every restarted interpreter the same way.
    for name, text in value.items():
        if not name or "=" in name or "\x00" in name or "\x00" in text:
            raise ValueError("variable names must be non-empty, without '=' or NUL; values without NUL")
    return value


Env = Annotated[dict[Text, Text], AfterValidator(_environment)]


class RequestBody(BaseModel):
    """A request body of sandlot's own: strict types, and unknown fields refused by name."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        # pydantic's own message ("Extra inputs are not permitted") names neither what is known
        # nor what was probably meant; the 400 should let a person fix the request at once.
        if isinstance(data, dict):
            known = list(cls.model_fields)
            for name in data:
                if name not in cls.model_fields:
                    close = difflib.get_close_matches(str(name), known, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise PydanticCustomError("unknown_field", "unknown field {name}: {hint}known fields are {known}",
                                              {"name": repr(name)[:80], "hint": hint, "known": ", ".join(known)})
        return data


class ErrorBody(BaseModel):
    type: str = Field(description="A machine word: invalid_request, unauthorized, not_found, too_large, capacity...")
    message: str = Field(description="What went wrong, for a person.")


class ErrorResponse(BaseModel):
    """Every error response, whatever its status."""

    error: ErrorBody


class FileUpload(RequestBody):
    path: Text = Field(description="Relative path inside the workspace.", min_length=1, max_length=4096)
    content: str = Field(description="The file's bytes, base64-encoded.")

    @field_validator("content")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content must be valid base64") from None
        return value

    def data(self) -> bytes:
        return base64.b64decode(self.content)


Timeout = Field(None, gt=0, allow_inf_nan=False, description="Wall-clock seconds for this run.")


class LimitsOverride(RequestBody):
    """Limits for this run or session instead of the server's defaults, up to its maximums (sandlot extension)."""

    cpu_time: float | None = Field(None, gt=0, allow_inf_nan=False, description="CPU seconds.")
    memory: int | None = Field(None, gt=0, description="Bytes of memory.")
    pids: int | None = Field(None, gt=0, description="Processes and threads at once.")
    cpus: float | None = Field(None, gt=0, allow_inf_nan=False,
                               description="CPUs the sandbox may use at once (a cgroup quota; 0.5 is half a CPU).")
    file_size: int | None = Field(None, gt=0, description="Largest file, bytes.")
    open_files: int | None = Field(None, gt=0)
    address_space: int | None = Field(None, gt=0)
    workspace_size: int | None = Field(None, gt=0, description="Bytes of files in /workspace.")
    output_size: int | None = Field(None, gt=0, description="Bytes of stdout+stderr kept.")
    rich_output_size: int | None = Field(None, gt=0)

    def changes(self) -> dict[str, float | int]:
        return self.model_dump(exclude_none=True)


class NetworkRequest(RequestBody):
    """Network for this run or session, through the egress proxy (docs/egress.md): off unless asked for."""

    allow: list[Text] | None = Field(None, description="Destinations (domains, `*.domain`, `host:port`, addresses, "
                                     "CIDRs), each within what the server allows (else 400). Unset: all of that.")


class ExecuteRequest(RequestBody):
    code: Text = Field(description="Python source to run.")
    timeout: float | None = Timeout
    files: list[FileUpload] | None = Field(None, description="Files placed in the workspace before the run.")
    env: Env | None = Field(None, description="Environment variables for the run.")
    stream: bool = Field(False, description="Answer with Server-Sent Events instead of one JSON result.")
    tools: list[str] | None = Field(None, description="Host tools the code may call (default: all registered).")
    limits: LimitsOverride | None = None
    environment: Text | None = Field(None, description="The environment to run in (GET /v1/environments; "
                                                     "default: the server's default one).")
    network: NetworkRequest | None = Field(None, description="Network through the egress proxy (default: none).")


class SessionCreateRequest(RequestBody):
    timeout: float | None = Timeout
    idle_timeout: float | None = Field(None, gt=0, allow_inf_nan=False, description="Seconds the session may sit unused.")
    env: Env | None = None
    tools: list[str] | None = Field(None, description="Host tools the session's code may call (default: all).")
    limits: LimitsOverride | None = None
    environment: Text | None = Field(None, description="The environment to run in (GET /v1/environments; "
                                                     "default: the server's default one).")
    network: NetworkRequest | None = Field(None, description="Network for every cell and command of the session "
                                           "(default: none).")


def network_allow(network: NetworkRequest | None, operator_allows: tuple[str, ...]) -> list[str] | None:
    """What the engine gets as ``network``: None (no network), or the destinations asked for."""
    if network is None:
        return None
    return list(operator_allows) if network.allow is None else list(network.allow)


class SessionExecuteRequest(RequestBody):
    code: Text
    timeout: float | None = Timeout
    stream: bool = False


class CommandRequest(RequestBody):
    """A shell command: ``/bin/sh -c cmd`` in the sandbox (docs/commands.md)."""

    cmd: Text = Field(description="The command line, run by /bin/sh -c.", min_length=1)
    cwd: Text | None = Field(None, description="Directory relative to the workspace (default: the workspace).")
    env: Env | None = Field(None, description="Environment variables added for this command.")
    timeout: float | None = Field(None, gt=0, allow_inf_nan=False, description="Wall-clock seconds; then it is "
                                  "killed (status timeout). A background command has no limit without one.")
    stdin: Text | None = Field(None, description="Text given to the command's stdin, then end of file.")
    stream: bool = Field(False, description="Answer with Server-Sent Events: stdout, stderr, then done.")


class SessionCommandRequest(CommandRequest):
    background: bool = Field(False, description="Start it and answer 201 with its id at once; its stdin stays open.")


class OneShotCommandRequest(CommandRequest):
    files: list[FileUpload] | None = Field(None, description="Files placed in the workspace before the command.")
    limits: LimitsOverride | None = None
    network: NetworkRequest | None = Field(None, description="Network through the egress proxy (default: none).")


class CommandStarted(BaseModel):
    id: str = Field(description="cmd_...: GET, POST …/stdin and DELETE it under the session's /commands.")


class CommandList(BaseModel):
    commands: list[CommandResult]


class CommandStdinRequest(RequestBody):
    data: Text = Field(description="Text written to the command's stdin.")
    eof: bool = Field(False, description="Close its stdin afterwards.")


class SessionNetwork(BaseModel):
    allow: list[str] = Field(description="The destinations its code may reach through the egress proxy.")
    dropped: list[str] = Field([], description="Destinations it was granted that this server no longer allows (the "
                               "operator's list narrowed, or egress is off, since it was made); they come back if "
                               "the operator allows them again.")


class SessionInfo(BaseModel):
    id: str
    created_at: str
    expires_at: str = Field(description="When the session changes state if unused: a running one is paused "
                                        "(its idle_timeout), a paused one deleted (the server's paused_ttl).")
    execution_count: int
    state: Literal["running", "paused"] = Field(description="running: it may have an interpreter; paused: its state "
                                                            "is saved and no process is left (files stay reachable).")
    last_active_at: str
    environment: str = Field("default", description="The environment its interpreters run in.")
    network: SessionNetwork | None = Field(None, description="The session's egress policy, when it was made with "
                                           "network.")


class SessionMetrics(BaseModel):
    running: bool = Field(description="A cell is running now.")
    interpreter: bool = Field(description="The session has a live interpreter (false after a kill, until its next cell).")
    cpu_ms: float = Field(description="CPU its interpreter and every process in its sandbox used so far.")
    memory_bytes: int | None = Field(description="Memory in use now (the cgroup's count; RSS in degraded mode).")
    peak_memory_bytes: int | None = Field(description="The most memory in use since the current cell began.")
    pids: int | None = Field(description="Processes and threads in the sandbox now.")
    workspace_bytes: int = Field(description="Bytes of files in /workspace.")


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class FileEntry(BaseModel):
    path: str
    size: int
    modified_at: str


class FileList(BaseModel):
    files: list[FileEntry]


class BatchItem(RequestBody):
    code: Text
    session_id: Text | None = None
    timeout: float | None = Timeout
    environment: Text | None = Field(None, description="For an item without a session: the environment to run in. "
                                                       "With one, it must be the session's own (or absent).")
    network: NetworkRequest | None = Field(None, description="As for /v1/execute; an item for a session has the "
                                           "session's network instead.")


class BatchRequest(RequestBody):
    items: list[BatchItem] = Field(min_length=1)
    stream: bool = Field(False, description="Answer with Server-Sent Events: a `result` event per item "
                         "(`{\"index\", \"result\"}`), in item order, each as soon as it and every item before it "
                         "have finished, then `done` with the whole response.")


class BatchResponse(BaseModel):
    results: list[ExecutionResult]


class ZygoteHealth(BaseModel):
    state: str = Field(description="up, restarting, backing_off, starting or stopped.")
    pid: int | None = None
    restarts: int = Field(0, description="Zygotes started to replace one that died or stalled.")
    consecutive_failures: int = 0
    retry_in: float | None = Field(None, description="Seconds until the next restart attempt while backing off.")
    last_error: str | None = None


class EnvironmentHealth(BaseModel):
    state: str = Field(description="unused (never asked for yet: no process), failed (its zygote could not start; "
                                   "the next request tries again), up, restarting, backing_off, starting.")
    pid: int | None = None
    restarts: int = 0
    last_error: str | None = None
    pool_ready: int = 0
    pool_target: int = Field(0, description="Warm sandboxes its pool aims to keep now (it grows under bursts).")


class EnvironmentInfo(BaseModel):
    name: str
    python: str = Field(description="Its Python version.")
    executable: str = Field(description="The interpreter its zygote runs.")
    preload: list[str] = Field(description="Modules every run starts with imported.")
    default: bool = Field(description="The environment a request without `environment` runs in.")
    pool_size: int
    modules: dict[str, list[str] | None] = Field(description="Its module policy: `deny`, and `allow` (null: no "
                                                             "allow list).")
    distributions: list[dict[str, str]] | None = Field(None, description="With ?distributions=true: what is "
                                                                         "installed, [{name, version}].")


class EnvironmentList(BaseModel):
    environments: list[EnvironmentInfo]


class Health(BaseModel):
    status: str = Field(description="ok, unavailable or draining.")
    reasons: list[str] = Field(default_factory=list, description="Why a run cannot be served now (empty when ok).")
    isolation: str | None = None
    sandboxes_alive: int = 0
    sessions: int = 0
    pool_ready: int = Field(0, description="Warm sandboxes waiting: the default pool's and the lean zygote's.")
    zygote: ZygoteHealth | None = None
    environments: dict[str, EnvironmentHealth] | None = Field(
        None, description="The named environments' zygotes, by name (a dead one there does not make the server "
                          "unhealthy: that environment's requests wait for it, or get 503).")
    lean: EnvironmentHealth | None = Field(
        None, description="The lean zygote (it preloads nothing) that serves the one-shot runs whose code imports "
                          "only the standard library; absent when there is none. A dead one does not make the "
                          "server unhealthy: those runs go to the default zygote meanwhile.")
    version: str = ""


class ClusterNode(BaseModel):
    id: str = Field(description="The Ray node id.")
    healthy: bool = Field(description="Whether the node's engine can serve a run now.")
    lost: bool = Field(False, description="The node died; its sessions were restored on another node.")
    reasons: list[str] = Field(default_factory=list, description="Why it cannot serve a run (empty when healthy).")
    isolation: str | None = Field(None, description="full or landlock (degraded), as the node's host gives.")
    sandboxes: int = Field(description="Sandboxes alive on the node (pool, runs, sessions).")
    sessions: int = Field(description="Sessions the node holds.")
    pool_ready: int = Field(description="Warm sandboxes waiting on the node.")
    pool_target: int = 0
    runs: int = 0


class ClusterInfo(BaseModel):
    front_end_node: str = Field("", description="The Ray node this front-end's driver is attached to.")
    nodes: list[ClusterNode]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can answer."""
    return {status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]} for status in statuses}


_DESCRIPTIONS = {
    400: "Invalid request: bad JSON, missing or wrongly typed fields, a bad path.",
    401: "Missing or wrong API key.",
    404: "No such session or file.",
    413: "Code or upload over its limit.",
    429: "No capacity or quota left; see Retry-After.",
    503: "The server is shutting down.",
}
