"""A session as one file: export and import (``GET /v1/sessions/{id}/archive``, ``POST /v1/sessions/import``).

The format, version 1: a gzip-compressed POSIX tar holding

    sandlot-session/manifest.json    {"format": "sandlot-session", "version": 1, "session": {...}, "cells": [...]}
    sandlot-session/files/<path>     every regular file of the workspace, the saved state
                                     (.sandlot/state-a, state-b) included

``session`` holds ``execution_count``, ``idle_timeout``, ``limits``, ``env``, ``tools`` and
``snapshot`` (the summary of the saved state); ``cells`` the history, each
``{execution_count, code, outputs, status}``. Ids and owners are not in it: an
imported archive is a new session of the importing key.

An archive comes from anyone, so import reads it as hostile: only regular
files and directories under ``sandlot-session/``, paths checked one component
at a time (no ``..``, no absolute paths, no links), at most ``MAX_MEMBERS``
entries, and every byte counted as it is decompressed, against the workspace
limit (a gzip bomb stops there). Files are written through ``Workspace.write``,
which never follows a link. The saved state is copied as bytes; only the
session's own sandbox ever unpickles it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import IO, Any

from .._errors import InvalidRequestError, TooLargeError
from ..engine.workspace import Workspace, split_path

FORMAT = "sandlot-session"
VERSION = 1
ROOT = "sandlot-session"
MANIFEST = f"{ROOT}/manifest.json"
FILES = f"{ROOT}/files/"
MAX_MEMBERS = 100_000
MAX_MANIFEST = 64 << 20


@dataclass
class ImportedSession:
    manifest: dict[str, Any]
    files: int
    bytes: int


def export(workspace_path: str, manifest: dict[str, Any], out: IO[bytes]) -> None:
    """Write the archive of a workspace (links and special files are left out) and its manifest to ``out``."""
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=6) as tar:
        data = json.dumps({"format": FORMAT, "version": VERSION, **manifest}).encode()
        _add_bytes(tar, MANIFEST, data)
        root = os.open(workspace_path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for dirpath, _dirs, files, dirfd in os.fwalk(".", dir_fd=root, follow_symlinks=False):
                for name in sorted(files):
                    try:
                        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
                    except OSError:
                        continue
                    with os.fdopen(fd, "rb") as file:
                        info = os.fstat(file.fileno())
                        if not stat.S_ISREG(info.st_mode):
                            continue
                        member = tarfile.TarInfo(FILES + os.path.normpath(os.path.join(dirpath, name)))
                        member.size = info.st_size
                        member.mtime = int(info.st_mtime)
                        member.mode = 0o644
                        tar.addfile(member, file)
        finally:
            os.close(root)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    tar.addfile(member, io.BytesIO(data))


class _Budget(io.RawIOBase):
    """The decompressed stream, refusing to give more than ``limit`` bytes (a bomb stops here)."""

    def __init__(self, source: gzip.GzipFile, limit: int) -> None:
        super().__init__()
        self._source = source
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self._source.read(min(len(view), self._left + 1))
        if len(data) > self._left:
            raise TooLargeError("the archive unpacks to more than the workspace limit allows")
        self._left -= len(data)
        view[:len(data)] = data
        return len(data)


def read_manifest(archive: bytes) -> dict[str, Any]:
    """The archive's manifest, checked (its files are read by ``read_into``, once the session's limits are known)."""
    return _walk(archive, None, max_bytes=MAX_MANIFEST).manifest


def read_into(archive: bytes, workspace: Workspace, *, max_bytes: int) -> ImportedSession:
    """Check an archive and write its files into ``workspace``; return its manifest. Raises
    ``InvalidRequestError`` or ``TooLargeError`` with what was wrong."""
    return _walk(archive, workspace, max_bytes=max_bytes)


def _walk(archive: bytes, workspace: Workspace | None, *, max_bytes: int) -> ImportedSession:
    try:
        decompressed = gzip.GzipFile(fileobj=io.BytesIO(archive))
        budget = io.BufferedReader(_Budget(decompressed, max_bytes + MAX_MANIFEST + (16 << 20)))
        manifest: dict[str, Any] | None = None
        count = total = 0
        with tarfile.open(fileobj=budget, mode="r|") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise InvalidRequestError(f"the archive has more than {MAX_MEMBERS} entries")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise InvalidRequestError(f"{member.name!r}: only regular files and directories may be in an archive")
                if member.name == MANIFEST:
                    if member.size > MAX_MANIFEST:
                        raise TooLargeError("the archive's manifest is too large")
                    manifest = _manifest(_read(tar, member))
                    if workspace is None:
                        break
                    continue
                if not member.name.startswith(FILES):
                    raise InvalidRequestError(f"{member.name!r} is not under {FILES!r}")
                relpath = member.name[len(FILES):]
                split_path(relpath)  # no '..', no absolute path, names a file
                if workspace is None:
                    continue
                total += member.size
                if total > max_bytes:
                    raise TooLargeError(f"the archive's files are over the workspace limit of {max_bytes} bytes")
                workspace.write(relpath, _read(tar, member))
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"not a sandlot session archive: {exc}") from None
    if manifest is None:
        raise InvalidRequestError(f"not a sandlot session archive: no {MANIFEST}")
    return ImportedSession(manifest, count, total)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    file = tar.extractfile(member)
    if file is None:
        raise InvalidRequestError(f"{member.name!r} cannot be read")
    data = file.read(member.size + 1)
    if len(data) != member.size:
        raise InvalidRequestError(f"{member.name!r} is truncated")
    return data


def _manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise InvalidRequestError("the archive's manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidRequestError("the archive's manifest is not a sandlot session manifest")
    if manifest.get("version") != VERSION:
        raise InvalidRequestError(f"archive version {manifest.get('version')!r} is not supported (this server reads {VERSION})")
    if not isinstance(manifest.get("session"), dict) or not isinstance(manifest.get("cells", []), list):
        raise InvalidRequestError("the archive's manifest lacks its session")
    return manifest
