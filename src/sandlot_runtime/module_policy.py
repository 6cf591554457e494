"""The environment's module policy: an import hook that refuses the modules the operator named.

This is policy, not the security boundary. Code in the sandbox can read a module's source and
``exec`` it, load a shared library with ``ctypes``, or undo this hook (it is plain Python in the
sandbox's own memory); the kernel isolation (namespaces, seccomp, cgroups, an unprivileged uid) is
what holds when it does. The hook stops the ordinary ``import x`` that an operator's rules are about,
with an error that says why.

Three hooks, because an ``import`` statement reaches the finders only for a module not loaded yet:
a finder first on ``sys.meta_path`` refuses to find a refused module (whatever asks for it: lazy imports
inside libraries included), and wrappers of ``builtins.__import__`` and ``importlib.import_module``
refuse one that is already loaded (a dependency of a preloaded library, the runtime's own stdlib
modules). The runtime's own imports are let through: it needs what it needs whatever the policy.
"""

from __future__ import annotations

import builtins
import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

RUNTIME_PACKAGE = "sandlot_runtime"


class ImportPolicy:
    """Which top-level modules and packages may be imported; see ``refusal``."""

    def __init__(self, environment: str, deny: Iterable[str], allow: Iterable[str] | None) -> None:
        self.environment = environment
        self.deny = frozenset(deny)
        self.allow = None if allow is None else frozenset(allow)

    def refusal(self, name: str) -> str | None:
        """Why importing ``name`` is refused, or None when it may be imported. A denied name covers its
        submodules; with an allow list, a module outside the standard library must be in it."""
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            if ".".join(parts[:depth]) in self.deny:
                return (f"import of {name!r} is refused by the module policy of environment "
                        f"{self.environment!r} (it denies {'.'.join(parts[:depth])!r})")
        top = parts[0]
        if self.allow is not None and top not in self.allow and top not in sys.stdlib_module_names \
                and top != RUNTIME_PACKAGE:
            return (f"import of {name!r} is refused by the module policy of environment {self.environment!r} "
                    f"(it allows only the standard library and {', '.join(sorted(self.allow)) or 'nothing else'})")
        return None

    def check(self, name: str) -> None:
        reason = self.refusal(name)
        if reason is not None:
            raise ImportError(reason, name=name)


class PolicyFinder:
    """First on ``sys.meta_path``: a refused module is not found by any finder after it."""

    def __init__(self, policy: ImportPolicy) -> None:
        self.policy = policy

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: object = None) -> None:
        if not _called_from_runtime(skip=2):
            self.policy.check(fullname)
        return None  # allowed: the next finder finds it


def install(policy: ImportPolicy) -> None:
    """Put the hooks in place (in the zygote, after its preloads, so every sandbox inherits them)."""
    sys.meta_path.insert(0, PolicyFinder(policy))
    builtins.__import__ = _guarded(builtins.__import__, policy)
    importlib.import_module = _guarded_import_module(importlib.import_module, policy)


def _guarded_import_module(original: Callable[..., Any], policy: ImportPolicy) -> Callable[..., Any]:
    # ``importlib.import_module`` of a module already loaded answers from sys.modules, past the finder.
    def import_module(name: str, package: str | None = None) -> Any:
        if not _called_from_runtime(skip=1):
            policy.check(importlib.util.resolve_name(name, package) if name.startswith(".") else name)
        return original(name, package)

    return import_module


def _guarded(original: Callable[..., Any], policy: ImportPolicy) -> Callable[..., Any]:
    def __import__(name: str, globals: dict[str, Any] | None = None, locals: Any = None,
                   fromlist: Sequence[str] = (), level: int = 0) -> Any:
        importer = (globals or {}).get("__name__") or ""
        if not (importer == RUNTIME_PACKAGE or importer.startswith(RUNTIME_PACKAGE + ".")):
            absolute = name
            if level:
                try:
                    absolute = importlib.util.resolve_name("." * level + name, (globals or {}).get("__package__"))
                except (ImportError, ValueError):
                    absolute = name
            policy.check(absolute)
            for item in fromlist or ():
                if item != "*" and isinstance(item, str):
                    # ``from os import path`` with ``os.path`` denied: the submodule is named in the fromlist.
                    policy.check(f"{absolute}.{item}")
        return original(name, globals, locals, fromlist, level)

    return __import__


def _called_from_runtime(skip: int) -> bool:
    """Whether the import that reached the finder began in the runtime's own code (its lazy imports)."""
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name.startswith("importlib") or name.startswith("_frozen_importlib") or name == __name__:
            frame = frame.f_back
            continue
        return name == RUNTIME_PACKAGE or name.startswith(RUNTIME_PACKAGE + ".")
    return False
