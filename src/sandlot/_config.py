"""Configuration: one typed object, value objects for limits, safe defaults.

``Limits`` is the sandbox policy's resource half: every field has a safe
default, and a request may ask for different values only up to the operator's
``max_limits``. ``EngineConfig`` holds everything the sandbox engine needs;
the server's config (a later layer) embeds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._errors import InvalidRequestError
from .egress.settings import EgressSettings

MiB = 1 << 20
GiB = 1 << 30

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY = 1 * GiB
DEFAULT_PIDS = 128
DEFAULT_CPUS = 1.0
DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib")
DEFAULT_ENVIRONMENT = "default"
"""The environment a request without ``"environment"`` runs in: the server's own Python, ``[engine]``'s preloads."""

Isolation = Literal["auto", "strict", "landlock"]
"""``strict``: namespaces, cgroups and seccomp or refuse to start. ``auto``: the
same where the host allows it, else the degraded Landlock mode (said loudly).
``landlock``: the degraded mode on purpose."""


class Limits(BaseModel):
    """Per-run resource limits. Each maps to a distinct result status when hit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, description="Wall-clock seconds per run (status `timeout`).")
    cpu_time: float | None = Field(None, gt=0, description="CPU seconds per run; defaults to the timeout (status `timeout`).")
    memory: int = Field(DEFAULT_MEMORY, ge=32 * MiB, description="Bytes of memory, cgroup-enforced (status `memory`).")
    pids: int = Field(DEFAULT_PIDS, ge=8, description="Processes and threads at once (fork fails beyond).")
    cpus: float = Field(DEFAULT_CPUS, ge=0.01, allow_inf_nan=False,
                        description="CPUs the sandbox may use at once, all its processes together (the cpu "
                                    "cgroup's quota; not enforced without the cpu controller).")
    file_size: int = Field(256 * MiB, ge=MiB, description="Largest file a sandbox may write (RLIMIT_FSIZE).")
    open_files: int = Field(1024, ge=64, description="Open file descriptors (RLIMIT_NOFILE).")
    address_space: int = Field(16 * GiB, ge=GiB, description="Virtual memory (RLIMIT_AS); the only memory limit in degraded mode.")
    workspace_size: int = Field(512 * MiB, ge=MiB, description="Bytes of files in /workspace.")
    tmp_size: int = Field(256 * MiB, ge=MiB, description="Bytes of files in /tmp.")
    output_size: int = Field(1 * MiB, ge=1024, description="Bytes of stdout+stderr kept per run; the rest is dropped (`truncated`).")
    rich_output_size: int = Field(32 * MiB, ge=MiB, description="Bytes of rich outputs (images, HTML) kept per run.")

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_time if self.cpu_time is not None else self.timeout

    def override(self, maximum: Limits, **changes: float | int | None) -> Limits:
        """These limits with ``changes`` applied, refused beyond ``maximum``."""
        wanted = {k: v for k, v in changes.items() if v is not None}
        if not wanted:
            return self
        for name, value in wanted.items():
            ceiling = getattr(maximum, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidRequestError(f"{name} must be a positive number")
            if ceiling is not None and value > ceiling:
                raise InvalidRequestError(f"{name}={value} is above the server's maximum of {ceiling}")
        try:
            # Validated, not copied: every limit also has a floor a sandbox needs to start at all.
            return Limits.model_validate({**self.model_dump(), **wanted})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidRequestError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


class ModulePolicy(BaseModel):
    """Which modules an environment's code may import: policy enforced by the runtime's import hook, not the
    security boundary (the kernel isolation is; docs/environments.md says why). Names are modules or packages
    (``socket``, ``numpy.random``): a name covers its submodules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deny: tuple[str, ...] = Field((), description="Modules that may not be imported (ImportError naming the policy).")
    allow: tuple[str, ...] | None = Field(None, description="If set, the only modules beyond the standard library "
                                          "that may be imported (list a library's own dependencies too).")

    @field_validator("deny", "allow")
    @classmethod
    def _module_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"{name!r} is not a module name")
        return value

    @property
    def active(self) -> bool:
        return bool(self.deny) or self.allow is not None


class EnvironmentSpec(BaseModel):
    """A named environment: its own interpreter, preloads, limits and warm pool, with its own zygote
    (started at its first use). ``[engine.environments.NAME]`` in the config (docs/environments.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str = Field(description="The interpreter (…/bin/python) or a virtualenv's directory; the same major and "
                                    "minor Python version as the server's (the runtime is loaded from the server).")
    preload: tuple[str, ...] = Field((), description="Modules its zygote imports once, so every run starts with them.")
    pool_size: int = Field(1, ge=0, le=256, description="Sandboxes kept forked and waiting once it was first used.")
    pool_max_size: int | None = Field(None, ge=0, le=1024, description="The most its pool grows to under bursts, as "
                                      "[engine] pool_max_size for the default environment's (and shrinking back after "
                                      "its pool_shrink_after). Unset: 4x pool_size, at most half of max_sandboxes. 0 "
                                      "or pool_size: a fixed pool.")
    limits: Limits | None = Field(None, description="Its default limits (unset: [engine.limits]); still capped by "
                                                    "[engine.max_limits].")
    modules: ModulePolicy = ModulePolicy()


DEFAULT_MAX_LIMITS = Limits(timeout=600.0, memory=8 * GiB, pids=1024, cpus=8.0, file_size=4 * GiB,
                            workspace_size=8 * GiB, tmp_size=4 * GiB, output_size=64 * MiB)


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return "/run/sandlot"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime_dir, "sandlot") if runtime_dir else f"/tmp/sandlot-{os.geteuid()}"


def default_data_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/sandlot"
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "sandlot")


