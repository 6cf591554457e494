"""Saving a session's names to its workspace, and bringing them back, inside the sandbox.

CRIU does not work on this kernel, so a session's state is saved at the Python
level: the user's names are pickled into ``<workspace>/.sandlot/`` (``statefile``)
after a cell (or on pause) and unpickled by the next interpreter of the session.
It happens here, in the sandbox, because the snapshot is data written by hostile
code: the host copies it (fork, archive) but never unpickles it.

What the standard pickle cannot do, and what is done instead:
- Functions and classes defined in cells live in ``__main__``, which pickle
  saves by reference; here they are saved by value (the code object through
  ``marshal``, the class's attributes), as cloudpickle does. Same interpreter
  on both ends (the sandbox's), so marshal's format is stable between them.
- Modules bound to names (``import numpy as np``) are saved as their import
  path and imported again; so are the other modules the cells imported.
- Anything else that cannot be pickled (open files, sockets, generators, locks)
  is named in ``lost`` with the reason, never dropped silently.
The snapshot is capped (``max_bytes``): one over the cap is not kept, and says so.
"""

from __future__ import annotations

import abc
import importlib
import io
import marshal
import os
import pickle
import sys
import types
from typing import Any

from . import statefile

DIRECTORY = ".sandlot"
FORMAT = 3
_SKIPPED_NAMES = frozenset({"__builtins__", "__name__", "__doc__", "__loader__", "__spec__", "__package__"})
_MAX_MODULES = 2000
_PLAIN_METACLASSES = (type, abc.ABCMeta)

_restore_globals: dict[str, Any] = {}
"""The namespace functions saved by value get as their globals when they are loaded again."""


