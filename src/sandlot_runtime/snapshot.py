"""Saving a session's names to its workspace, and bringing them back, inside the sandbox.

CRIU does not work on this kernel, so a session's state is saved at the Python
level: the user's names are pickled into ``<workspace>/.sandlot/state-<count>.pickle``
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

import importlib
import io
import marshal
import os
import pickle
import struct
import sys
import types
from typing import Any

DIRECTORY = ".sandlot"
STATE_PREFIX = "state-"
STATE_SUFFIX = ".pickle"
FORMAT = 2
MAGIC = b"SLSTATE2"
_TRAILER = 8 + len(MAGIC)
_SKIPPED_NAMES = frozenset({"__builtins__", "__name__", "__doc__", "__loader__", "__spec__", "__package__"})
_MAX_MODULES = 2000

_restore_globals: dict[str, Any] = {}
"""The namespace functions saved by value get as their globals when they are loaded again."""


class SnapshotTooLarge(Exception):
    pass


class _CappedFile(io.RawIOBase):
    """A file that refuses to grow past ``limit`` bytes (so an oversized snapshot stops early)."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__()
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._limit = limit
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self.size + size > self._limit:
            raise SnapshotTooLarge(f"the state is over the snapshot limit of {self._limit} bytes")
        self.size += size
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()
        super().close()


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
        if isinstance(obj, type) and obj.__module__ == "__main__":
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
        if key in ("__dict__", "__weakref__"):
            continue
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
         baseline_modules: frozenset[str]) -> dict[str, Any]:
    """Write the namespace's picklable names to ``<workspace>/.sandlot``; return what was saved and lost.

    Each save is a new file, ``state-<count>.pickle``: the names' pickle, then a summary (a small pickle of
    strings), then its length and a magic tag, so that a file cut short is recognised. The file before it
    stays until the next save succeeds; older ones go. A new name, not a rename over the old file: ext4
    flushes a file renamed over another at once (``auto_da_alloc``), which cost a third of a millisecond
    per cell here.
    """
    names = _user_names(namespace)
    modules = {name: value.__name__ for name, value in names.items() if isinstance(value, types.ModuleType)}
    data = {name: value for name, value in names.items() if name not in modules}
    imported = sorted(name for name in list(sys.modules) if name not in baseline_modules and "." not in name)[:_MAX_MODULES]
    lost: list[dict[str, str]] = []
    directory = os.path.join(workspace, DIRECTORY)
    summary: dict[str, Any] = {"format": FORMAT, "count": count, "modules": modules, "imported": imported,
                               "names": [], "lost": lost, "bytes": 0, "skipped": None}
    path = os.path.join(directory, f"{STATE_PREFIX}{count:010d}{STATE_SUFFIX}")
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, exist_ok=True)
        try:
            size = _write(data, path, max_bytes, namespace, summary)
        except SnapshotTooLarge:
            raise
        except (OSError, RecursionError, RuntimeError):
            raise
        except Exception:
            # Something in there cannot be pickled: find out what, name it, save the rest.
            for name, value in list(data.items()):
                try:
                    _dumps({name: value}, _Discard(), namespace)
                except Exception as exc:
                    lost.append({"name": name, "reason": _reason(exc)})
                    del data[name]
            size = _write(data, path, max_bytes, namespace, summary)
    except SnapshotTooLarge as exc:
        summary["skipped"] = str(exc)
        summary["lost"] = [{"name": name, "reason": str(exc)} for name in sorted(data)] + lost
        size = _write_marker(path, summary)  # an older state would be the wrong one: this says why there is none
    except (OSError, RecursionError, RuntimeError) as exc:  # no room, a name changed while saving
        summary["skipped"] = f"the state could not be saved: {_reason(exc)}"
        summary["lost"] = [{"name": name, "reason": summary["skipped"]} for name in sorted(data)]
        size = _write_marker(path, summary)
    _remove_older(directory, keep=count)
    summary["bytes"] = size
    return summary


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(memoryview(data))


