"""Which top-level modules get imported from now on, noted as they are imported rather than found afterwards.

A session's snapshot names the modules its cells imported, so that the next interpreter imports them again
(``snapshot``). Finding them afterwards means walking ``sys.modules`` (or building a set of it to compare with):
that touches the reference count of every module name the zygote loaded, ~1,500 strings spread over ~400
pages, and so copied ~1.6 MB per sandbox of memory it otherwise shares with the zygote (measured with
``/proc/self/smaps_rollup`` around that one line). A finder first on ``sys.meta_path`` sees every import of a
module that is not loaded yet, and notes its name instead; it finds nothing, so the next finder imports as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


class ImportRecorder:
    """A meta path finder that only notes names; ``imported()`` is what of them is loaded now."""

    def __init__(self) -> None:
        self._names: dict[str, None] = {}  # insertion-ordered set

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: object = None) -> None:
        if "." not in fullname:
            self._names[fullname] = None
        return None

    def imported(self) -> list[str]:
        """The noted top-level modules that are loaded (an import that failed left none), sorted."""
        return sorted(name for name in self._names if name in sys.modules)


def start_recording() -> ImportRecorder:
    recorder = ImportRecorder()
    sys.meta_path.insert(0, recorder)
    return recorder
