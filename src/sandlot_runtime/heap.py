"""Fill the zygote's free small-object blocks before it forks, so sandboxes allocate on pages of their own.

CPython's small-object allocator hands out the free blocks of its partly used pools first. After the
preloads, the zygote's heap holds a few thousand such blocks, one or two in each of many pools spread over
its arenas. A sandbox's first allocations went into them, and each one copied the whole page around it from
the zygote: memory a live idle session paid for hundreds of pages it used a few bytes of. Taking those
blocks here, once, sends a sandbox's allocations to fresh pools, which it fills densely (about 250 kB less
Private_Dirty per live idle session, measured with ``/proc/self/smaps_rollup``). The blocks taken stay
allocated for the zygote's life: a few hundred kB, shared by every sandbox.

The counts come from ``sys._debugmallocstats()``, CPython's own report of its pools. If it is missing or
reads differently, nothing is filled: this is memory, never correctness.
"""

from __future__ import annotations

import os
import re
import sys

_ROW = re.compile(rb"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", re.MULTILINE)
"""A size class's row: class, block size, pools, blocks in use, available blocks."""

_taken: list[object] = []
"""The filled blocks, kept alive (and so kept out of every sandbox's allocations) for the process's life."""


def free_blocks() -> dict[int, int]:
    """Available blocks per block size in the partly used pools, as the allocator reports them."""
    report = getattr(sys, "_debugmallocstats", None)
    if report is None:
        return {}
    # It writes to the C stderr: lend it a memory file for the moment (the zygote has one thread).
    with os.fdopen(os.memfd_create("mallocstats"), "rb") as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            report()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    return {int(size): int(available) for size, available in _ROW.findall(text)}


def _block(size: int, index: int) -> object:
    """A new object that takes one block of ``size`` bytes."""
    if size <= 16:
        return object()  # 16 bytes
    if size <= 32:
        return 1000 + index  # 28 bytes: an int past the cached small ones (floats would come from a free list)
    return bytes(size - sys.getsizeof(b""))  # a bytes object is its header plus its length


def fill_free_blocks() -> int:
    """Take every free block of the partly used pools; returns how many."""
    counts = free_blocks()
    for size, available in counts.items():
        _taken.extend(_block(size, index) for index in range(available))
    return sum(counts.values())