def _write(data: dict[str, Any], path: str, max_bytes: int, namespace: dict[str, Any],
           summary: dict[str, Any]) -> int:
    summary["names"] = sorted(data)
    with _CappedFile(path, max_bytes) as raw, io.BufferedWriter(raw, 1 << 20) as file:
        _dumps(data, file, namespace)
        _write_trailer(file, summary)
        file.flush()
        return raw.size


def _write_marker(path: str, summary: dict[str, Any]) -> int:
    """A state file with no names, only the summary that says why (over the cap, no room)."""
    summary["names"] = []
    try:
        with open(path, "wb") as file:
            _dumps({}, file, {})
            _write_trailer(file, summary)
            return file.tell()
    except OSError:
        _remove_quietly(path)
        return 0


def _write_trailer(file: Any, summary: dict[str, Any]) -> None:
    header = pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL)
    file.write(header)
    file.write(struct.pack("<Q", len(header)) + MAGIC)


def _state_files(directory: str) -> list[tuple[int, str]]:
    """The state files in ``directory``, newest first."""
    found = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    for entry in entries:
        if entry.startswith(STATE_PREFIX) and entry.endswith(STATE_SUFFIX):
            number = entry[len(STATE_PREFIX):-len(STATE_SUFFIX)]
            if number.isdigit():
                found.append((int(number), os.path.join(directory, entry)))
    return sorted(found, reverse=True)


def _remove_older(directory: str, keep: int) -> None:
    """Keep the state just written and the one before it (in case the newest is cut short by a crash)."""
    kept = 0
    for number, path in _state_files(directory):
        if number > keep:
            continue  # a later interpreter's (should not happen); not ours to judge
        kept += 1
        if kept > 2:
            _remove_quietly(path)


def _read_summary(path: str) -> tuple[dict[str, Any], int]:
    """A state file's summary and where its names' pickle ends; ValueError if the file is cut short or foreign."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < _TRAILER:
            raise ValueError("the file is cut short")
        file.seek(size - _TRAILER)
        tail = file.read(_TRAILER)
        if tail[8:] != MAGIC:
            raise ValueError("the file is cut short or not a saved state")
        (length,) = struct.unpack("<Q", tail[:8])
        if length > size - _TRAILER:
            raise ValueError("the file's summary is damaged")
        file.seek(size - _TRAILER - length)
        summary = pickle.loads(file.read(length))
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise ValueError("unknown snapshot format")
    return summary, size - _TRAILER - length


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def restore(namespace: dict[str, Any], workspace: str) -> dict[str, Any]:
    """Load what ``save`` wrote into ``namespace``: the names restored, and those lost with why. The newest
    readable state file is used; one that is unreadable is said to be lost."""
    lost: list[dict[str, str]] = []
    summary = None
    for _number, path in _state_files(os.path.join(workspace, DIRECTORY)):
        try:
            summary, _end = _read_summary(path)
            break
        except (OSError, ValueError, pickle.UnpicklingError, EOFError) as exc:
            lost.append({"name": "*", "reason": f"a saved state ({os.path.basename(path)}) is unreadable: {_reason(exc)}"})
    if summary is None:
        return {"restored": [], "lost": lost, "count": None}
    lost += [entry for entry in summary.get("lost", []) if isinstance(entry, dict)]
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
            with open(path, "rb") as file:
                data = pickle.load(file)
            if not isinstance(data, dict):
                raise ValueError("the saved state is not a namespace")
        except BaseException as exc:
            lost.extend({"name": name, "reason": f"the saved state could not be loaded: {_reason(exc)}"} for name in names)
        else:
            for name, value in data.items():
                namespace[str(name)] = value
                restored.append(str(name))
    return {"restored": sorted(restored), "lost": lost, "count": summary.get("count")}
