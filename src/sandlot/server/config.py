"""The server's configuration: one typed object, from a TOML file, the
environment (``SANDLOT_*``) and the command line, in rising precedence.

Every setting has an environment variable, flag or not (``environment()``):
``SANDLOT_<NAME>`` for the top level, ``[engine]`` and ``[engine.limits]``
(their names do not clash), ``SANDLOT_MAX_<NAME>`` for ``[engine.max_limits]``, ``SANDLOT_EGRESS_<NAME>`` for ``[engine.egress]``
and ``SANDLOT_AGENT_<NAME>`` for ``[agent]``. The ``sandlot serve`` options
read the same variables. docs/configuration.md lists them all.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._config import EngineConfig, Limits, MiB
from .._errors import SetupError
from ..agent.config import AgentSettings, UpstreamModel
from ..egress.settings import EgressSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
INSECURE_FLAG = "--insecure-no-auth-on-public-interface"


class ServerConfig(BaseModel):
    """Everything ``sandlot serve`` needs; the defaults are safe on a laptop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(DEFAULT_HOST, description="Address to bind; beyond loopback, API keys are required.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    api_keys: tuple[str, ...] = Field((), description="Accepted bearer keys; none means no auth (loopback only).")
    api_keys_file: str | None = Field(None, description="A file with one API key per line (# comments allowed).")
    insecure_no_auth_on_public_interface: bool = Field(
        False, description="Serve a non-loopback address without API keys. Anyone who can reach it runs code.")
    max_sessions_per_key: int = Field(32, ge=1, description="Open sessions per API key.")
    max_runs_per_key: int = Field(32, ge=1, description="Runs in flight per API key.")
    max_request_bytes: int = Field(64 * MiB, ge=1024, description="Largest request body.")
    max_file_bytes: int = Field(64 * MiB, ge=1024, description="Largest file upload or download.")
    max_batch_items: int = Field(32, ge=1, description="Items per batch (keep it within max_runs_per_key).")
    request_read_timeout: float = Field(30.0, gt=0, description="Seconds a client has to send a request's headers, "
                                        "and again its body; a slower one is cut off (slowloris).")
    shutdown_grace: float = Field(10.0, ge=0, description="Seconds the calls in flight get to finish on SIGTERM or SIGINT.")
    log_level: str = Field("info", description="debug, info, warning or error.")
    engine: EngineConfig = EngineConfig()
    models: tuple[UpstreamModel, ...] = Field((), description="Upstream models for /v1/chat/completions.")
    tools: str | None = Field(None, description="Host tools for sandboxed code: module:attribute of a ToolRegistry "
                                                "or a list of functions (docs/tools.md).")
    agent: AgentSettings = AgentSettings()
    ui: bool = Field(True, description="Serve the browser playground at / and /ui/ (docs/ui.md).")
    e2b: bool = Field(False, description="Also speak E2B's API, so the unmodified E2B SDKs work (docs/e2b.md); "
                                         "needs the `e2b` extra.")
    ray: str | None = Field(None, description="Cluster mode: the Ray cluster to serve from (host:port of its head, "
                                              "or `auto`), one engine per node (docs/cluster.md). Unset: this machine.")
    ray_node_resource: str | None = Field(None, description="Cluster mode: only nodes with this Ray custom resource "
                                                            "get an engine (unset: every node).")

    def all_api_keys(self) -> tuple[str, ...]:
        keys = list(self.api_keys)
        if self.api_keys_file:
            try:
                with open(self.api_keys_file) as f:
                    keys += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
            except OSError as exc:
                raise SetupError(f"cannot read the API keys file {self.api_keys_file!r}: {exc.strerror}") from None
        return tuple(dict.fromkeys(keys))

    def check_bind_is_safe(self) -> None:
        """Refuse to serve a non-loopback address without API keys, unless told so explicitly."""
        if is_loopback(self.host) or self.all_api_keys() or self.insecure_no_auth_on_public_interface:
            return
        raise SetupError(f"refusing to serve {self.host} without API keys: anyone who can reach it could run code. "
                         f"Give --api-key or --api-keys-file, or pass {INSECURE_FLAG} if you really mean it.")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Where each scalar setting lives: (table path, the model of that table, the variables' prefix).
_TABLES: tuple[tuple[tuple[str, ...], type[BaseModel], str], ...] = (
    ((), ServerConfig, ""), (("engine",), EngineConfig, ""), (("engine", "limits"), Limits, ""),
    (("engine", "max_limits"), Limits, "MAX_"), (("engine", "egress"), EgressSettings, "EGRESS_"),
    (("agent",), AgentSettings, "AGENT_"))


def _scalar(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return not (isinstance(annotation, type) and issubclass(annotation, BaseModel)) and name != "models"


def environment_variables() -> dict[str, str]:
    """Every ``SANDLOT_*`` variable a setting reads, and the setting's dotted name."""
    found = {}
    for path, model, prefix in _TABLES:
        for name in model.model_fields:
            if _scalar(model, name):
                found[f"SANDLOT_{prefix}{name.upper()}"] = ".".join((*path, name))
    return found


def environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings given in ``env`` (default: ``os.environ``), as dotted names; lists comma-separated.

    ``SANDLOT_API_KEY`` (one key, what the client sends) is also accepted by the server, so one
    exported variable makes both ends agree.
    """
    env = os.environ if env is None else env
    found: dict[str, Any] = {}
    for variable, dotted in environment_variables().items():
        if variable in env:
            found[dotted] = _parse(dotted, env[variable])
    if env.get("SANDLOT_API_KEY"):
        found["api_keys"] = (*found.get("api_keys", ()), env["SANDLOT_API_KEY"])
    return found


def _parse(dotted: str, text: str) -> Any:
    if dotted in ("api_keys", "engine.preload", "engine.egress.allow", "engine.egress.headers"):
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if dotted == "engine.environments":  # the one-line forms, ;-separated
        from ..environments import parse_environments

        return parse_environments([text])
    return text  # pydantic converts ("2" -> 2, "true" -> True) and refuses what does not fit, naming the setting


def load_config(toml_path: str | None = None, overrides: dict[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> ServerConfig:
    """Build the config: defaults < TOML file < environment (``env``, default ``os.environ``) < ``overrides``
    (the command line; dotted names such as ``engine.limits.timeout`` reach into tables)."""
    data: dict[str, Any] = {}
    if toml_path:
        try:
            with open(toml_path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SetupError(f"cannot read the config file {toml_path!r}: {exc}") from None
        data = data.get("sandlot", data)  # allow a [sandlot] table or top-level keys
    for key, value in [*environment(env).items(), *(overrides or {}).items()]:
        if value is None:
            continue
        if key == "api_keys":  # keys add up: every key given anywhere is accepted
            value = (*data.get("api_keys", ()), *value)
        if key == "engine.environments":  # environments add up too; a name given again is replaced
            value = {**data.get("engine", {}).get("environments", {}), **value}
        _set_nested(data, key.split("."), value)
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "there is no such setting" + _where_it_belongs(tuple(str(p) for p in first["loc"]))
        raise SetupError(f"invalid setting {where}: {message}{more}") from None


def _where_it_belongs(loc: tuple[str, ...]) -> str:
    """A hint for a setting put in the wrong table (``pool_size`` at the top instead of in ``[engine]``)."""
    name = loc[-1]
    for path, model, _prefix in _TABLES:
        if name in model.model_fields and path != loc[:-1]:
            table = ".".join(path)
            return f" here; it belongs in [{table}] (see docs/configuration.md)" if table else \
                " here; it is a top-level setting (see docs/configuration.md)"
    return " (see docs/configuration.md)"


def _set_nested(data: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value

