"""The zygote takes its free small-object blocks before forking (sandlot_runtime.heap)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_filling_leaves_no_free_block_but_in_fresh_pools() -> None:
    # In a fresh interpreter with a heap like the zygote's (a few libraries imported, then collected), the
    # report parses, and after the fill what is left free per size class is at most the rest of one pool
    # the fill itself opened (16 KiB pools: CPython 3.10+ on 64-bit), not the holes spread over many.
    code = ("import gc, json, sys; sys.path.insert(0, sys.argv[1])\n"
            "import decimal, email.message, json.decoder, xml.dom.minidom\n"
            "from sandlot_runtime import heap\n"
            "gc.collect(); before = heap.free_blocks(); taken = heap.fill_free_blocks()\n"
            "print(json.dumps([before, taken, heap.free_blocks()]))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(SRC)], capture_output=True, text=True, check=True)
    before, taken, after = json.loads(out.stdout)
    assert len(before) == 32 and taken > 0
    for size, available in after.items():
        assert available <= 16384 // int(size), (size, before[size], available)
