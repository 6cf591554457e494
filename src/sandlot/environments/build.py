"""``sandlot env build``: a virtualenv from a requirements file, for the operator to name as an environment.

With ``uv`` on the PATH it makes the venv and installs with uv (fast); otherwise ``python -m venv`` and
the venv's own pip. Index options (``--no-index``, ``--find-links``, ``--index-url``) pass through, so a
build can be offline. This runs the operator's installers on the host, as the operator: it is a setup
tool, never reachable from a request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from .._errors import SetupError


def uv_binary() -> str | None:
    """``uv`` on the PATH, or beside this interpreter (``pip install uv`` into sandlot's virtualenv puts it there,
    on the PATH only while that virtualenv is activated); None without it."""
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    return shutil.which("uv") or (beside if os.access(beside, os.X_OK) else None)


def installer() -> str:
    """``uv`` when there is one (``uv_binary``), else ``pip``."""
    return "uv" if uv_binary() else "pip"


def build_environment(directory: str, requirements: str, *, python: str = sys.executable,
                      system_site_packages: bool = False, index_args: Sequence[str] = (),
                      use: str | None = None) -> str:
    """Make a virtualenv at ``directory`` and install ``requirements`` into it; returns its interpreter.

    ``use`` forces ``uv`` or ``pip`` (default: ``installer()``). A directory that exists and is not a
    virtualenv is refused rather than overwritten."""
    if not os.path.isfile(requirements):
        raise SetupError(f"no requirements file at {requirements!r}")
    if os.path.exists(directory) and not os.path.isfile(os.path.join(directory, "pyvenv.cfg")):
        if not os.path.isdir(directory) or os.listdir(directory):
            raise SetupError(f"{directory!r} exists and is not a virtualenv; choose another --dir")
    tool = use or installer()
    venv_python = os.path.join(directory, "bin", "python")
    if tool == "uv":
        uv = uv_binary() or "uv"  # none: the step fails, saying so
        venv = [uv, "venv", "--python", python, directory] + (["--system-site-packages"] if system_site_packages else [])
        install = [uv, "pip", "install", "--python", venv_python, "-r", requirements, *index_args]
    else:
        venv = [python, "-m", "venv", directory] + (["--system-site-packages"] if system_site_packages else [])
        install = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                   "-r", requirements, *index_args]
    for step in (venv, install):
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SetupError(f"{' '.join(step[:3])} … failed:\n{(done.stderr or done.stdout).strip()[-2000:]}")
    return venv_python
