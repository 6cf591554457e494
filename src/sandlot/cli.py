"""The ``sandlot`` command line.

Errors are one clear line on stderr and an exit code from the error's class,
never a traceback. ``sandlot run`` exits with the run's status:

    ok 0 · error 1 · timeout 124 · memory 137 · killed 137 · sandlot itself failed: 3 (setup) / 1
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._config import EngineConfig
from ._errors import SandlotError

STATUS_EXIT_CODES = {"ok": 0, "error": 1, "timeout": 124, "memory": 137, "killed": 137}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "SANDLOT"})
@click.version_option(package_name="sandlot")
def main() -> None:
    """sandlot: run untrusted Python in kernel-isolated sandboxes, in milliseconds."""


@main.command()
@click.option("--isolation", type=click.Choice(["auto", "strict", "landlock"]), default="auto", show_default=True,
              help="The isolation the server would be asked for.")
def doctor(isolation: str) -> None:
    """Report what this host supports and which isolation sandlot would use."""
    from ._host import choose_isolation, probe

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
@click.argument("file", type=click.File("r"))
@click.option("--timeout", type=float, default=None, help="Wall-clock seconds for the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the full execution result as JSON.")
@click.option("--isolation", type=click.Choice(["auto", "strict", "landlock"]), default="auto", show_default=True)
def run(file: Any, timeout: float | None, as_json: bool, isolation: str) -> None:
    """Run FILE (or - for stdin) once in a fresh sandbox, in this process."""
    from ._sync import Sandlot

    code = file.read()

    def echo(kind: str, payload: Any) -> None:
        if as_json:
            return
        if kind in ("stdout", "stderr"):
            stream = sys.stdout if kind == "stdout" else sys.stderr
            stream.write(payload)
            stream.flush()
        elif kind == "output" and payload.output_type == "execute_result":
            click.echo(payload.data.get("text/plain", ""))
        elif kind == "output" and payload.output_type == "display_data":
            click.echo(f"[display: {', '.join(sorted(payload.data))}]", err=True)
        elif kind == "output" and payload.output_type == "error":
            click.echo("\n".join(payload.traceback), err=True)

    try:
        with Sandlot(EngineConfig(isolation=isolation, pool_size=0)) as sandlot:  # type: ignore[arg-type]
            result = sandlot.execute(code, timeout=timeout, on_event=echo)
    except SandlotError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    sys.exit(STATUS_EXIT_CODES[result.status])


def _fail(exc: SandlotError) -> Any:
    click.echo(f"sandlot: {exc}", err=True)
    sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
