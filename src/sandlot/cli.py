"""The ``sandlot`` command line.

Errors are one clear line on stderr and an exit code from the error's class,
never a traceback. ``sandlot run`` exits with the run's status:

    ok 0 · error 1 · timeout 124 · memory 137 · killed 137 · sandlot itself failed: 3 (setup) / 1

and, like python, with the code of a ``SystemExit`` the code raised (``sys.exit(3)`` exits 3,
``sys.exit()`` 0, ``sys.exit("message")`` prints the message and exits 1), without a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from ._config import EngineConfig
from ._errors import SandlotError, SetupError

STATUS_EXIT_CODES = {"ok": 0, "error": 1, "timeout": 124, "memory": 137, "killed": 137}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "SANDLOT"})
@click.version_option(package_name="sandlot")
def main() -> None:
    """sandlot: run untrusted Python in kernel-isolated sandboxes, in milliseconds."""


F = TypeVar("F", bound=Callable[..., Any])


def _opt(*names: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    """An option that also reads ``SANDLOT_<env>`` and says so in --help."""
    option: Callable[[F], F] = click.option(*names, envvar=f"SANDLOT_{env}", show_envvar=True, default=None, **kwargs)
    return option


def _engine_options(func: F) -> F:
    """The engine's settings, shared by `serve` and `mcp`."""
    options = [
        _opt("--isolation", env="ISOLATION", type=click.Choice(["auto", "strict", "landlock"]),
             help="strict: refuse to start without namespaces.  [default: auto]"),
        _opt("--pool-size", env="POOL_SIZE", type=int, help="Sandboxes kept warm.  [default: 4]"),
        _opt("--max-sandboxes", env="MAX_SANDBOXES", type=int, help="Sandboxes alive at once.  [default: 64]"),
        _opt("--preload", env="PRELOAD",
             help="Comma-separated modules the zygote imports.  [default: numpy,pandas,matplotlib]"),
        _opt("--timeout", env="TIMEOUT", type=float, help="Default wall-clock seconds per run.  [default: 30]"),
        _opt("--memory", env="MEMORY", type=int, help="Default memory limit per sandbox, bytes.  [default: 1 GiB]"),
        _opt("--state-dir", env="STATE_DIR", help="Where workspaces and mount points live."),
        _opt("--environment", "environments", env="ENVIRONMENTS", multiple=True,
             help="A named environment: NAME=PYTHON[:preload=a,b][:pool_size=N][:deny=x,y][:allow=z] (PYTHON: an "
                  "interpreter or a virtualenv's directory; repeat for several; docs/environments.md)."),
        _opt("--egress-allow", env="EGRESS_ALLOW", multiple=True,
             help="A destination runs that ask for network may reach: example.com, *.example.com, host:port, "
                  "an address or a CIDR (repeat, or comma-separate; docs/egress.md).  [default: none, no network]"),
        _opt("--egress-header", env="EGRESS_HEADERS", multiple=True,
             help="DEST=Header-Name:env:VARIABLE: a header the egress proxy adds to plain-HTTP requests to DEST, "
                  "its value from this server's environment (repeat for several)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _engine_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Config overrides (``engine.…``) from the shared engine options; None means not given."""
    preload = options["preload"]
    return {
        "engine.isolation": options["isolation"], "engine.pool_size": options["pool_size"],
        "engine.max_sandboxes": options["max_sandboxes"], "engine.state_dir": options["state_dir"],
        "engine.preload": tuple(m for m in preload.split(",") if m) if preload is not None else None,
        "engine.limits.timeout": options["timeout"], "engine.limits.memory": options["memory"],
        "engine.environments": _environments(options.get("environments")),
        "engine.egress.allow": _listed(options["egress_allow"]),
        "engine.egress.headers": _listed(options["egress_header"]),
    }


def _environments(given: tuple[str, ...] | None) -> dict[str, Any] | None:
    if not given:
        return None
    from .environments import parse_environments

    try:
        parsed: dict[str, Any] = parse_environments(given)
    except SandlotError as exc:
        _fail(exc)
    return parsed


def _listed(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A repeatable option's values, each of which may be comma-separated; None when not given."""
    found = tuple(item.strip() for value in values or () for item in value.split(",") if item.strip())
    return found or None


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="SANDLOT_CONFIG", show_envvar=True,
              help="A TOML file with any of these settings (CLI and environment win over it).")
@_opt("--host", env="HOST", help="Address to bind.  [default: 127.0.0.1]")
@_opt("--port", env="PORT", type=int, help="Port to bind.  [default: 8765]")
@_opt("--api-key", "api_keys", env="API_KEYS", multiple=True,
      help="An accepted API key (repeat for several; SANDLOT_API_KEY, the client's, is accepted too).")
@_opt("--api-keys-file", env="API_KEYS_FILE", help="A file with one API key per line.")
@click.option("--insecure-no-auth-on-public-interface", "insecure", is_flag=True, default=None,
              envvar="SANDLOT_INSECURE_NO_AUTH_ON_PUBLIC_INTERFACE", show_envvar=True,
              help="Serve a non-loopback address without API keys. Anyone who reaches it can run code.")
@_engine_options
@_opt("--max-sessions-per-key", env="MAX_SESSIONS_PER_KEY", type=int, help="[default: 32]")
@_opt("--max-runs-per-key", env="MAX_RUNS_PER_KEY", type=int, help="[default: 32]")
@_opt("--shutdown-grace", env="SHUTDOWN_GRACE", type=float,
      help="Seconds the calls in flight get to finish on SIGTERM or SIGINT.  [default: 10]")
@_opt("--log-level", env="LOG_LEVEL", type=click.Choice(["debug", "info", "warning", "error"]), help="[default: info]")
@_opt("--model-url", env="MODEL_URL", help="An OpenAI-compatible upstream for /v1/chat/completions (its base URL).")
@_opt("--model", env="MODEL", help="The upstream's model name; also the name clients use.")
@_opt("--model-key-env", env="MODEL_KEY_ENV", help="Environment variable that holds the upstream's API key.")
@_opt("--tools", env="TOOLS", help="Host tools for sandboxed code: module:attribute of a ToolRegistry or a list of "
                                    "functions (docs/tools.md).")
@_opt("--action-format", env="ACTION_FORMAT", type=click.Choice(["tool_calls", "code_blocks", "auto"]),
      help="How the model asks to run code.  [default: auto]")
@click.option("--ui/--no-ui", "ui", default=None, envvar="SANDLOT_UI", show_envvar=True,
              help="Serve the browser playground at / and /ui/.  [default: on]")
@click.option("--e2b/--no-e2b", "e2b", default=None, envvar="SANDLOT_E2B", show_envvar=True,
              help="Also speak E2B's API so the E2B SDKs work unchanged (docs/e2b.md; the `e2b` extra).  [default: off]")
@_opt("--ray", env="RAY", help="Cluster mode: serve from the Ray cluster at ADDRESS (host:port of its head; auto: "
                               "this machine's), one engine per node (docs/cluster.md). Needs sandlot[ray].")
@_opt("--ray-node-resource", env="RAY_NODE_RESOURCE", help="Cluster mode: only nodes with this Ray resource get an engine.")
@_opt("--data-dir", env="DATA_DIR", help="Where sessions are kept; in cluster mode a directory every node can read.")
def serve(config_file: str | None, **options: Any) -> None:
    """Start the HTTP server (API.md) with safe defaults on 127.0.0.1."""
    from .server import load_config
    from .server import serve as run_server

    overrides: dict[str, Any] = {
        "host": options["host"], "port": options["port"], "api_keys_file": options["api_keys_file"],
        "api_keys": tuple(k for value in options["api_keys"] for k in value.split(",") if k) or None,
        "insecure_no_auth_on_public_interface": options["insecure"],
        "max_sessions_per_key": options["max_sessions_per_key"], "max_runs_per_key": options["max_runs_per_key"],
        "shutdown_grace": options["shutdown_grace"], "log_level": options["log_level"], "tools": options["tools"],
        "ui": options["ui"], "e2b": options["e2b"], "ray": options["ray"],
        "ray_node_resource": options["ray_node_resource"], "engine.data_dir": options["data_dir"],
        **_engine_overrides(options),
    }
    if options["model_url"]:
        overrides["models"] = ({
            "name": options["model"] or "default", "base_url": options["model_url"],
            "api_key_env": options["model_key_env"], "action_format": options["action_format"] or "auto"},)
    elif options["model"] or options["model_key_env"] or options["action_format"]:
        _fail(SetupError("--model, --model-key-env and --action-format need --model-url"))
    try:
        run_server(load_config(config_file, overrides))
    except SandlotError as exc:
        _fail(exc)


@main.command()
@click.option("--isolation", type=click.Choice(["auto", "strict", "landlock"]), default="auto", show_default=True,
              help="The isolation the server would be asked for.")
def doctor(isolation: str) -> None:
    """Report what this host supports and which isolation sandlot would use."""
    from .engine.host import choose_isolation, probe

    support = probe()
    click.echo(f"kernel {support.kernel}")
    for check, ok, detail in support.report():
        mark = click.style("ok  ", fg="green") if ok else click.style("no  ", fg="red")
        click.echo(f"  {mark} {check}" + (f"  ({detail})" if detail else ""))
    try:
        mode = choose_isolation(isolation, support)  # type: ignore[arg-type]
    except SandlotError as exc:
        _fail(exc)
    if mode == "namespaces":
        click.echo("isolation: full (namespaces, cgroups, seccomp, per-sandbox uids)")
    else:
        click.echo(click.style("isolation: DEGRADED (Landlock, seccomp, rlimits; no namespaces or cgroups)", fg="yellow"))


@main.command()
@click.argument("file")
@click.option("--shell", is_flag=True, help="FILE is a shell script, or else a command line, run by /bin/sh -c.")
@click.option("--timeout", type=float, default=None, help="Wall-clock seconds for the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the full execution result as JSON.")
@click.option("--url", envvar="SANDLOT_URL", show_envvar=True, default=None,
              help="A running sandlot server; without it, the code runs in this process.")
@click.option("--api-key", envvar="SANDLOT_API_KEY", show_envvar=True, default=None, help="The server's API key.")
@click.option("--isolation", type=click.Choice(["auto", "strict", "landlock"]), default="auto", show_default=True,
              help="In-process only.")
def run(file: str, shell: bool, timeout: float | None, as_json: bool, url: str | None, api_key: str | None,
        isolation: str) -> None:
    """Run FILE (or - for stdin) once in a fresh sandbox and print its output like python would.

    With --shell, FILE (a script, or - for stdin) or else the argument itself is run by /bin/sh -c,
    and the exit code is the command's."""
    if shell:
        _run_shell(file, timeout, as_json, url, api_key, isolation)
    try:
        with click.open_file(file, "r") as f:
            code = f.read()
    except OSError as exc:
        raise click.BadParameter(f"{file}: {exc.strerror}", param_hint="FILE") from None

    def echo(kind: str, payload: Any) -> None:
        if as_json:
            return
        if kind in ("stdout", "stderr"):
            text = payload if isinstance(payload, str) else getattr(payload, "text", "")
            stream = sys.stdout if kind == "stdout" else sys.stderr
            stream.write(text)
            stream.flush()
            return
        output = payload
        output_type = getattr(output, "output_type", None)
        if output_type == "execute_result":
            click.echo(output.data.get("text/plain", ""))
        elif output_type == "display_data":
            click.echo(f"[display: {', '.join(sorted(output.data))}]", err=True)
        elif output_type == "error":
            if output.ename == "SystemExit":
                if _system_exit_code(output.evalue) is None:
                    click.echo(output.evalue, err=True)  # python prints a non-integer exit "code"
            else:
                click.echo("\n".join(output.traceback), err=True)

    try:
        if url:
            from .client import Client

            with Client(url, api_key=api_key) as client:
                result = client.execute(code, timeout=timeout, on_event=None if as_json else _client_echo(echo))
        else:
            from .engine import Sandlot

            with Sandlot(EngineConfig(isolation=isolation, pool_size=0)) as sandlot:
                result = sandlot.execute(code, timeout=timeout, on_event=echo)
    except SandlotError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    elif result.truncated:
        click.echo("[sandlot] the output was over the limit; the rest was dropped", err=True)
    if result.status == "error" and result.error is not None and result.error.ename == "SystemExit":
        code = _system_exit_code(result.error.evalue)
        sys.exit(1 if code is None else code)
    sys.exit(STATUS_EXIT_CODES[result.status])


@main.group()
@click.option("--url", envvar="SANDLOT_URL", show_envvar=True, default="http://127.0.0.1:8765", show_default=True,
              help="The sandlot server.")
@click.option("--api-key", envvar="SANDLOT_API_KEY", show_envvar=True, default=None, help="The server's API key.")
@click.pass_context
def sessions(ctx: click.Context, url: str, api_key: str | None) -> None:
    """A server's sessions: list, pause, resume, fork, export, import, delete (docs/sessions.md)."""
    ctx.obj = {"url": url, "api_key": api_key}


@contextlib.contextmanager
def _session_client(ctx: click.Context) -> Iterator[Any]:
    """A client for the group's server; a SandlotError on the way is reported in one line (exit status)."""
    from .client import Client

    try:
        with Client(ctx.obj["url"], api_key=ctx.obj["api_key"]) as client:
            yield client
    except SandlotError as exc:
        _fail(exc)


def _print_session(info: Any) -> None:
    click.echo(f"{info.id}  {info.state:<7}  cells {info.execution_count:<4}  until {info.expires_at.isoformat()}")


@sessions.command("list")
@click.option("--state", type=click.Choice(["running", "paused"]), default=None, help="Only these.")
@click.pass_context
def sessions_list(ctx: click.Context, state: str | None) -> None:
    """This key's sessions."""
    with _session_client(ctx) as client:
        for info in client.list_sessions(state):
            _print_session(info)


@sessions.command("pause")
@click.argument("session_id")
@click.pass_context
def sessions_pause(ctx: click.Context, session_id: str) -> None:
    """Save a session's state and end its interpreter."""
    with _session_client(ctx) as client:
        _print_session(client.get_session(session_id).pause())


@sessions.command("resume")
@click.argument("session_id")
@click.pass_context
def sessions_resume(ctx: click.Context, session_id: str) -> None:
    """Bring a session's interpreter back with its saved state."""
    with _session_client(ctx) as client:
        _print_session(client.get_session(session_id).resume())


@sessions.command("fork")
@click.argument("session_id")
@click.pass_context
def sessions_fork(ctx: click.Context, session_id: str) -> None:
    """A new session with a copy of a session's files and state; prints the new one."""
    with _session_client(ctx) as client:
        _print_session(client.get_session(session_id).fork().info())


@sessions.command("export")
@click.argument("session_id")
@click.option("-o", "--output", type=click.File("wb"), required=True, help="Where to write the archive (- for stdout).")
@click.pass_context
def sessions_export(ctx: click.Context, session_id: str, output: Any) -> None:
    """Write a session as one archive (gzip tar)."""
    with _session_client(ctx) as client:
        output.write(client.get_session(session_id).archive())


@sessions.command("import")
@click.argument("archive", type=click.File("rb"))
@click.pass_context
def sessions_import(ctx: click.Context, archive: Any) -> None:
    """A new session from an archive; prints it."""
    with _session_client(ctx) as client:
        _print_session(client.import_session(archive.read()).info())


@sessions.command("delete")
@click.argument("session_id")
@click.pass_context
def sessions_delete(ctx: click.Context, session_id: str) -> None:
    """Delete a session, its files and its saved state."""
    with _session_client(ctx) as client:
        client.get_session(session_id).close()


def _run_shell(arg: str, timeout: float | None, as_json: bool, url: str | None, api_key: str | None,
               isolation: str) -> None:
    if arg == "-":
        cmd = sys.stdin.read()
    elif os.path.isfile(arg):
        with open(arg) as f:
            cmd = f.read()
    else:
        cmd = arg
    try:
        if url:
            from .client import Client

            with Client(url, api_key=api_key) as client:
                result = client.run_command(cmd, timeout=timeout)
        else:
            from .engine import Sandlot

            with Sandlot(EngineConfig(isolation=isolation, pool_size=0)) as sandlot:
                result = sandlot.run_command(cmd, timeout=timeout)
    except SandlotError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.error is not None and result.status != "error":
            click.echo(f"[sandlot] {result.error}", err=True)
        if result.truncated:
            click.echo("[sandlot] the output was over the limit; the rest was dropped", err=True)
    if result.exit_code is not None:
        sys.exit(result.exit_code)
    sys.exit(STATUS_EXIT_CODES.get(result.status, 1))


def _system_exit_code(evalue: str) -> int | None:
    """The exit code python would give for a SystemExit whose str() is ``evalue``; None when python
    would print it and exit 1 instead. (str() is all a result carries: ``sys.exit("3")`` reads as 3.)"""
    if evalue in ("", "None"):
        return 0
    if re.fullmatch(r"-?\d+", evalue.strip()):
        return int(evalue) & 0xFF  # as the operating system truncates it
    return None


def _client_echo(echo: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    """The client's stream events, as the in-process callback's (kind, payload)."""
    def on_event(event: str, data: Any) -> None:
        if event in ("stdout", "stderr", "output", "error"):
            echo("output" if event in ("output", "error") else event, data)

    return on_event


@main.command()
@click.argument("which", type=click.Choice(["core", "http", "agent", "tools", "all"]), default="core")
@click.option("--quick", is_flag=True, help="Fewer iterations (a smoke run).")
def bench(which: str, quick: bool) -> None:
    """Run the benchmarks (from a source checkout): core, http, agent, tools or all."""
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
    if not root.is_dir():
        _fail(SetupError("the benchmarks are not part of the installed package: run `sandlot bench` from a source "
                         f"checkout installed with pip install -e '.[dev]' (there is no {root} here)"))
    names = ["core", "http", "agent", "tools"] if which == "all" else [which]
    failed = 0
    for name in names:
        script = root / f"bench_{name}.py"
        if not script.exists():
            click.echo(f"sandlot: no benchmark {script.name}", err=True)
            failed += 1
            continue
        failed += subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])]) != 0
    sys.exit(1 if failed else 0)


@main.command("mcp")
@_engine_options
@_opt("--log-level", env="LOG_LEVEL", type=click.Choice(["debug", "info", "warning", "error"]), help="[default: info]")
def mcp_command(**options: Any) -> None:
    """Serve the MCP tools over stdio, for desktop MCP clients (docs/mcp.md).

    Runs its own engine; everything it opened goes when the client disconnects.
    stdout carries only MCP messages: logs go to stderr.
    """
    from . import mcp as sandlot_mcp
    from .server import load_config

    try:
        config = load_config(None, _engine_overrides(options)).engine
        sandlot_mcp.run_stdio(config, options["log_level"] or "info")
    except SandlotError as exc:
        _fail(exc)


def _add_env_commands() -> None:
    from .environments.cli import env

    main.add_command(env)


_add_env_commands()


def _fail(exc: SandlotError) -> Any:
    click.echo(f"sandlot: {exc}", err=True)
    sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
