"""The one-line form of an environment, for ``--environment`` and ``SANDLOT_ENVIRONMENTS``.

``NAME=PYTHON[:OPTION=VALUE]...`` where PYTHON is an interpreter or a virtualenv's directory and the
options are ``preload``, ``deny`` and ``allow`` (comma-separated module names), ``pool_size`` and
``pool_max_size``::

    --environment science=/opt/venvs/science:preload=numpy,scipy:pool_size=2:deny=socket,ctypes

Several environments in one variable are separated by ``;``.
"""

from __future__ import annotations

from typing import Any

from .._errors import SetupError

_LISTS = {"preload": ("preload",), "deny": ("modules", "deny"), "allow": ("modules", "allow")}


def parse_environment(text: str) -> tuple[str, dict[str, Any]]:
    """``(name, table)``: the name and what ``[engine.environments.NAME]`` would hold."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest:
        raise SetupError(f"--environment {text!r}: expected NAME=PYTHON[:preload=a,b][:pool_size=N][:deny=x][:allow=y]")
    python, *options = rest.split(":")
    table: dict[str, Any] = {"python": python.strip()}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep:
            raise SetupError(f"--environment {text!r}: {option!r} is not OPTION=VALUE")
        if key in _LISTS:
            items = tuple(item.strip() for item in value.split(",") if item.strip())
            where = _LISTS[key]
            target = table
            for part in where[:-1]:
                target = target.setdefault(part, {})
            target[where[-1]] = items
        elif key in ("pool_size", "pool_max_size"):
            table[key] = value.strip()  # pydantic converts it, or names the setting when it cannot
        else:
            raise SetupError(f"--environment {text!r}: unknown option {key!r} (preload, pool_size, pool_max_size, "
                             "deny, allow)")
    return name, table


def parse_environments(texts: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Several one-line forms (each may hold several, ``;``-separated) as ``{name: table}``."""
    found: dict[str, dict[str, Any]] = {}
    for text in texts:
        for one in text.split(";"):
            if one.strip():
                name, table = parse_environment(one.strip())
                if name in found:
                    raise SetupError(f"environment {name!r} is given twice")
                found[name] = table
    return found
