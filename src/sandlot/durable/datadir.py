"""The data directory: what sessions leave on disk, held by one server at a time.

``<data_dir>/sessions.db`` (the records, ``store``) and ``<data_dir>/sessions/<id>/``
(each session's volume, ``volumes``). Two servers on one data directory would hand
the same session to two interpreters, so the first holds an exclusive ``flock`` on
``<data_dir>/lock`` for its life, and a second one is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from .._errors import SetupError

LOCK_FILE = "lock"


class DataDir:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def lock(self) -> None:
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SetupError(f"the data directory {self.path} is in use by another sandlot server; give each "
                             "server its own (data_dir, SANDLOT_DATA_DIR)") from None
        self._fd = fd

    def unlock(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
