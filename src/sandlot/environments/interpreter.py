"""Asking an environment's interpreter about itself: its version, where it lives, what is installed.

Each question is a short ``python -I -c`` on the host with an empty environment (the operator's own
interpreter, no user code), answered as JSON. The answers decide what a sandbox of that environment
sees read-only (its prefix and its site-packages) and what ``GET /v1/environments`` says.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

from .._errors import SetupError

PROBE_TIMEOUT = 30.0
MIN_VERSION = (3, 11)
"""The runtime is loaded from the server's own installation; it needs what the server needs."""

_ABOUT = (
    "import json, sys; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
    "'version_info': list(sys.version_info[:2]), 'executable': sys.executable, "
    "'prefixes': sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}), "
    "'path': [p for p in sys.path if p]}))"
)
_FINDS = (
    "import importlib.util, json, sys\n"
    "def found(name):\n"
    "    try:\n        return importlib.util.find_spec(name) is not None\n"
    "    except (ImportError, ValueError):\n        return False\n"
    "print(json.dumps([n for n in sys.argv[1:] if not found(n)]))"
)
_DISTRIBUTIONS = (
    "import json, importlib.metadata as m; "
    "print(json.dumps(sorted({(d.metadata['Name'] or '', d.version or '') for d in m.distributions()})))"
)


@dataclass(frozen=True)
class InterpreterInfo:
    python: str
    """The interpreter the zygote is started with."""
    version: str
    prefixes: tuple[str, ...]
    """Its installation and, for a virtualenv, the venv's own directory."""
    path: tuple[str, ...]
    """Its ``sys.path`` (``-I``); its site-packages entries are what a sandbox must see to import what is installed."""


def resolve_python(python: str) -> str:
    """An interpreter path from what the operator wrote: the interpreter, or a virtualenv's directory."""
    path = os.path.expanduser(python)
    if os.path.isdir(path):
        path = os.path.join(path, "bin", "python")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SetupError(f"{python!r} is not a Python interpreter or a virtualenv's directory")
    return os.path.abspath(path)


def _ask(python: str, script: str, *args: str) -> str:
    try:
        done = subprocess.run([python, "-I", "-c", script, *args], env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                              cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{python} could not be asked about itself: {exc}") from None
    if done.returncode != 0:
        raise SetupError(f"{python} could not be asked about itself: {done.stderr.strip()[-500:]}")
    return done.stdout


def probe(python: str) -> InterpreterInfo:
    """What ``python`` is; ``SetupError`` when it is not one the runtime can run in."""
    about = json.loads(_ask(python, _ABOUT))
    if tuple(about["version_info"]) < MIN_VERSION:
        raise SetupError(f"{python} is Python {about['version']}; environments need {'.'.join(map(str, MIN_VERSION))} "
                         "or later")
    info = InterpreterInfo(python=python, version=str(about["version"]), prefixes=tuple(about["prefixes"]),
                           path=tuple(about["path"]))
    if "/" in (os.path.realpath(p) for p in visible_dirs(info)):
        # Its sandboxes see its installation read-only; "/" there would show them the whole host.
        raise SetupError(f"{python}'s installation or import path includes '/': its sandboxes would see the whole "
                         "host; install it under a directory of its own")
    return info


def missing_modules(python: str, names: list[str]) -> list[str]:
    """The modules of ``names`` that ``python`` cannot find (looked up, not imported)."""
    if not names:
        return []
    return [str(name) for name in json.loads(_ask(python, _FINDS, *names))]


def distributions(python: str) -> list[dict[str, str]]:
    """The distributions installed for ``python``: [{"name", "version"}], sorted by name."""
    found = json.loads(_ask(python, _DISTRIBUTIONS))
    return [{"name": name, "version": version} for name, version in found if name]


def visible_dirs(info: InterpreterInfo) -> list[str]:
    """The host directories a sandbox of this interpreter needs read-only: its prefixes and the site-packages
    directories of its import path, by the default environment's rule (``engine.factory.sandbox_view``).

    Not every ``sys.path`` entry: a ``.pth`` file (an editable install, say) can put any host directory there,
    a project's root with its ``.env`` or the server's config beside it, and a default sandbox sees none of
    those; a lane's must not either."""
    paths = [p for p in info.path if "site-packages" in p or "dist-packages" in p]
    return [p for p in (*info.prefixes, *paths) if os.path.isdir(p)]
