"""Packages installed at run time: ``%pip`` in a cell, and the workspace's package directory on ``sys.path``.

In a sandbox with network the host sets ``SANDLOT_PACKAGES`` (``/workspace/.packages``) and pip's
``PIP_TARGET`` to it, so ``pip install x`` (a shell command, or ``%pip install x`` in a cell) installs
there, through the host's egress proxy; the directory is put on ``sys.path`` so the cell after can import
what was installed. Without network the variable is unset and nothing here does anything.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys

_MAGIC = re.compile(r"^([ \t]*)%pip(?:[ \t]+(.*))?$", re.MULTILINE)


def add_to_path() -> None:
    """The workspace's package directory first on ``sys.path`` (what is installed there wins)."""
    packages = os.environ.get("SANDLOT_PACKAGES")
    if packages and packages not in sys.path:
        sys.path.insert(0, packages)
        importlib.invalidate_caches()


def expand_magics(code: str) -> str:
    """``%pip ARGS`` lines become calls of ``pip(ARGS)`` (one line each: tracebacks keep their line numbers)."""
    if "%pip" not in code:
        return code
    return _MAGIC.sub(lambda m: f"{m.group(1)}__import__('sandlot_runtime.packages').packages.pip({(m.group(2) or '')!r})",
                      code)


def pip(arguments: str) -> int:
    """Run ``python -m pip ARGUMENTS``, its output into the cell's; returns pip's exit code."""
    process = subprocess.Popen([sys.executable, "-m", "pip", *shlex.split(arguments)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace")
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
    code = process.wait()
    add_to_path()
    importlib.invalidate_caches()
    return code