def default_cache_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "sandlot")


class EngineConfig(BaseModel):
    """Everything the sandbox engine needs. Defaults are safe and work out of the box."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    isolation: Isolation = "auto"
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    pool_size: int = Field(4, ge=0, le=256, description="Sandboxes kept forked and waiting (the pool's size when idle).")
    pool_max_size: int | None = Field(None, ge=0, le=1024, description="The most sandboxes the pool grows to under "
                                      "bursts: each request that finds it empty adds one. Unset: 4x pool_size, at "
                                      "most half of max_sandboxes. 0 or pool_size: a fixed pool.")
    lean_pool_size: int = Field(4, ge=0, le=256, description="Sandboxes kept warm by the lean zygote, which "
                                "preloads nothing and serves the one-shot runs whose code imports only the "
                                "standard library: they start and exit several ms of CPU cheaper. 0: no lean "
                                "zygote (every run from the default one). Unused when nothing is preloaded.")
    pool_shrink_after: float = Field(30.0, gt=0, description="Seconds without a request finding the pool empty "
                                     "after which a grown pool falls halfway back to pool_size (and again after as "
                                     "many more).")
    max_sandboxes: int = Field(64, ge=1, description="Sandboxes alive at once (pool, runs and sessions).")
    limits: Limits = Limits()
    max_limits: Limits = DEFAULT_MAX_LIMITS
    session_idle_timeout: float = Field(600.0, gt=0, description="Seconds a session may sit unused before it is paused "
                                        "(its state saved, its interpreter ended).")
    session_max_lifetime: float = Field(30 * 24 * 3600.0, gt=0, description="Seconds a session may live at all.")
    paused_ttl: float = Field(7 * 24 * 3600.0, gt=0, description="Seconds a paused session is kept unused before it is deleted.")
    snapshots: Literal["every_cell", "on_pause"] = Field(
        "every_cell", description="When a session's state is saved: after every cell that completes (off the "
                                  "request path), or only when it is paused.")
    snapshot_max_bytes: int = Field(256 * MiB, ge=0, description="Largest saved session state; a bigger one is not "
                                    "kept, and the session says so.")
    data_dir: str | None = Field(None, description="Where sessions are kept (records, files, saved state) so that they "
                                 "survive a restart. Unset or empty: inside the state dir, gone when the engine stops. "
                                 "`sandlot serve` defaults it to /var/lib/sandlot (root) or ~/.local/share/sandlot.")
    interrupt_grace: float = Field(2.0, gt=0, description="Seconds a timed-out session cell gets to stop after an interrupt.")
    state_dir: str = Field(default_factory=default_state_dir, description="Where workspaces and mount points live.")
    cache_dir: str = Field(default_factory=default_cache_dir, description="Persistent caches (matplotlib's font list).")
    uid_base: int = Field(600_000, ge=1000, description="First uid handed to sandboxes; one uid per live sandbox.")
    uid_count: int = Field(10_000, ge=16)
    hostname: str = "sandbox"
    max_tool_calls: int = Field(200, ge=1, description="Host tool calls one run may make.")
    max_tool_time: float = Field(120.0, gt=0, description="Seconds of host tool time one run may use, all calls together.")
    modules: ModulePolicy = Field(ModulePolicy(), description="The default environment's module policy.")
    environments: dict[str, EnvironmentSpec] = Field(
        default_factory=dict, description="Named environments beside the default one (docs/environments.md).")

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, value: dict[str, EnvironmentSpec]) -> dict[str, EnvironmentSpec]:
        for name in value:
            if name == DEFAULT_ENVIRONMENT:
                raise ValueError(f"{DEFAULT_ENVIRONMENT!r} is the server's own environment: set it with [engine] "
                                 "preload, pool_size, limits and modules")
            if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
                raise ValueError(f"environment name {name!r}: letters, digits, '-', '_' and '.' only (64 at most)")
        return value
    egress: EgressSettings = Field(EgressSettings(), description="Network for runs that ask for it, through the "
                                   "host's egress proxy (docs/egress.md); off unless `allow` names something.")

    @field_validator("max_limits", mode="before")
    @classmethod
    def _unnamed_maximums_stay_default(cls, value: Any) -> Any:
        # A config that raises one maximum ([engine.max_limits] timeout = 900) keeps the default
        # maximums for the others, not Limits' defaults (which would lower the memory maximum to 1 GiB).
        if isinstance(value, dict):
            return {**DEFAULT_MAX_LIMITS.model_dump(), **value}
        return value

    def run_limits(self, timeout: float | None, changes: Mapping[str, float | int] | None,
                   base: Limits | None = None) -> Limits:
        """The default limits (an environment's, ``base``) with a request's changes, refused beyond ``max_limits``
        (every engine face's rule)."""
        changes = dict(changes or {})
        unknown = set(changes) - set(Limits.model_fields)
        if unknown:
            raise InvalidRequestError(f"unknown limits: {', '.join(sorted(unknown))}")
        if "tmp_size" in changes:
            raise InvalidRequestError("tmp_size is the server's setting; it cannot change per run")
        return (base or self.limits).override(self.max_limits, timeout=timeout, **changes)