class _Pickler(pickle.Pickler):
    """The standard pickler, plus functions and classes of ``__main__`` by value.

    A function saved by value keeps its globals by name: the cells' namespace, or the module
    it was made in (``functools.wraps`` gives a wrapper made in ``dataclasses`` the name of a
    function in ``__main__``)."""

    def __init__(self, file: Any, namespace: dict[str, Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._namespace = namespace

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType) and obj.__module__ == "__main__":
            home = self._home_of(obj.__globals__)
            return _reduce_function(obj, home) if home is not None else NotImplemented
        if isinstance(obj, type) and obj.__module__ == "__main__" and type(obj) in _PLAIN_METACLASSES:
            # By value: a plain class (or an ABC). One with another metaclass (an Enum, say) is saved by
            # reference, which fails with its own clear reason, and only that name is lost.
            return _reduce_class(obj)
        if isinstance(obj, types.MappingProxyType):  # in dataclasses' fields (their metadata)
            return (_make_mappingproxy, (dict(obj),))
        return NotImplemented

    def _home_of(self, globals_: dict[str, Any]) -> str | None:
        if globals_ is self._namespace:
            return "__main__"
        name = globals_.get("__name__")
        module = sys.modules.get(name) if isinstance(name, str) else None
        return name if module is not None and vars(module) is globals_ else None


def _reduce_function(function: types.FunctionType, home: str) -> tuple[Any, ...]:
    closure = None
    if function.__closure__ is not None:
        closure = tuple(_cell_contents(cell) for cell in function.__closure__)
    return (_make_function, (marshal.dumps(function.__code__), home, function.__name__, function.__qualname__,
                             function.__defaults__, function.__kwdefaults__, closure, dict(function.__dict__),
                             function.__doc__))


def _cell_contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell (a name not yet bound when the function was made)
        return _EMPTY


_EMPTY = ("sandlot", "empty cell")


def _make_function(code: bytes, home: str, name: str, qualname: str, defaults: Any, kwdefaults: Any, closure: Any,
                   attributes: dict[str, Any], doc: Any) -> types.FunctionType:
    globals_ = _restore_globals if home == "__main__" else vars(importlib.import_module(home))
    cells = None
    if closure is not None:
        cells = tuple(types.CellType() if value == _EMPTY else types.CellType(value) for value in closure)
    function = types.FunctionType(marshal.loads(code), globals_, name, defaults, cells)
    function.__qualname__ = qualname
    function.__kwdefaults__ = kwdefaults
    function.__doc__ = doc
    function.__dict__.update(attributes)
    return function


def _make_mappingproxy(mapping: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(mapping)


def _reduce_class(cls: type) -> tuple[Any, ...]:
    attributes = {}
    for key, value in vars(cls).items():
        if key in ("__dict__", "__weakref__", "_abc_impl"):
            continue  # made again with the class (ABCMeta makes _abc_impl)
        if isinstance(value, types.MemberDescriptorType | types.GetSetDescriptorType):
            continue  # made again from __slots__
        attributes[key] = value
    return (_make_class, (type(cls), cls.__name__, cls.__qualname__, cls.__bases__, attributes))


def _make_class(metaclass: type, name: str, qualname: str, bases: tuple[type, ...], attributes: dict[str, Any]) -> type:
    cls: type = metaclass(name, bases, dict(attributes))
    cls.__qualname__ = qualname
    return cls


def _user_names(namespace: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in namespace.items()
            if name not in _SKIPPED_NAMES and not (name.startswith("__") and name.endswith("__"))}


def _dumps(names: dict[str, Any], file: Any, namespace: dict[str, Any]) -> None:
    _Pickler(file, namespace).dump(names)


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def save(namespace: dict[str, Any], workspace: str, *, count: int, max_bytes: int,
         imported_modules: list[str]) -> dict[str, Any]:
    """Write the namespace's picklable names to ``<workspace>/.sandlot`` (``statefile``); return the summary:
    what was saved, and what was lost with why."""
    names = _user_names(namespace)
    modules = {name: value.__name__ for name, value in names.items() if isinstance(value, types.ModuleType)}
    data = {name: value for name, value in names.items() if name not in modules}
    imported = imported_modules[:_MAX_MODULES]
    lost: list[dict[str, str]] = []
    directory = os.path.join(workspace, DIRECTORY)
    summary: dict[str, Any] = {"format": FORMAT, "count": count, "modules": modules, "imported": imported,
                               "names": [], "lost": lost, "bytes": 0, "skipped": None}

    def summary_for() -> dict[str, Any]:
        summary["names"] = sorted(data)
        return summary

    def dump(file: Any) -> None:
        _dumps(data, file, namespace)

    try:
        try:
            summary["bytes"] = statefile.write(directory, dump, summary_for, max_bytes)
        except (statefile.TooLarge, OSError):
            raise
        except RuntimeError as exc:
            if not isinstance(exc, RecursionError):
                raise  # a name changed while it was saved (a thread of the cell's): the whole state is suspect
            _lose_what_does_not_pickle(data, lost, namespace)
            summary["bytes"] = statefile.write(directory, dump, summary_for, max_bytes)
        except Exception:
            _lose_what_does_not_pickle(data, lost, namespace)
            summary["bytes"] = statefile.write(directory, dump, summary_for, max_bytes)
    except statefile.TooLarge as exc:
        _save_nothing(directory, summary, data, str(exc))
    except (OSError, RecursionError, RuntimeError) as exc:  # no room, a name changed while saving
        _save_nothing(directory, summary, data, f"the state could not be saved: {_reason(exc)}")
    return summary


def _lose_what_does_not_pickle(data: dict[str, Any], lost: list[dict[str, str]], namespace: dict[str, Any]) -> None:
    """Something in ``data`` cannot be pickled: find out what, name it with the reason, keep the rest."""
    for name, value in list(data.items()):
        try:
            _dumps({name: value}, _Discard(), namespace)
        except Exception as exc:  # RecursionError included: a structure too deep, a class that reduces to itself
            lost.append({"name": name, "reason": _reason(exc)})
            del data[name]


def _save_nothing(directory: str, summary: dict[str, Any], data: dict[str, Any], why: str) -> None:
    """A state with no names and the reason (an older state would be the wrong one to load)."""
    summary["skipped"] = why
    summary["lost"] = [{"name": name, "reason": why} for name in sorted(data)] + summary["lost"]
    data.clear()
    try:
        summary["bytes"] = statefile.write(directory, lambda file: _dumps({}, file, {}), lambda: summary, 1 << 20)
    except (OSError, statefile.TooLarge):
        summary["bytes"] = 0


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(memoryview(data))


def restore(namespace: dict[str, Any], workspace: str) -> dict[str, Any]:
    """Load what ``save`` wrote into ``namespace``: the names restored, and those lost with why."""
    try:
        found = statefile.newest(os.path.join(workspace, DIRECTORY))
    except (statefile.Damaged, OSError) as exc:
        return {"restored": [], "lost": [{"name": "*", "reason": f"the saved state is unreadable: {exc}"}], "count": None}
    if found is None:
        return {"restored": [], "lost": [], "count": None}
    path, _generation, summary = found
    lost = [entry for entry in summary.get("lost", []) if isinstance(entry, dict)]
    restored: list[str] = []
    for module in summary.get("imported", []):
        try:
            importlib.import_module(str(module))
        except BaseException:  # noqa: S110 - a module that no longer imports is only a lost convenience
            pass
    for name, module in dict(summary.get("modules", {})).items():
        try:
            namespace[str(name)] = importlib.import_module(str(module))
            restored.append(str(name))
        except BaseException as exc:
            lost.append({"name": str(name), "reason": f"import {module} failed: {_reason(exc)}"})
    names = [str(name) for name in summary.get("names", [])]
    if names:
        global _restore_globals
        _restore_globals = namespace
        try:
            data = statefile.load_names(path)
            if not isinstance(data, dict):
                raise ValueError("the saved state is not a namespace")
        except BaseException as exc:
            lost.extend({"name": name, "reason": f"the saved state could not be loaded: {_reason(exc)}"} for name in names)
        else:
            for name, value in data.items():
                namespace[str(name)] = value
                restored.append(str(name))
    return {"restored": sorted(restored), "lost": lost, "count": summary.get("count")}
