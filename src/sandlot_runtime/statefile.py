"""The saved state on disk: two slot files written in turn, so that one complete state is always there.

``<workspace>/.sandlot/state-a`` and ``state-b``. A save overwrites the older slot in place:

    head     8 bytes magic, 8 bytes generation        (written first)
    names    a pickle of the saved names
    summary  a pickle of plain data: what was saved, what was lost and why
    trailer  8 bytes summary length, 8 bytes generation, 8 bytes magic

A slot is whole when its head and trailer carry the same generation: a save cut
short (the interpreter killed mid-write) leaves them different, and the other
slot, untouched, is the one loaded. No file is created, renamed or truncated to
zero on the way: on ext4 each of those costs a flush or a journal transaction,
which made a save of a small namespace cost 160-400 us here; an overwrite in place
is a few page-cache writes.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from typing import Any

SLOTS = ("state-a", "state-b")
MAGIC = b"SLSTATE3"
_HEAD = struct.Struct("<8sQ")
_TRAILER = struct.Struct("<QQ8s")


_written: dict[str, tuple[str, int]] = {}
"""The slot this interpreter wrote last, per directory, and its generation: a save need not read them again."""


class TooLarge(Exception):
    pass


class Damaged(Exception):
    pass


class _SlotWriter(io.RawIOBase):
    """Writes at increasing offsets of an open slot, refusing to pass ``limit`` bytes of names."""

    def __init__(self, fd: int, offset: int, limit: int) -> None:
        super().__init__()
        self._fd = fd
        self.offset = offset
        self._limit = offset + limit

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if self.offset + len(view) > self._limit:
            raise TooLarge(f"the state is over the snapshot limit of {self._limit - _HEAD.size} bytes")
        while view:
            written = os.pwrite(self._fd, view, self.offset)
            self.offset += written
            view = view[written:]
        return len(memoryview(data))


def newest(directory: str) -> tuple[str, int, dict[str, Any]] | None:
    """The newest whole slot: its path, generation and summary (None: no state saved). ``Damaged`` when slots
    exist but none is whole."""
    found: list[tuple[int, str, dict[str, Any]]] = []
    problems: list[str] = []
    for name in SLOTS:
        path = os.path.join(directory, name)
        try:
            generation, summary = _read(path)
        except FileNotFoundError:
            continue
        except (OSError, Damaged, pickle.UnpicklingError, EOFError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        found.append((generation, path, summary))
    if not found:
        if problems:
            raise Damaged("; ".join(problems))
        return None
    generation, path, summary = max(found, key=lambda entry: entry[0])
    return path, generation, summary


def _read(path: str) -> tuple[int, dict[str, Any]]:
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < _HEAD.size + _TRAILER.size:
            raise Damaged("cut short")
        magic, generation = _HEAD.unpack(file.read(_HEAD.size))
        file.seek(size - _TRAILER.size)
        length, end_generation, end_magic = _TRAILER.unpack(file.read(_TRAILER.size))
        if magic != MAGIC or end_magic != MAGIC:
            raise Damaged("not a saved state")
        if generation != end_generation or length > size - _HEAD.size - _TRAILER.size:
            raise Damaged("cut short while it was written")
        file.seek(size - _TRAILER.size - length)
        summary = pickle.loads(file.read(length))
    if not isinstance(summary, dict):
        raise Damaged("its summary is not a summary")
    return generation, summary


def load_names(path: str) -> Any:
    """Unpickle a slot's names (inside the sandbox only: this runs the saved state's code)."""
    with open(path, "rb") as file:
        file.seek(_HEAD.size)
        return pickle.load(file)


def write(directory: str, dump_names: Any, summary_for: Any, max_bytes: int) -> int:
    """Overwrite the older slot with a new state: ``dump_names(file)`` pickles the names into it,
    ``summary_for()`` then gives the summary (it may depend on what dumping found). Returns the slot's size.
    Raises ``TooLarge`` past ``max_bytes`` of names, and what ``dump_names`` raises; the slot is then not whole
    and the other one stays the newest."""
    current = _written.get(directory)
    if current is None:
        try:
            found = newest(directory)
        except Damaged:
            found = None
        current = (os.path.basename(found[0]), found[1]) if found is not None else None
        if not os.path.isdir(directory):
            os.makedirs(directory, exist_ok=True)
    generation = (current[1] if current else 0) + 1
    target = SLOTS[1] if current is not None and current[0] == SLOTS[0] else SLOTS[0]
    fd = os.open(os.path.join(directory, target), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.pwrite(fd, _HEAD.pack(MAGIC, generation), 0)
        raw = _SlotWriter(fd, _HEAD.size, max_bytes)
        with io.BufferedWriter(raw, 1 << 20) as buffered:
            dump_names(buffered)
            buffered.flush()
            summary = pickle.dumps(summary_for(), protocol=pickle.HIGHEST_PROTOCOL)
            end = raw.offset + len(summary) + _TRAILER.size
            os.pwrite(fd, summary + _TRAILER.pack(len(summary), generation, MAGIC), raw.offset)
            raw.offset = end  # nothing more goes through the buffer
        os.ftruncate(fd, end)
        _written[directory] = (target, generation)
        return end
    finally:
        os.close(fd)
