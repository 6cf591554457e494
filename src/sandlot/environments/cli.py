"""``sandlot env``: list the environments a config defines, and build a virtualenv to name as one."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .._config import default_data_dir
from .._errors import SandlotError
from .build import build_environment, installer
from .oneline import parse_environments


def _fail(exc: SandlotError) -> Any:
    click.echo(f"sandlot: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group("env")
def env() -> None:
    """Named environments (docs/environments.md)."""


@env.command("list")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="SANDLOT_CONFIG", show_envvar=True,
              help="The server's TOML config.")
@click.option("--environment", "environments", multiple=True, envvar="SANDLOT_ENVIRONMENTS", show_envvar=True,
              help="An environment in the one-line form, as `sandlot serve` takes it (repeatable).")
@click.option("--distributions", is_flag=True, help="Also list what each has installed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as GET /v1/environments answers.")
def env_list(config_file: str | None, environments: tuple[str, ...], distributions: bool, as_json: bool) -> None:
    """The environments a server with this config offers, each interpreter asked about itself."""
    import json

    from ..server import load_config
    from .registry import EnvironmentRegistry

    try:
        overrides = {"engine.environments": parse_environments(environments)} if environments else None
        registry = EnvironmentRegistry(load_config(config_file, overrides).engine)
        registry.probe()
        described = registry.describe(distributions=distributions)
    except SandlotError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps({"environments": described}, indent=2))
        return
    for item in described:
        mark = " (default)" if item["default"] else ""
        policy = item["modules"]
        rules = (f"  deny={','.join(policy['deny'])}" if policy["deny"] else "") + \
            (f"  allow={','.join(policy['allow'])}" if policy["allow"] is not None else "")
        click.echo(f"{item['name']}{mark}  python {item['python']}  {item['executable']}  "
                   f"preload={','.join(item['preload']) or '-'}  pool_size={item['pool_size']}{rules}")
        for dist in item.get("distributions") or []:
            click.echo(f"    {dist['name']}=={dist['version']}")


@env.command("build")
@click.argument("name")
@click.option("-r", "--requirements", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A requirements file (pip's format).")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Where the virtualenv goes.  [default: <data dir>/environments/NAME]")
@click.option("--python", default=sys.executable, show_default=True, help="The interpreter the venv is made from.")
@click.option("--system-site-packages", is_flag=True, help="Let the venv see the interpreter's own packages.")
@click.option("--index-url", help="Install from this package index instead of PyPI.")
@click.option("--find-links", multiple=True, help="Also look for packages here (a directory or URL; repeatable).")
@click.option("--no-index", is_flag=True, help="No package index: only --find-links (an offline build).")
@click.option("--installer", "use", type=click.Choice(["uv", "pip"]), help="[default: uv when on the PATH, else pip]")
def env_build(name: str, requirements: str, directory: str | None, python: str, system_site_packages: bool,
              index_url: str | None, find_links: tuple[str, ...], no_index: bool, use: str | None) -> None:
    """Build a virtualenv NAME from a requirements file, to name in the config as an environment."""
    directory = os.path.abspath(directory or os.path.join(default_data_dir(), "environments", name))
    index_args = [*(["--index-url", index_url] if index_url else []), *(["--no-index"] if no_index else []),
                  *(arg for link in find_links for arg in ("--find-links", link))]
    click.echo(f"sandlot: building {directory} with {use or installer()} …", err=True)
    try:
        venv_python = build_environment(directory, requirements, python=python,
                                        system_site_packages=system_site_packages, index_args=index_args, use=use)
    except SandlotError as exc:
        _fail(exc)
    click.echo(f"built {venv_python}\n\nName it in the server's config:\n\n"
               f"    [engine.environments.{name}]\n    python = \"{directory}\"\n    preload = []\n\n"
               f"or on the command line:  sandlot serve --environment {name}={directory}")
